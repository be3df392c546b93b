//! The Vendor ID payload (RFC 2408 §3.16) and the vendor IDs ikd recognises.
//!
//! The body is opaque. [`VendorIdPayload::known`] maps it to a [`KnownVendorId`] from the
//! table in protocols.md §3.1 (NAT-T versions, DPD, fragmentation, Microsoft, GSS-API,
//! XAUTH, Cisco Unity, strongSwan, racoon) and returns any suffix some vendor IDs carry
//! (Windows version, fragmentation capability flags, Unity version). Deciding what a vendor
//! ID enables (NAT-T version choice, GSS meaning of auth method 65001) is the engine's job.

use crate::payload::opaque_payload;

opaque_payload! {
    /// A Vendor ID payload body.
    ///
    /// ```text
    ///                      1                   2                   3
    ///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    /// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    /// ! Next Payload  !   RESERVED    !         Payload Length        !
    /// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    /// ~                        Vendor ID (VID)                        ~
    /// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    /// ```
    VendorIdPayload {
        /// The vendor ID.
        vendor_id
    }
}

/// A vendor ID ikd recognises (protocols.md §3.1; mostly MD5 of the quoted string).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KnownVendorId {
    /// RFC 3947.
    Rfc3947,
    /// draft-ietf-ipsec-nat-t-ike-03.
    NatTDraft03,
    /// draft-ietf-ipsec-nat-t-ike-02.
    NatTDraft02,
    /// draft-ietf-ipsec-nat-t-ike-02\n (with a line feed; what Windows and strongSwan send).
    NatTDraft02N,
    /// draft-ietf-ipsec-nat-t-ike-00.
    NatTDraft00,
    /// draft-ietf-ipsec-nat-t-ike-01.
    NatTDraft01,
    /// draft-ietf-ipsec-nat-t-ike-04.
    NatTDraft04,
    /// draft-ietf-ipsec-nat-t-ike-05.
    NatTDraft05,
    /// draft-ietf-ipsec-nat-t-ike-06.
    NatTDraft06,
    /// draft-ietf-ipsec-nat-t-ike-07.
    NatTDraft07,
    /// draft-ietf-ipsec-nat-t-ike-08.
    NatTDraft08,
    /// draft-ietf-ipsec-nat-t-ike-09.
    NatTDraft09,
    /// draft-ietf-ipsec-nat-t-ike.
    NatTDraft,
    /// draft-stenberg-ipsec-nat-traversal-01.
    StenbergNatT01,
    /// draft-stenberg-ipsec-nat-traversal-02.
    StenbergNatT02,
    /// RFC 3706 DPD, version 1.0 (not an MD5 of a string).
    DeadPeerDetection,
    /// FRAGMENTATION (Windows sends 16 octets; Cisco/racoon/strongSwan add 4 octets of capability flags).
    Fragmentation,
    /// MS NT5 ISAKMPOAKLEY, followed by a 4-octet Windows version (2 = Windows 2000 ... 9 = Windows 8/2012 and later).
    MsNt5IsakmpOakley,
    /// GSSAPI (Windows: Kerberos authentication supported).
    Gssapi,
    /// A GSS-API Authentication Method for IKE.
    GssApiAuthMethod,
    /// A GSS-API Authentication Method for IKE\n (with a line feed).
    GssApiAuthMethodN,
    /// Vid-Initial-Contact (Microsoft fast failover).
    VidInitialContact,
    /// NLBS_PRESENT (Microsoft).
    NlbsPresent,
    /// MS-Negotiation Discovery Capable.
    MsNegotiationDiscoveryCapable,
    /// IKE CGA version 1 (Microsoft).
    IkeCgaVersion1,
    /// MS-MamieExists (Microsoft AuthIP capable).
    MsMamieExists,
    /// XAUTH (8-octet truncated MD5 of draft-ietf-ipsra-isakmp-xauth-06.txt).
    Xauth,
    /// CISCO-UNITY (first 14 octets of the MD5), followed by a 2-octet major/minor version.
    CiscoUnity,
    /// strongSwan.
    StrongSwan,
    /// IPSec-Tools (racoon).
    IpsecTools,
    /// KAME/racoon.
    KameRacoon,
}

