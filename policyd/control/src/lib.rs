//! The control protocol of the IPsec stack: how `ipsecadm` and `policyd` talk to `ikd`
//! over a root-only Unix socket (`ipsec-control(7)` documents it for administrators).
//!
//! # Wire format (versions 1 and 2)
//!
//! A connection is a stream of frames. A frame is a 4-octet big-endian length `N`
//! (`1..=`[`MAX_FRAME`]) followed by `N` octets of one UTF-8 JSON object, a [`Request`]
//! (client to server) or a [`Response`] (server to client), tagged by its `"type"` member.
//!
//! 1. The client's first frame is [`Request::Hello`] with the range of protocol versions it
//!    speaks. The server answers [`Response::Welcome`] with the highest version both speak,
//!    or [`Response::Error`] with [`ErrorCode::Version`] and closes the connection.
//! 2. Then each request frame gets exactly one response frame, in order, until the client
//!    closes its side.
//!
//! Version 2 adds [`Request::MatchNegotiation`] (ikd asks policyd which rule answers a
//! quick mode). A peer limited to version 1 negotiates down and never sees a version-2
//! message: [`socket::Connection::serve`] refuses version-2 requests on a version-1
//! connection and [`Client::call`] does not send them.
//!
//! Unknown members of an object are ignored (a later minor addition does not break an
//! older peer); an unknown `"type"` is answered with [`ErrorCode::Unsupported`]; anything
//! that is not a frame of JSON of the expected shape is a [`DecodeError`], and the server
//! closes the connection. Decoding never panics on input (the `control_decode` fuzz target
//! checks it).
//!
//! # Sockets and access
//!
//! Sockets live in a directory of mode 0700 ([`DEFAULT_DIR`], `/run/ipsec`), each socket of
//! mode 0600, and a server accepts a connection only when the peer's credentials
//! (`SO_PEERCRED` on Linux, `getpeereid` on FreeBSD) name an allowed user, by default only
//! uid 0 ([`socket::Listener`]).
//!
//! Layout: [`message`] (the typed messages), [`codec`] (frames ↔ messages, no I/O),
//! [`socket`] (the Unix sockets, credentials, the handshake and the blocking client).

pub mod codec;
mod error;
pub mod message;
pub mod socket;

pub use codec::{decode_frame, encode_frame, MAX_FRAME};
pub use error::{DecodeError, Error};
pub use message::{
    ConfigText, ErrorCode, IkeStatistics, MainModeSa, NegotiationQuery, NegotiationVerdict,
    QuickModeSa, Request, Response, CONFIGURE_VERSION, DEFAULT_RESPONSE, MAX_VERSION, MIN_VERSION,
};
pub use socket::{Client, Listener, DEFAULT_DIR, IKD_SOCKET, POLICYD_SOCKET};
