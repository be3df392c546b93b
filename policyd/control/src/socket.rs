//! The Unix sockets: a directory of mode 0700, sockets of mode 0600, peer credentials
//! checked on every accepted connection, the version handshake, and a blocking client.
//!
//! The only file of the crate allowed `unsafe`: one `getsockopt(SO_PEERCRED)` (Linux) or
//! `getpeereid` (FreeBSD) call on a socket we own.
#![allow(unsafe_code)]

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::codec::{body_len, decode_body, encode_frame};
use crate::error::Error;
use crate::message::{ErrorCode, Request, Response, CONFIGURE_VERSION, MAX_VERSION, MIN_VERSION};

/// The default socket directory.
pub const DEFAULT_DIR: &str = "/run/ipsec";
/// ikd's socket name in the directory.
pub const IKD_SOCKET: &str = "ikd.sock";
/// policyd's socket name in the directory.
pub const POLICYD_SOCKET: &str = "policyd.sock";
/// How long a client waits for a frame, and the default budget of a whole server-side
/// connection (handshake and requests): a stuck or malicious local client cannot hold a
/// daemon's loop longer than this ([`Listener::set_budget`]).
pub const IO_TIMEOUT: Duration = Duration::from_secs(2);

/// Creates `dir` (and its parents) with mode 0700, or checks an existing one: a real
/// directory (not a symbolic link), owned by us, whose mode is then set to 0700.
pub fn prepare_dir(dir: &Path) -> Result<(), Error> {
    let fail = |reason: String| Error::Listen {
        path: dir.to_owned(),
        reason,
    };
    match std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        Ok(()) => {}
        Err(e) => return Err(fail(e.to_string())),
    }
    let md = std::fs::symlink_metadata(dir).map_err(|e| fail(e.to_string()))?;
    if !md.is_dir() {
        return Err(fail("not a directory".into()));
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if md.uid() != euid {
        return Err(fail(format!(
            "owned by uid {}, not by us (uid {euid})",
            md.uid()
        )));
    }
    if md.mode() & 0o777 != 0o700 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| fail(e.to_string()))?;
    }
    Ok(())
}

/// The uid of the process at the other end of a connected Unix socket.
pub fn peer_uid(stream: &UnixStream) -> io::Result<u32> {
    peer_uid_fd(stream.as_raw_fd())
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn peer_uid_fd(fd: RawFd) -> io::Result<u32> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `fd` is an open socket borrowed from a live UnixStream; `cred` and `len` are
    // valid for writes of the sizes passed and outlive the call.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            std::ptr::addr_of_mut!(cred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(cred.uid)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn peer_uid_fd(fd: RawFd) -> io::Result<u32> {
    let mut uid: libc::uid_t = 0;
    let mut gid: libc::gid_t = 0;
    // SAFETY: `fd` is an open socket borrowed from a live UnixStream; `uid` and `gid` are
    // valid for writes and outlive the call.
    let rc = unsafe { libc::getpeereid(fd, &mut uid, &mut gid) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(uid)
}

/// Reads one frame body; `Ok(None)` when the peer closed the connection between frames.
pub fn read_frame(r: &mut impl Read) -> Result<Option<Vec<u8>>, Error> {
    let mut prefix = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut prefix[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(Error::Closed),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let len = body_len(prefix)?;
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => Error::Closed,
        _ => Error::Io(e),
    })?;
    Ok(Some(body))
}

fn send<T: serde::Serialize>(w: &mut impl Write, message: &T) -> Result<(), Error> {
    let mut frame = encode_frame(message)?;
    let r = w.write_all(&frame);
    // A configure frame holds preshared keys.
    zeroize::Zeroize::zeroize(&mut frame);
    Ok(r?)
}

/// The version both ranges share (the highest), if any.
pub fn choose_version(min: u16, max: u16) -> Option<u16> {
    let hi = max.min(MAX_VERSION);
    (hi >= min.max(MIN_VERSION)).then_some(hi)
}

/// A listening control socket. The socket file is removed when it is dropped.
#[derive(Debug)]
pub struct Listener {
    inner: UnixListener,
    path: PathBuf,
    allowed: Vec<u32>,
    budget: Duration,
}