/// (suffix allowed, vendor ID, its fixed octets).
const KNOWN: &[(bool, KnownVendorId, &[u8])] = &[
    (
        false,
        KnownVendorId::Rfc3947,
        &[
            0x4a, 0x13, 0x1c, 0x81, 0x07, 0x03, 0x58, 0x45, 0x5c, 0x57, 0x28, 0xf2, 0x0e, 0x95,
            0x45, 0x2f,
        ],
    ),
    (
        false,
        KnownVendorId::NatTDraft03,
        &[
            0x7d, 0x94, 0x19, 0xa6, 0x53, 0x10, 0xca, 0x6f, 0x2c, 0x17, 0x9d, 0x92, 0x15, 0x52,
            0x9d, 0x56,
        ],
    ),
    (
        false,
        KnownVendorId::NatTDraft02,
        &[
            0xcd, 0x60, 0x46, 0x43, 0x35, 0xdf, 0x21, 0xf8, 0x7c, 0xfd, 0xb2, 0xfc, 0x68, 0xb6,
            0xa4, 0x48,
        ],
    ),
    (
        false,
        KnownVendorId::NatTDraft02N,
        &[
            0x90, 0xcb, 0x80, 0x91, 0x3e, 0xbb, 0x69, 0x6e, 0x08, 0x63, 0x81, 0xb5, 0xec, 0x42,
            0x7b, 0x1f,
        ],
    ),
    (
        false,
        KnownVendorId::NatTDraft00,
        &[
            0x44, 0x85, 0x15, 0x2d, 0x18, 0xb6, 0xbb, 0xcd, 0x0b, 0xe8, 0xa8, 0x46, 0x95, 0x79,
            0xdd, 0xcc,
        ],
    ),
    (
        false,
        KnownVendorId::NatTDraft01,
        &[
            0x16, 0xf6, 0xca, 0x16, 0xe4, 0xa4, 0x06, 0x6d, 0x83, 0x82, 0x1a, 0x0f, 0x0a, 0xea,
            0xa8, 0x62,
        ],
    ),
    (
        false,
        KnownVendorId::NatTDraft04,
        &[
            0x99, 0x09, 0xb6, 0x4e, 0xed, 0x93, 0x7c, 0x65, 0x73, 0xde, 0x52, 0xac, 0xe9, 0x52,
            0xfa, 0x6b,
        ],
    ),
    (
        false,
        KnownVendorId::NatTDraft05,
        &[
            0x80, 0xd0, 0xbb, 0x3d, 0xef, 0x54, 0x56, 0x5e, 0xe8, 0x46, 0x45, 0xd4, 0xc8, 0x5c,
            0xe3, 0xee,
        ],
    ),
    (
        false,
        KnownVendorId::NatTDraft06,
        &[
            0x4d, 0x1e, 0x0e, 0x13, 0x6d, 0xea, 0xfa, 0x34, 0xc4, 0xf3, 0xea, 0x9f, 0x02, 0xec,
            0x72, 0x85,
        ],
    ),
    (
        false,
        KnownVendorId::NatTDraft07,
        &[
            0x43, 0x9b, 0x59, 0xf8, 0xba, 0x67, 0x6c, 0x4c, 0x77, 0x37, 0xae, 0x22, 0xea, 0xb8,
            0xf5, 0x82,
        ],
    ),
    (
        false,
        KnownVendorId::NatTDraft08,
        &[
            0x8f, 0x8d, 0x83, 0x82, 0x6d, 0x24, 0x6b, 0x6f, 0xc7, 0xa8, 0xa6, 0xa4, 0x28, 0xc1,
            0x1d, 0xe8,
        ],
    ),
    (
        false,
        KnownVendorId::NatTDraft09,
        &[
            0x42, 0xea, 0x5b, 0x6f, 0x89, 0x8d, 0x97, 0x73, 0xa5, 0x75, 0xdf, 0x26, 0xe7, 0xdd,
            0x19, 0xe1,
        ],
    ),
    (
        false,
        KnownVendorId::NatTDraft,
        &[
            0x4d, 0xf3, 0x79, 0x28, 0xe9, 0xfc, 0x4f, 0xd1, 0xb3, 0x26, 0x21, 0x70, 0xd5, 0x15,
            0xc6, 0x62,
        ],
    ),
    (
        false,
        KnownVendorId::StenbergNatT01,
        &[
            0x27, 0xba, 0xb5, 0xdc, 0x01, 0xea, 0x07, 0x60, 0xea, 0x4e, 0x31, 0x90, 0xac, 0x27,
            0xc0, 0xd0,
        ],
    ),
    (
        false,
        KnownVendorId::StenbergNatT02,
        &[
            0x61, 0x05, 0xc4, 0x22, 0xe7, 0x68, 0x47, 0xe4, 0x3f, 0x96, 0x84, 0x80, 0x12, 0x92,
            0xae, 0xcd,
        ],
    ),
    (
        false,
        KnownVendorId::DeadPeerDetection,
        &[
            0xaf, 0xca, 0xd7, 0x13, 0x68, 0xa1, 0xf1, 0xc9, 0x6b, 0x86, 0x96, 0xfc, 0x77, 0x57,
            0x01, 0x00,
        ],
    ),
    (
        true,
        KnownVendorId::Fragmentation,
        &[
            0x40, 0x48, 0xb7, 0xd5, 0x6e, 0xbc, 0xe8, 0x85, 0x25, 0xe7, 0xde, 0x7f, 0x00, 0xd6,
            0xc2, 0xd3,
        ],
    ),
    (
        true,
        KnownVendorId::MsNt5IsakmpOakley,
        &[
            0x1e, 0x2b, 0x51, 0x69, 0x05, 0x99, 0x1c, 0x7d, 0x7c, 0x96, 0xfc, 0xbf, 0xb5, 0x87,
            0xe4, 0x61,
        ],
    ),
    (
        false,
        KnownVendorId::Gssapi,
        &[
            0x62, 0x1b, 0x04, 0xbb, 0x09, 0x88, 0x2a, 0xc1, 0xe1, 0x59, 0x35, 0xfe, 0xfa, 0x24,
            0xae, 0xee,
        ],
    ),
    (
        false,
        KnownVendorId::GssApiAuthMethod,
        &[
            0xad, 0x2c, 0x0d, 0xd0, 0xb9, 0xc3, 0x20, 0x83, 0xcc, 0xba, 0x25, 0xb8, 0x86, 0x1e,
            0xc4, 0x55,
        ],
    ),
    (
        false,
        KnownVendorId::GssApiAuthMethodN,
        &[
            0xb4, 0x6d, 0x89, 0x14, 0xf3, 0xaa, 0xa3, 0xf2, 0xfe, 0xde, 0xb7, 0xc7, 0xdb, 0x29,
            0x43, 0xca,
        ],
    ),
    (
        false,
        KnownVendorId::VidInitialContact,
        &[
            0x26, 0x24, 0x4d, 0x38, 0xed, 0xdb, 0x61, 0xb3, 0x17, 0x2a, 0x36, 0xe3, 0xd0, 0xcf,
            0xb8, 0x19,
        ],
    ),
    (
        false,
        KnownVendorId::NlbsPresent,
        &[
            0x72, 0x87, 0x2b, 0x95, 0xfc, 0xda, 0x2e, 0xb7, 0x08, 0xef, 0xe3, 0x22, 0x11, 0x9b,
            0x49, 0x71,
        ],
    ),
    (
        false,
        KnownVendorId::MsNegotiationDiscoveryCapable,
        &[
            0xfb, 0x1d, 0xe3, 0xcd, 0xf3, 0x41, 0xb7, 0xea, 0x16, 0xb7, 0xe5, 0xbe, 0x08, 0x55,
            0xf1, 0x20,
        ],
    ),
    (
        false,
        KnownVendorId::IkeCgaVersion1,
        &[
            0xe3, 0xa5, 0x96, 0x6a, 0x76, 0x37, 0x9f, 0xe7, 0x07, 0x22, 0x82, 0x31, 0xe5, 0xce,
            0x86, 0x52,
        ],
    ),
    (
        false,
        KnownVendorId::MsMamieExists,
        &[
            0x21, 0x4c, 0xa4, 0xfa, 0xff, 0xa7, 0xf3, 0x2d, 0x67, 0x48, 0xe5, 0x30, 0x33, 0x95,
            0xae, 0x83,
        ],
    ),
    (
        false,
        KnownVendorId::Xauth,
        &[0x09, 0x00, 0x26, 0x89, 0xdf, 0xd6, 0xb7, 0x12],
    ),
    (
        true,
        KnownVendorId::CiscoUnity,
        &[
            0x12, 0xf5, 0xf2, 0x8c, 0x45, 0x71, 0x68, 0xa9, 0x70, 0x2d, 0x9f, 0xe2, 0x74, 0xcc,
        ],
    ),
    (
        false,
        KnownVendorId::StrongSwan,
        &[
            0x88, 0x2f, 0xe5, 0x6d, 0x6f, 0xd2, 0x0d, 0xbc, 0x22, 0x51, 0x61, 0x3b, 0x2e, 0xbe,
            0x5b, 0xeb,
        ],
    ),
    (
        false,
        KnownVendorId::IpsecTools,
        &[
            0x20, 0xa3, 0x62, 0x2c, 0x1c, 0xea, 0x7c, 0xe3, 0x7b, 0xee, 0x3c, 0xa4, 0x84, 0x42,
            0x52, 0x76,
        ],
    ),
    (
        false,
        KnownVendorId::KameRacoon,
        &[
            0x70, 0x03, 0xcb, 0xc1, 0x09, 0x7d, 0xbe, 0x9c, 0x26, 0x00, 0xba, 0x69, 0x83, 0xbc,
            0x8b, 0x35,
        ],
    ),
];

