//! Frames ↔ messages, without I/O: a 4-octet big-endian length, then that many octets of
//! JSON.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{DecodeError, Error};

/// The largest frame body, in octets (1 MiB: thousands of SAs).
pub const MAX_FRAME: usize = 1 << 20;

/// Encodes one message as a frame.
pub fn encode_frame<T: Serialize>(message: &T) -> Result<Vec<u8>, Error> {
    let body = serde_json::to_vec(message).map_err(DecodeError::Json)?;
    let len = u32::try_from(body.len())
        .ok()
        .filter(|&l| l as usize <= MAX_FRAME)
        .ok_or(Error::Encode { len: body.len() })?;
    let mut out = Vec::with_capacity(body.len() + 4);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Checks a frame's length prefix; returns the body length.
pub fn body_len(prefix: [u8; 4]) -> Result<usize, DecodeError> {
    let len = u32::from_be_bytes(prefix) as usize;
    match len {
        0 => Err(DecodeError::Empty),
        l if l > MAX_FRAME => Err(DecodeError::TooLong {
            len: l,
            max: MAX_FRAME,
        }),
        l => Ok(l),
    }
}

/// Decodes a message from a frame body.
pub fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, DecodeError> {
    Ok(serde_json::from_slice(body)?)
}

/// Decodes the first frame of `buf`: `Ok(None)` while it is incomplete, otherwise the
/// message and the number of octets it used.
pub fn decode_frame<T: DeserializeOwned>(buf: &[u8]) -> Result<Option<(T, usize)>, DecodeError> {
    let Some((prefix, rest)) = buf.split_first_chunk::<4>() else {
        return Ok(None);
    };
    let len = body_len(*prefix)?;
    let Some(body) = rest.get(..len) else {
        return Ok(None);
    };
    Ok(Some((decode_body(body)?, len + 4)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::*;

    #[test]
    fn round_trip() {
        let msgs = vec![
            Request::Hello {
                min_version: 1,
                max_version: 3,
                client: "test".into(),
            },
            Request::ShowMainModeSas,
            Request::ShowQuickModeSas,
            Request::ShowStatistics,
            Request::PeerUnreachable {
                local: "192.0.2.11".parse().expect("ip"),
                peer: "2001:db8::2".parse().expect("ip"),
            },
        ];
        for m in msgs {
            let f = encode_frame(&m).expect("encode");
            let (d, used) = decode_frame::<Request>(&f).expect("decode").expect("whole");
            assert_eq!(d, m);
            assert_eq!(used, f.len());
            // Every strict prefix is incomplete, not an error.
            for n in 0..f.len() {
                assert!(decode_frame::<Request>(&f[..n]).expect("prefix").is_none());
            }
        }
        let r = Response::Statistics {
            statistics: IkeStatistics {
                main_modes_completed: 7,
                ..IkeStatistics::default()
            },
        };
        let f = encode_frame(&r).expect("encode");
        assert_eq!(
            decode_frame::<Response>(&f).expect("ok").expect("whole").0,
            r
        );
    }

    #[test]
    fn wire_form_is_documented_json() {
        let f = encode_frame(&Request::ShowMainModeSas).expect("encode");
        assert_eq!(&f[..4], &[0, 0, 0, 29]);
        assert_eq!(&f[4..], br#"{"type":"show-main-mode-sas"}"#);
        let hello = br#"{"type":"hello","min-version":1,"max-version":2,"client":"x","extra":1}"#;
        assert_eq!(
            decode_body::<Request>(hello).expect("hello"),
            Request::Hello {
                min_version: 1,
                max_version: 2,
                client: "x".into()
            }
        );
        assert_eq!(
            decode_body::<Request>(br#"{"type":"from-the-future"}"#).expect("unknown"),
            Request::Unknown
        ); // Version 2: configure and its answer.
        let c =
            decode_body::<Request>(br#"{"type":"configure","generation":3,"config":"[peer x]\n"}"#)
                .expect("configure");
        assert_eq!(
            c,
            Request::Configure {
                generation: 3,
                config: ConfigText::new("[peer x]\n".into())
            }
        );
        let r = Response::Configured {
            generation: 3,
            isakmp_sas_kept: 1,
            isakmp_sas_deleted: 0,
            sa_pairs_kept: 2,
            sa_pairs_deleted: 1,
            exchanges_abandoned: 0,
        };
        let f = encode_frame(&r).expect("encode");
        assert_eq!(
            &f[4..],
            br#"{"type":"configured","generation":3,"isakmp-sas-kept":1,"isakmp-sas-deleted":0,"sa-pairs-kept":2,"sa-pairs-deleted":1,"exchanges-abandoned":0}"#
        );
        let e = br#"{"type":"error","code":"invalid-configuration","message":"line 3: ..."}"#;
        assert!(matches!(
            decode_body::<Response>(e).expect("error"),
            Response::Error {
                code: ErrorCode::InvalidConfiguration,
                ..
            }
        ));
    }

    #[test]
    fn match_negotiation_wire_form() {
        let q = br#"{"type":"match-negotiation","local":"192.0.2.1","peer":"192.0.2.3","local-subnet":"192.0.2.1/32","remote-subnet":"192.0.2.3/32","protocol":6,"local-port":23}"#;
        let r = decode_body::<Request>(q).expect("query");
        let Request::MatchNegotiation(n) = &r else {
            panic!("{r:?}");
        };
        assert_eq!((n.protocol, n.local_port, n.remote_port), (6, 23, 0));
        assert_eq!(r.since_version(), 2);
        let f = encode_frame(&r).expect("encode");
        assert_eq!(
            decode_frame::<Request>(&f).expect("ok").expect("whole").0,
            r
        );
        let a = Response::NegotiationMatch {
            verdict: NegotiationVerdict::Connection {
                connection: "default-response".into(),
                rule: "default response rule".into(),
            },
        };
        let text = serde_json::to_string(&a).expect("json");
        assert_eq!(
            text,
            r#"{"type":"negotiation-match","verdict":"connection","connection":"default-response","rule":"default response rule"}"#
        );
        assert_eq!(decode_body::<Response>(text.as_bytes()).expect("back"), a);
        let blocked = br#"{"type":"negotiation-match","verdict":"blocked","rule":"b","reason":"blocked by rule \"b\""}"#;
        assert!(matches!(
            decode_body::<Response>(blocked).expect("blocked"),
            Response::NegotiationMatch {
                verdict: NegotiationVerdict::Blocked { .. }
            }
        ));
        // A verdict from a later version is a decoding error, not a panic.
        assert!(
            decode_body::<Response>(br#"{"type":"negotiation-match","verdict":"maybe"}"#).is_err()
        );
    }

    #[test]
    fn clear_errors() {
        assert!(matches!(
            decode_frame::<Request>(&[0, 0, 0, 0]),
            Err(DecodeError::Empty)
        ));
        assert!(matches!(
            decode_frame::<Request>(&[0xff, 0, 0, 0, b'{']),
            Err(DecodeError::TooLong { .. })
        ));
        let e = decode_frame::<Request>(b"\0\0\0\x02{}").expect_err("no type");
        assert!(
            e.to_string().starts_with("malformed control message"),
            "{e}"
        );
        assert!(decode_frame::<Request>(b"\0\0\0\x03\xff\xfe\xfd").is_err());
        assert!(decode_body::<Request>(br#"{"type":"hello","min-version":"one"}"#).is_err());
    }
}
