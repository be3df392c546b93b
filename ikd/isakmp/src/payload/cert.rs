//! The Certificate (RFC 2408 §3.9) and Certificate Request (§3.10) payloads.
//!
//! Both are an encoding octet followed by opaque data (a certificate, CRL, or a DER
//! Distinguished Name of an acceptable CA). Parsing X.509 and deciding which encodings are
//! acceptable (strongSwan takes 1, 4 and 7) is the auth module's job.

use crate::codec::Reader;
use crate::error::{DecodeError, EncodeError};
use crate::payload::PayloadBody;
use crate::registry::CertificateEncoding;

/// A Certificate payload body.
///
/// ```text
///                      1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ! Next Payload  !   RESERVED    !         Payload Length        !
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ! Cert Encoding !                                               !
/// +-+-+-+-+-+-+-+-+                                               !
/// ~                       Certificate Data                        ~
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CertPayload {
    /// Certificate Encoding.
    pub encoding: CertificateEncoding,
    /// Certificate Data.
    pub data: Vec<u8>,
}

impl PayloadBody for CertPayload {
    fn decode_body(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let encoding = CertificateEncoding(r.u8("certificate encoding")?);
        Ok(Self {
            encoding,
            data: r.rest().to_vec(),
        })
    }

    fn encode_body(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        out.push(self.encoding.0);
        out.extend_from_slice(&self.data);
        Ok(())
    }
}

/// A Certificate Request payload body.
///
/// ```text
///                      1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ! Next Payload  !   RESERVED    !         Payload Length        !
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// !  Cert. Type   !                                               !
/// +-+-+-+-+-+-+-+-+                                               !
/// ~                    Certificate Authority                      ~
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CertRequestPayload {
    /// Certificate Type requested.
    pub cert_type: CertificateEncoding,
    /// Certificate Authority: a DER Distinguished Name, or empty for "any".
    pub authority: Vec<u8>,
}

impl PayloadBody for CertRequestPayload {
    fn decode_body(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let cert_type = CertificateEncoding(r.u8("certificate type")?);
        Ok(Self {
            cert_type,
            authority: r.rest().to_vec(),
        })
    }

    fn encode_body(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        out.push(self.cert_type.0);
        out.extend_from_slice(&self.authority);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_round_trips() {
        let body = [4, 0x30, 0x82, 0x01, 0x00];
        let c = CertPayload::decode_body(&body).unwrap();
        assert_eq!(c.encoding, CertificateEncoding::X509_SIGNATURE);
        assert_eq!(c.data, &body[1..]);
        assert_eq!(c.body_bytes().unwrap(), body);
    }

    #[test]
    fn certificate_request_without_authority_round_trips() {
        let c = CertRequestPayload::decode_body(&[4]).unwrap();
        assert_eq!(c.cert_type, CertificateEncoding::X509_SIGNATURE);
        assert!(c.authority.is_empty());
        assert_eq!(c.body_bytes().unwrap(), [4]);
    }

    #[test]
    fn rejects_empty_bodies() {
        assert!(CertPayload::decode_body(&[]).is_err());
        assert!(CertRequestPayload::decode_body(&[]).is_err());
    }
}