impl KnownVendorId {
    /// The vendor ID's fixed octets (without any version or flags suffix).
    pub fn bytes(self) -> &'static [u8] {
        KNOWN
            .iter()
            .find(|(_, k, _)| *k == self)
            .map_or(&[], |(_, _, b)| b)
    }

    /// A Vendor ID payload carrying this vendor ID (without suffix).
    pub fn payload(self) -> VendorIdPayload {
        VendorIdPayload {
            vendor_id: self.bytes().to_vec(),
        }
    }
}

impl VendorIdPayload {
    /// The recognised vendor ID and the octets after its fixed part (empty unless the
    /// vendor ID carries a version or flags).
    pub fn known(&self) -> Option<(KnownVendorId, &[u8])> {
        KNOWN.iter().find_map(|(suffix, k, fixed)| {
            let rest = self.vendor_id.strip_prefix(*fixed)?;
            (rest.is_empty() || *suffix).then_some((*k, rest))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_exact_vendor_ids() {
        let p = KnownVendorId::Rfc3947.payload();
        assert_eq!(p.vendor_id.len(), 16);
        assert_eq!(p.known(), Some((KnownVendorId::Rfc3947, &[][..])));
        assert_eq!(
            KnownVendorId::NatTDraft02N.payload().known().map(|k| k.0),
            Some(KnownVendorId::NatTDraft02N)
        );
    }

    #[test]
    fn returns_the_windows_version_suffix() {
        let mut v = KnownVendorId::MsNt5IsakmpOakley.bytes().to_vec();
        v.extend_from_slice(&[0, 0, 0, 9]);
        let p = VendorIdPayload { vendor_id: v };
        assert_eq!(
            p.known(),
            Some((KnownVendorId::MsNt5IsakmpOakley, &[0, 0, 0, 9][..]))
        );
    }

    #[test]
    fn accepts_fragmentation_with_and_without_flags() {
        let mut v = KnownVendorId::Fragmentation.bytes().to_vec();
        assert!(VendorIdPayload {
            vendor_id: v.clone()
        }
        .known()
        .is_some());
        v.extend_from_slice(&[0x80, 0, 0, 0]);
        let p = VendorIdPayload { vendor_id: v };
        assert_eq!(
            p.known(),
            Some((KnownVendorId::Fragmentation, &[0x80, 0, 0, 0][..]))
        );
    }

    #[test]
    fn rejects_suffixes_on_fixed_vendor_ids() {
        let mut v = KnownVendorId::DeadPeerDetection.bytes().to_vec();
        v.push(0);
        assert_eq!(VendorIdPayload { vendor_id: v }.known(), None);
        assert_eq!(
            VendorIdPayload {
                vendor_id: vec![1, 2, 3]
            }
            .known(),
            None
        );
    }

    #[test]
    fn recognises_cisco_unity_by_prefix() {
        let v = [
            0x12, 0xf5, 0xf2, 0x8c, 0x45, 0x71, 0x68, 0xa9, 0x70, 0x2d, 0x9f, 0xe2, 0x74, 0xcc,
            0x01, 0x00,
        ];
        let p = VendorIdPayload {
            vendor_id: v.to_vec(),
        };
        assert_eq!(p.known(), Some((KnownVendorId::CiscoUnity, &[1, 0][..])));
    }

    #[test]
    fn every_known_vendor_id_maps_back_to_itself() {
        for (_, k, _) in KNOWN {
            assert_eq!(k.payload().known().map(|x| x.0), Some(*k), "{k:?}");
        }
    }
}
