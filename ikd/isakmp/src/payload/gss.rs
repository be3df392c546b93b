//! The GSS-API token payload (type 129, private; draft-ietf-ipsec-isakmp-gss-auth as
//! implemented by racoon, and Windows Kerberos authentication).
//!
//! The body is the raw GSS-API context token (`gss_init_sec_context` /
//! `gss_accept_sec_context` output), as racoon sends and reads it. MS-AIPS hints that
//! draft-07 adds a vendor-encoding field before the token; that is unconfirmed without a
//! Windows capture (protocols.md §1.4), so the body is kept whole and
//! [`GssPayload::looks_like_initial_context_token`] lets the engine tell the two apart.

use crate::payload::opaque_payload;

opaque_payload! {
    /// A GSS token payload body.
    ///
    /// ```text
    ///                      1                   2                   3
    ///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    /// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    /// ! Next Payload  !   RESERVED    !         Payload Length        !
    /// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    /// ~                        GSS-API token                          ~
    /// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    /// ```
    GssPayload {
        /// The GSS-API token.
        token
    }
}

impl GssPayload {
    /// Whether the token starts with the RFC 2743 §3.1 InitialContextToken framing
    /// (`0x60`, an ASN.1 [APPLICATION 0] tag), as a Kerberos AP-REQ does.
    pub fn looks_like_initial_context_token(&self) -> bool {
        self.token.first() == Some(&0x60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::{decode_payloads, encode_payloads, Payload};
    use crate::registry::PayloadType;

    #[test]
    fn gss_token_round_trips_as_payload_129() {
        // Start of a Kerberos InitialContextToken: 60 len 06 09 <krb5 OID> 01 00 (AP-REQ).
        let token = vec![
            0x60, 0x0f, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02, 0x01,
            0x00,
        ];
        let p = Payload::Gss(GssPayload {
            token: token.clone(),
        });
        let mut out = Vec::new();
        let first = encode_payloads(std::slice::from_ref(&p), &mut out).unwrap();
        assert_eq!(first, PayloadType(129));
        assert_eq!(&out[..4], &[0, 0, 0, 19]);
        assert_eq!(decode_payloads(first, &out).unwrap(), vec![p]);
        assert!(GssPayload { token }.looks_like_initial_context_token());
    }
}