impl Listener {
    /// Binds `path` (mode 0600) in a directory prepared with [`prepare_dir`], non-blocking,
    /// allowing only uid 0. A stale socket file is replaced; a socket a live server answers
    /// on is not ([`Error::InUse`]).
    pub fn bind(path: &Path) -> Result<Self, Error> {
        let fail = |reason: String| Error::Listen {
            path: path.to_owned(),
            reason,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            prepare_dir(dir)?;
        }
        match std::fs::symlink_metadata(path) {
            Ok(md) if md.file_type().is_socket() => {
                if UnixStream::connect(path).is_ok() {
                    return Err(Error::InUse(path.to_owned()));
                }
                std::fs::remove_file(path).map_err(|e| fail(format!("stale socket: {e}")))?;
            }
            Ok(_) => return Err(fail("exists and is not a socket".into())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(fail(e.to_string())),
        }
        let inner = UnixListener::bind(path).map_err(|e| fail(e.to_string()))?;
        // The directory is 0700, so nobody else can connect between bind and chmod.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| fail(e.to_string()))?;
        inner
            .set_nonblocking(true)
            .map_err(|e| fail(e.to_string()))?;
        Ok(Self {
            inner,
            path: path.to_owned(),
            allowed: vec![0],
            budget: IO_TIMEOUT,
        })
    }

    /// Makes [`Listener::accept`] wait for a connection (for a server thread) or not (for
    /// an event loop that polls [`Listener::raw_fd`], the default).
    pub fn set_blocking(&self, blocking: bool) -> Result<(), Error> {
        Ok(self.inner.set_nonblocking(!blocking)?)
    }

    /// The most time one accepted connection may take, handshake and requests together
    /// (default [`IO_TIMEOUT`]); the connection is closed when it runs out.
    pub fn set_budget(&mut self, budget: Duration) {
        self.budget = budget;
    }

    /// Replaces the allowed uids (default: only 0).
    pub fn allow_uids(&mut self, uids: Vec<u32>) {
        self.allowed = uids;
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The descriptor to poll for readability (a pending connection).
    pub fn raw_fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }

    /// Accepts one pending connection, checks its credentials and runs the server side of
    /// the handshake. `Ok(None)`: nothing pending.
    pub fn accept(&self, server: &str) -> Result<Option<Connection>, Error> {
        let stream = match self.inner.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let deadline = Instant::now() + self.budget;
        stream.set_nonblocking(false)?;
        stream.set_read_timeout(Some(self.budget))?;
        stream.set_write_timeout(Some(self.budget))?;
        let uid = peer_uid(&stream)?;
        if !self.allowed.contains(&uid) {
            return Err(Error::Credentials {
                uid,
                allowed: self.allowed.clone(),
            });
        }
        Connection::handshake(stream, server, deadline).map(Some)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The server side of an accepted, authorised connection after the handshake.
#[derive(Debug)]
pub struct Connection {
    stream: UnixStream,
    version: u16,
    deadline: Instant,
}

impl Connection {
    fn handshake(mut stream: UnixStream, server: &str, deadline: Instant) -> Result<Self, Error> {
        let Some(body) = read_frame(&mut stream)? else {
            return Err(Error::Closed);
        };
        let (min, max) = match decode_body::<Request>(&body) {
            Ok(Request::Hello {
                min_version,
                max_version,
                ..
            }) => (min_version, max_version),
            Ok(other) => {
                let _ = send(
                    &mut stream,
                    &Response::Error {
                        code: ErrorCode::Handshake,
                        message: format!("expected hello, got {}", other.name()),
                    },
                );
                return Err(Error::Unexpected {
                    expected: "hello",
                    got: other.name().into(),
                });
            }
            Err(e) => return Err(e.into()),
        };
        let Some(version) = choose_version(min, max) else {
            let _ = send(
                &mut stream,
                &Response::Error {
                    code: ErrorCode::Version,
                    message: format!(
                        "this server speaks versions {MIN_VERSION}..={MAX_VERSION}, \
                         the client {min}..={max}"
                    ),
                },
            );
            return Err(Error::Version {
                ours: (MIN_VERSION, MAX_VERSION),
                theirs: (min, max),
            });
        };
        send(
            &mut stream,
            &Response::Welcome {
                version,
                server: server.to_owned(),
            },
        )?;
        Ok(Self {
            stream,
            version,
            deadline,
        })
    }

    /// The negotiated protocol version.
    pub fn version(&self) -> u16 {
        self.version
    }

    /// The next request; `Ok(None)` when the client closed the connection or the
    /// connection's budget ran out.
    pub fn next_request(&mut self) -> Result<Option<Request>, Error> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        self.stream.set_read_timeout(Some(left))?;
        match read_frame(&mut self.stream)? {
            None => Ok(None),
            Some(mut body) => {
                let r = decode_body(&body);
                // A configure frame holds preshared keys.
                zeroize::Zeroize::zeroize(&mut body);
                Ok(Some(r?))
            }
        }
    }

    /// Sends the response to the last request.
    pub fn respond(&mut self, response: &Response) -> Result<(), Error> {
        send(&mut self.stream, response)
    }

    /// Answers requests with `handler` until the client closes the connection or
    /// `max_requests` were answered. A second hello is answered with a handshake error.
    pub fn serve(
        &mut self,
        max_requests: usize,
        mut handler: impl FnMut(&Request) -> Response,
    ) -> Result<(), Error> {
        for _ in 0..max_requests {
            let Some(req) = self.next_request()? else {
                return Ok(());
            };
            let resp = match &req {
                Request::Hello { .. } => Response::Error {
                    code: ErrorCode::Handshake,
                    message: "hello after the handshake".into(),
                },
                Request::Configure { .. } if self.version < CONFIGURE_VERSION => {
                    Response::Error {
                        code: ErrorCode::Unsupported,
                        message: format!(
                            "configure needs protocol version {CONFIGURE_VERSION}, this connection speaks {}",
                            self.version
                        ),
                    }
                }
                Request::Unknown => Response::Error {
                    code: ErrorCode::Unsupported,
                    message: format!("unknown request type (protocol version {})", self.version),
                },
                // A client that negotiated an older version never gets newer messages.
                r if r.since_version() > self.version => Response::Error {
                    code: ErrorCode::Unsupported,
                    message: format!(
                        "{} needs protocol version {}, this connection uses {}",
                        r.name(),
                        r.since_version(),
                        self.version
                    ),
                },
                r => match handler(r) {
                    resp if resp.since_version() > self.version => Response::Error {
                        code: ErrorCode::Unsupported,
                        message: format!(
                            "the answer {} needs protocol version {}",
                            resp.name(),
                            resp.since_version()
                        ),
                    },
                    resp => resp,
                },
            };
            self.respond(&resp)?;
        }
        Ok(())
    }
}

/// A blocking client connection after the handshake.
#[derive(Debug)]
pub struct Client {
    stream: UnixStream,
    version: u16,
    server: String,
}

impl Client {
    /// Connects to `path` and runs the client side of the handshake as `client`.
    pub fn connect(path: &Path, client: &str) -> Result<Self, Error> {
        Self::connect_with(path, client, MAX_VERSION, IO_TIMEOUT)
    }

    /// Like [`Client::connect`], offering versions up to `max_version` only (a client
    /// that speaks an older version, e.g. in tests) and waiting at most `timeout` for
    /// each frame (ikd's quick lookups).
    pub fn connect_with(
        path: &Path,
        client: &str,
        max_version: u16,
        timeout: Duration,
    ) -> Result<Self, Error> {
        let max_version = max_version.clamp(MIN_VERSION, MAX_VERSION);
        let mut stream = UnixStream::connect(path).map_err(|source| Error::Connect {
            path: path.to_owned(),
            source,
        })?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        send(
            &mut stream,
            &Request::Hello {
                min_version: MIN_VERSION,
                max_version,
                client: client.to_owned(),
            },
        )?;
        let body = read_frame(&mut stream)?.ok_or(Error::Closed)?;
        match decode_body::<Response>(&body)? {
            Response::Welcome { version, server }
                if (MIN_VERSION..=max_version).contains(&version) =>
            {
                Ok(Self {
                    stream,
                    version,
                    server,
                })
            }
            Response::Welcome { version, .. } => Err(Error::Version {
                ours: (MIN_VERSION, max_version),
                theirs: (version, version),
            }),
            Response::Error { code, message } => Err(Error::Refused { code, message }),
            other => Err(Error::Unexpected {
                expected: "welcome",
                got: other.name().into(),
            }),
        }
    }

    /// The negotiated protocol version.
    pub fn version(&self) -> u16 {
        self.version
    }

    /// The server's name and version from its welcome.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Sends one request and waits for its response. An error response is returned as
    /// [`Error::Refused`].
    pub fn call(&mut self, request: &Request) -> Result<Response, Error> {
        if request.since_version() > self.version {
            // Never sent: the server negotiated an older version.
            return Err(Error::Refused {
                code: ErrorCode::Unsupported,
                message: format!(
                    "{} needs protocol version {}, the server speaks {}",
                    request.name(),
                    request.since_version(),
                    self.version
                ),
            });
        }
        send(&mut self.stream, request)?;
        let body = read_frame(&mut self.stream)?.ok_or(Error::Closed)?;
        match decode_body::<Response>(&body)? {
            Response::Error { code, message } => Err(Error::Refused { code, message }),
            r => Ok(r),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::IkeStatistics;

    fn serve_one(listener: &Listener, max: usize) -> Result<(), Error> {
        // The listener is non-blocking: wait for the client.
        for _ in 0..200 {
            // A connection closed before its hello (the liveness probe of a second
            // bind) is skipped.
            let accepted = match listener.accept("test-server 1") {
                Err(Error::Closed) => continue,
                other => other?,
            };
            if let Some(mut c) = accepted {
                return c.serve(max, |r| match r {
                    Request::Configure { generation, config } => Response::Configured {
                        generation: *generation,
                        isakmp_sas_kept: config.as_str().len() as u64,
                        isakmp_sas_deleted: 0,
                        sa_pairs_kept: 0,
                        sa_pairs_deleted: 0,
                        exchanges_abandoned: 0,
                    },
                    Request::ShowStatistics => Response::Statistics {
                        statistics: IkeStatistics {
                            quick_modes_completed: 3,
                            ..IkeStatistics::default()
                        },
                    },
                    _ => Response::Error {
                        code: ErrorCode::Unsupported,
                        message: "not here".into(),
                    },
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Err(Error::Closed)
    }

    #[test]
    fn modes_handshake_and_calls() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("run/ipsec");
        let path = dir.join(IKD_SOCKET);
        let mut listener = Listener::bind(&path).expect("bind");
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        listener.allow_uids(vec![me]);
        let dmode = std::fs::metadata(&dir).expect("dir").mode() & 0o777;
        let smode = std::fs::symlink_metadata(&path).expect("sock").mode() & 0o777;
        assert_eq!((dmode, smode), (0o700, 0o600));
        // A second server on the same live path is refused.
        assert!(matches!(Listener::bind(&path), Err(Error::InUse(_))));

        std::thread::scope(|s| {
            let server = s.spawn(|| serve_one(&listener, 10));
            let mut c = Client::connect(&path, "test").expect("connect");
            assert_eq!(c.version(), MAX_VERSION);
            assert_eq!(c.server(), "test-server 1");
            match c.call(&Request::ShowStatistics).expect("stats") {
                Response::Statistics { statistics } => {
                    assert_eq!(statistics.quick_modes_completed, 3)
                }
                other => panic!("{other:?}"),
            }
            let e = c.call(&Request::ShowMainModeSas).expect_err("refused");
            assert!(matches!(
                e,
                Error::Refused {
                    code: ErrorCode::Unsupported,
                    ..
                }
            ));
            let e = c
                .call(&Request::Hello {
                    min_version: 1,
                    max_version: 1,
                    client: "again".into(),
                })
                .expect_err("second hello");
            assert!(matches!(
                e,
                Error::Refused {
                    code: ErrorCode::Handshake,
                    ..
                }
            ));
            drop(c);
            server.join().expect("join").expect("served");
        });
        drop(listener);
        assert!(!path.exists(), "socket removed on drop");
        // A stale socket file (no server) is replaced.
        let stale = UnixListener::bind(&path).expect("stale");
        drop(stale);
        assert!(path.exists());
        Listener::bind(&path).expect("rebind over a stale socket");
    }

    #[test]
    fn other_uids_and_versions_are_refused() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("s.sock");
        let mut listener = Listener::bind(&path).expect("bind");
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        listener.allow_uids(vec![me.wrapping_add(12345)]);
        std::thread::scope(|s| {
            let server = s.spawn(|| serve_one(&listener, 1));
            let e = Client::connect(&path, "test").expect_err("refused");
            assert!(matches!(e, Error::Closed | Error::Io(_)), "{e}");
            let e = server.join().expect("join").expect_err("credentials");
            assert!(
                matches!(e, Error::Credentials { uid, .. } if uid == me),
                "{e}"
            );
        });
        listener.allow_uids(vec![me]);
        std::thread::scope(|s| {
            let server = s.spawn(|| serve_one(&listener, 1));
            let mut raw = UnixStream::connect(&path).expect("connect");
            send(
                &mut raw,
                &Request::Hello {
                    min_version: 7,
                    max_version: 9,
                    client: "future".into(),
                },
            )
            .expect("hello");
            let body = read_frame(&mut raw).expect("read").expect("frame");
            match decode_body::<Response>(&body).expect("response") {
                Response::Error { code, message } => {
                    assert_eq!(code, ErrorCode::Version);
                    assert!(message.contains("7..=9"), "{message}");
                }
                other => panic!("{other:?}"),
            }
            assert!(matches!(
                server.join().expect("join"),
                Err(Error::Version { .. })
            ));
        });
    }

    #[test]
    fn a_silent_client_is_dropped_when_the_budget_runs_out() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("s.sock");
        let mut listener = Listener::bind(&path).expect("bind");
        // SAFETY: geteuid has no preconditions.
        listener.allow_uids(vec![unsafe { libc::geteuid() }]);
        listener.set_budget(Duration::from_millis(300));
        // Connected, handshake done, then silent: the server gives up after the budget.
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut raw = UnixStream::connect(&path).expect("connect");
                send(
                    &mut raw,
                    &Request::Hello {
                        min_version: 1,
                        max_version: 1,
                        client: "silent".into(),
                    },
                )
                .expect("hello");
                std::thread::sleep(Duration::from_secs(2));
                drop(raw);
            });
            let start = Instant::now();
            let r = serve_one(&listener, 10);
            let took = start.elapsed();
            assert!(r.is_ok() || matches!(r, Err(Error::Io(_))), "{r:?}");
            assert!(took < Duration::from_millis(1500), "{took:?}");
        });
    }

    #[test]
    fn version_choice() {
        assert_eq!(choose_version(1, 1), Some(1));
        assert_eq!(choose_version(1, 5), Some(MAX_VERSION));
        assert_eq!(choose_version(2, 5), Some(2));
        assert_eq!(choose_version(3, 5), None);
        assert_eq!(choose_version(0, 0), None);
        assert_eq!(choose_version(3, 1), None);
    }

    /// Version 2's match-negotiation: a v2 client gets the answer, a v1 client (an older
    /// ikd) negotiates down and neither sends nor receives a v2 message.
    #[test]
    fn version_2_messages_only_on_version_2_connections() {
        use crate::message::{NegotiationQuery, NegotiationVerdict};
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("s.sock");
        let mut listener = Listener::bind(&path).expect("bind");
        // SAFETY: geteuid has no preconditions.
        listener.allow_uids(vec![unsafe { libc::geteuid() }]);
        let query = Request::MatchNegotiation(NegotiationQuery {
            local: "192.0.2.1".parse().expect("ip"),
            peer: "192.0.2.3".parse().expect("ip"),
            local_subnet: "192.0.2.1/32".into(),
            remote_subnet: "192.0.2.3/32".into(),
            protocol: 6,
            local_port: 23,
            remote_port: 0,
            peer_identity: None,
        });
        let answer = Response::NegotiationMatch {
            verdict: NegotiationVerdict::Blocked {
                rule: "block telnet".into(),
                reason: "blocked by rule \"block telnet\"".into(),
            },
        };
        let serve = |listener: &Listener| -> Result<(), Error> {
            for _ in 0..200 {
                if let Some(mut c) = listener.accept("test-server 2")? {
                    return c.serve(4, |r| match r {
                        Request::MatchNegotiation(_) => answer.clone(),
                        _ => Response::Done,
                    });
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(Error::Closed)
        };
        std::thread::scope(|s| {
            let server = s.spawn(|| serve(&listener));
            let mut c = Client::connect(&path, "v2").expect("connect");
            assert_eq!(c.version(), 2);
            assert_eq!(c.call(&query).expect("answer"), answer);
            drop(c);
            server.join().expect("join").expect("served");
        });
        std::thread::scope(|s| {
            let server = s.spawn(|| serve(&listener));
            let mut c =
                Client::connect_with(&path, "v1", 1, Duration::from_secs(1)).expect("connect");
            assert_eq!(c.version(), 1);
            // Refused before sending; the v1 request on the same connection still works.
            assert!(matches!(
                c.call(&query),
                Err(Error::Refused {
                    code: ErrorCode::Unsupported,
                    ..
                })
            ));
            assert_eq!(
                c.call(&Request::DynamicFilterGone {
                    local: "192.0.2.1".parse().expect("ip"),
                    peer: "192.0.2.3".parse().expect("ip"),
                })
                .expect("v1 request"),
                Response::Done
            );
            drop(c);
            server.join().expect("join").expect("served");
        });
        // A v1 peer that sends the v2 request anyway gets an error, not the v2 answer.
        std::thread::scope(|s| {
            let server = s.spawn(|| serve(&listener));
            let mut raw = UnixStream::connect(&path).expect("connect");
            send(
                &mut raw,
                &Request::Hello {
                    min_version: 1,
                    max_version: 1,
                    client: "old".into(),
                },
            )
            .expect("hello");
            let body = read_frame(&mut raw).expect("read").expect("welcome");
            assert!(matches!(
                decode_body::<Response>(&body).expect("welcome"),
                Response::Welcome { version: 1, .. }
            ));
            send(&mut raw, &query).expect("send");
            let body = read_frame(&mut raw).expect("read").expect("frame");
            match decode_body::<Response>(&body).expect("response") {
                Response::Error { code, message } => {
                    assert_eq!(code, ErrorCode::Unsupported);
                    assert!(message.contains("version 2"), "{message}");
                }
                other => panic!("{other:?}"),
            }
            drop(raw);
            server.join().expect("join").expect("served");
        });
    }

    /// Version 2 clients get `configure` through; a version 1 connection (an old client or
    /// one that asks for 1 only) is told it is unsupported, while its version 1 requests
    /// keep working.
    #[test]
    fn configure_needs_version_2_and_v1_clients_keep_working() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("s.sock");
        let mut listener = Listener::bind(&path).expect("bind");
        // SAFETY: geteuid has no preconditions.
        listener.allow_uids(vec![unsafe { libc::geteuid() }]);
        let configure = Request::Configure {
            generation: 7,
            config: crate::ConfigText::new("psk = \"s3cret\"\n".into()),
        };
        assert!(!format!("{configure:?}").contains("s3cret"));
        std::thread::scope(|s| {
            let server = s.spawn(|| serve_one(&listener, 10));
            let mut c = Client::connect(&path, "policyd").expect("connect");
            assert_eq!(c.version(), 2);
            match c.call(&configure).expect("configure") {
                Response::Configured {
                    generation,
                    isakmp_sas_kept,
                    ..
                } => assert_eq!((generation, isakmp_sas_kept), (7, 15)),
                other => panic!("{other:?}"),
            }
            drop(c);
            server.join().expect("join").expect("served");
        });
        std::thread::scope(|s| {
            let server = s.spawn(|| serve_one(&listener, 10));
            let mut raw = UnixStream::connect(&path).expect("connect");
            raw.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
            let mut call = |req: &Request| {
                send(&mut raw, req).expect("send");
                let body = read_frame(&mut raw).expect("read").expect("frame");
                decode_body::<Response>(&body).expect("response")
            };
            let hello = Request::Hello {
                min_version: 1,
                max_version: 1,
                client: "old-ipsecadm".into(),
            };
            assert!(matches!(call(&hello), Response::Welcome { version: 1, .. }));
            assert!(matches!(
                call(&Request::ShowStatistics),
                Response::Statistics { .. }
            ));
            match call(&configure) {
                Response::Error { code, message } => {
                    assert_eq!(code, ErrorCode::Unsupported);
                    assert!(message.contains("version 2"), "{message}");
                }
                other => panic!("{other:?}"),
            }
            drop(raw);
            server.join().expect("join").expect("served");
        });
    }
}
