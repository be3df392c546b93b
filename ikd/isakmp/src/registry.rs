//! The registries of ISAKMP, IKEv1 and the IPsec DOI, as open newtypes.
//!
//! Each registry is a newtype over its wire integer with associated constants named as IANA
//! (or the defining RFC/draft) names the values. They are *open*: any wire value decodes,
//! is kept as it is and encodes back unchanged, so a value this crate has never heard of
//! round-trips, and rejecting it is the engine's decision. `Debug` prints the constant name
//! when there is one; `name()` returns the registry's label.
//!
//! Sources: RFC 2408 §3.1 and §3.14.1, RFC 2407 §4.4–4.6, RFC 2409 Appendix A, RFC 3947,
//! RFC 3706, RFC 4754, RFC 5903, the IANA "Internet Key Exchange (IKE) Attributes" and
//! "ISAKMP Identifiers" registries, and the private values documented in
//! `protocols.md` §1–3 (GSS-API, Microsoft, Cisco, racoon, strongSwan).
//!
//! This module only names numbers. Which values an engine accepts is not decided here.

use std::fmt;

macro_rules! registry {
    (
        $(#[$meta:meta])*
        $name:ident($repr:ty) {
            $( $konst:ident = $value:literal => $label:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name(pub $repr);

        impl $name {
            $(
                #[doc = concat!("`", $label, "` (", stringify!($value), ")")]
                pub const $konst: Self = Self($value);
            )*

            /// Every value this registry names, in registry order.
            pub const KNOWN: &'static [Self] = &[$(Self::$konst),*];

            /// The registry's label for this value, if it has one.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( $value => Some($label), )*
                    _ => None,
                }
            }

            /// The name of the constant for this value, if there is one.
            fn const_name(self) -> Option<&'static str> {
                match self.0 {
                    $( $value => Some(stringify!($konst)), )*
                    _ => None,
                }
            }

            /// Whether this registry names this value.
            pub fn is_known(self) -> bool {
                self.name().is_some()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.const_name() {
                    Some(n) => f.write_str(n),
                    None => write!(f, concat!(stringify!($name), "({})"), self.0),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(n) => f.write_str(n),
                    None => write!(f, "{}", self.0),
                }
            }
        }

        impl From<$repr> for $name {
            fn from(v: $repr) -> Self {
                Self(v)
            }
        }

        impl From<$name> for $repr {
            fn from(v: $name) -> Self {
                v.0
            }
        }
    };
}

registry! {
    /// ISAKMP Exchange Types (RFC 2408 §3.1, RFC 2409 §5; 6–31 future use, 32–239 DOI
    /// specific, 240–255 private use).
    ExchangeType(u8) {
        NONE = 0 => "NONE",
        BASE = 1 => "Base",
        IDENTITY_PROTECTION = 2 => "Identity Protection",
        AUTHENTICATION_ONLY = 3 => "Authentication Only",
        AGGRESSIVE = 4 => "Aggressive",
        INFORMATIONAL = 5 => "Informational",
        TRANSACTION = 6 => "Transaction (Config Mode)",
        QUICK_MODE = 32 => "Quick Mode",
        NEW_GROUP_MODE = 33 => "New Group Mode",
    }
}

impl ExchangeType {
    /// Main Mode is the RFC 2409 name for Identity Protection.
    pub const MAIN_MODE: Self = Self::IDENTITY_PROTECTION;
}

registry! {
    /// ISAKMP Payload Types (RFC 2408 §3.1, RFC 3547, RFC 3947; 128–255 private use).
    ///
    /// 15/16 are GDOI SAK/SAT but were also NAT-D/NAT-OA in nat-t drafts 04–08; this crate
    /// decodes them as unknown payloads. Drafts 00–03 used the private 130/131.
    PayloadType(u8) {
        NONE = 0 => "NONE",
        SECURITY_ASSOCIATION = 1 => "Security Association (SA)",
        PROPOSAL = 2 => "Proposal (P)",
        TRANSFORM = 3 => "Transform (T)",
        KEY_EXCHANGE = 4 => "Key Exchange (KE)",
        IDENTIFICATION = 5 => "Identification (ID)",
        CERTIFICATE = 6 => "Certificate (CERT)",
        CERTIFICATE_REQUEST = 7 => "Certificate Request (CR)",
        HASH = 8 => "Hash (HASH)",
        SIGNATURE = 9 => "Signature (SIG)",
        NONCE = 10 => "Nonce (NONCE)",
        NOTIFICATION = 11 => "Notification (N)",
        DELETE = 12 => "Delete (D)",
        VENDOR_ID = 13 => "Vendor ID (VID)",
        ATTRIBUTE = 14 => "Attribute (Mode Config)",
        SA_KEK = 15 => "SA KEK Payload (SAK)",
        SA_TEK = 16 => "SA TEK Payload (SAT)",
        KEY_DOWNLOAD = 17 => "Key Download (KD)",
        SEQUENCE_NUMBER = 18 => "Sequence Number (SEQ)",
        PROOF_OF_POSSESSION = 19 => "Proof of Possession (POP)",
        NAT_D = 20 => "NAT Discovery (NAT-D)",
        NAT_OA = 21 => "NAT Original Address (NAT-OA)",
        GSS = 129 => "GSS-API token (private)",
        NAT_D_DRAFT = 130 => "NAT-D (nat-t drafts 00-03, private)",
        NAT_OA_DRAFT = 131 => "NAT-OA (nat-t drafts 00-03, private)",
        FRAGMENT = 132 => "IKE Fragment (Cisco/Microsoft, private)",
    }
}

registry! {
    /// Notify Message Types (RFC 2408 §3.14.1, RFC 2407 §4.6.3, RFC 3706; 8192–16383
    /// private errors, 16384–24575 status, 24576–32767 DOI status, 32768–40959 private
    /// status).
    NotifyType(u16) {
        INVALID_PAYLOAD_TYPE = 1 => "INVALID-PAYLOAD-TYPE",
        DOI_NOT_SUPPORTED = 2 => "DOI-NOT-SUPPORTED",
        SITUATION_NOT_SUPPORTED = 3 => "SITUATION-NOT-SUPPORTED",
        INVALID_COOKIE = 4 => "INVALID-COOKIE",
        INVALID_MAJOR_VERSION = 5 => "INVALID-MAJOR-VERSION",
        INVALID_MINOR_VERSION = 6 => "INVALID-MINOR-VERSION",
        INVALID_EXCHANGE_TYPE = 7 => "INVALID-EXCHANGE-TYPE",
        INVALID_FLAGS = 8 => "INVALID-FLAGS",
        INVALID_MESSAGE_ID = 9 => "INVALID-MESSAGE-ID",
        INVALID_PROTOCOL_ID = 10 => "INVALID-PROTOCOL-ID",
        INVALID_SPI = 11 => "INVALID-SPI",
        INVALID_TRANSFORM_ID = 12 => "INVALID-TRANSFORM-ID",
        ATTRIBUTES_NOT_SUPPORTED = 13 => "ATTRIBUTES-NOT-SUPPORTED",
        NO_PROPOSAL_CHOSEN = 14 => "NO-PROPOSAL-CHOSEN",
        BAD_PROPOSAL_SYNTAX = 15 => "BAD-PROPOSAL-SYNTAX",
        PAYLOAD_MALFORMED = 16 => "PAYLOAD-MALFORMED",
        INVALID_KEY_INFORMATION = 17 => "INVALID-KEY-INFORMATION",
        INVALID_ID_INFORMATION = 18 => "INVALID-ID-INFORMATION",
        INVALID_CERT_ENCODING = 19 => "INVALID-CERT-ENCODING",
        INVALID_CERTIFICATE = 20 => "INVALID-CERTIFICATE",
        CERT_TYPE_UNSUPPORTED = 21 => "CERT-TYPE-UNSUPPORTED",
        INVALID_CERT_AUTHORITY = 22 => "INVALID-CERT-AUTHORITY",
        INVALID_HASH_INFORMATION = 23 => "INVALID-HASH-INFORMATION",
        AUTHENTICATION_FAILED = 24 => "AUTHENTICATION-FAILED",
        INVALID_SIGNATURE = 25 => "INVALID-SIGNATURE",
        ADDRESS_NOTIFICATION = 26 => "ADDRESS-NOTIFICATION",
        NOTIFY_SA_LIFETIME = 27 => "NOTIFY-SA-LIFETIME",
        CERTIFICATE_UNAVAILABLE = 28 => "CERTIFICATE-UNAVAILABLE",
        UNSUPPORTED_EXCHANGE_TYPE = 29 => "UNSUPPORTED-EXCHANGE-TYPE",
        UNEQUAL_PAYLOAD_LENGTHS = 30 => "UNEQUAL-PAYLOAD-LENGTHS",
        CONNECTED = 16384 => "CONNECTED",
        RESPONDER_LIFETIME = 24576 => "RESPONDER-LIFETIME",
        REPLAY_STATUS = 24577 => "REPLAY-STATUS",
        INITIAL_CONTACT = 24578 => "INITIAL-CONTACT",
        R_U_THERE = 36136 => "R-U-THERE",
        R_U_THERE_ACK = 36137 => "R-U-THERE-ACK",
        MS_NOTIFY_STATUS = 40003 => "NOTIFY_STATUS (Microsoft)",
        MS_NOTIFY_DOS_COOKIE = 40004 => "NOTIFY_DOS_COOKIE (Microsoft)",
        MS_EXCHANGE_INFO = 40005 => "EXCHANGE_INFO (Microsoft)",
        UNITY_LOAD_BALANCE = 40501 => "UNITY-LOAD-BALANCE (Cisco)",
        HEARTBEAT = 40503 => "HEARTBEAT (racoon)",
    }
}

impl NotifyType {
    /// Whether this is an error notification (types below 16384, RFC 2408 §3.14.1).
    pub fn is_error(self) -> bool {
        self.0 < 16384
    }
}

registry! {
    /// Domain of Interpretation (RFC 2408 §3.4, RFC 2407 §4.2, RFC 3547).
    Doi(u32) {
        ISAKMP = 0 => "ISAKMP",
        IPSEC = 1 => "IPSEC",
        GDOI = 2 => "GDOI",
    }
}

registry! {
    /// IPsec DOI Situation bits (RFC 2407 §4.2). A bitmap: combinations are valid values.
    Situation(u32) {
        IDENTITY_ONLY = 1 => "SIT_IDENTITY_ONLY",
        SECRECY = 2 => "SIT_SECRECY",
        INTEGRITY = 4 => "SIT_INTEGRITY",
    }
}

registry! {
    /// IPsec Security Protocol Identifiers (RFC 2407 §4.4.1), used in Proposal, Notify and
    /// Delete payloads.
    ProtocolId(u8) {
        ISAKMP = 1 => "PROTO_ISAKMP",
        AH = 2 => "PROTO_IPSEC_AH",
        ESP = 3 => "PROTO_IPSEC_ESP",
        IPCOMP = 4 => "PROTO_IPCOMP",
    }
}

registry! {
    /// IPsec ISAKMP Transform Identifiers (RFC 2407 §4.4.2), for proposals with Protocol-ID
    /// PROTO_ISAKMP.
    IsakmpTransformId(u8) {
        KEY_IKE = 1 => "KEY_IKE",
    }
}

registry! {
    /// IPsec AH Transform Identifiers (RFC 2407 §4.4.3 + IANA).
    AhTransformId(u8) {
        MD5 = 2 => "AH_MD5",
        SHA = 3 => "AH_SHA",
        DES = 4 => "AH_DES",
        SHA2_256 = 5 => "AH_SHA2-256",
        SHA2_384 = 6 => "AH_SHA2-384",
        SHA2_512 = 7 => "AH_SHA2-512",
        RIPEMD = 8 => "AH_RIPEMD",
        AES_XCBC_MAC = 9 => "AH_AES-XCBC-MAC",
        RSA = 10 => "AH_RSA",
        AES_128_GMAC = 11 => "AH_AES-128-GMAC",
        AES_192_GMAC = 12 => "AH_AES-192-GMAC",
        AES_256_GMAC = 13 => "AH_AES-256-GMAC",
    }
}

registry! {
    /// IPsec ESP Transform Identifiers (RFC 2407 §4.4.4 + IANA).
    EspTransformId(u8) {
        DES_IV64 = 1 => "ESP_DES_IV64",
        DES = 2 => "ESP_DES",
        TRIPLE_DES = 3 => "ESP_3DES",
        RC5 = 4 => "ESP_RC5",
        IDEA = 5 => "ESP_IDEA",
        CAST = 6 => "ESP_CAST",
        BLOWFISH = 7 => "ESP_BLOWFISH",
        TRIPLE_IDEA = 8 => "ESP_3IDEA",
        DES_IV32 = 9 => "ESP_DES_IV32",
        RC4 = 10 => "ESP_RC4",
        NULL = 11 => "ESP_NULL",
        AES_CBC = 12 => "ESP_AES-CBC",
        AES_CTR = 13 => "ESP_AES-CTR",
        AES_CCM_8 = 14 => "ESP_AES-CCM_8",
        AES_CCM_12 = 15 => "ESP_AES-CCM_12",
        AES_CCM_16 = 16 => "ESP_AES-CCM_16",
        AES_GCM_8 = 18 => "ESP_AES-GCM_8",
        AES_GCM_12 = 19 => "ESP_AES-GCM_12",
        AES_GCM_16 = 20 => "ESP_AES-GCM_16",
        SEED_CBC = 21 => "ESP_SEED_CBC",
        CAMELLIA = 22 => "ESP_CAMELLIA",
        NULL_AUTH_AES_GMAC = 23 => "ESP_NULL_AUTH_AES-GMAC",
        SERPENT = 252 => "ESP_SERPENT (strongSwan private)",
        TWOFISH = 253 => "ESP_TWOFISH (strongSwan private)",
    }
}

registry! {
    /// IPsec IPCOMP Transform Identifiers (RFC 2407 §4.4.5 + IANA).
    IpcompTransformId(u8) {
        OUI = 1 => "IPCOMP_OUI",
        DEFLATE = 2 => "IPCOMP_DEFLATE",
        LZS = 3 => "IPCOMP_LZS",
        LZJH = 4 => "IPCOMP_LZJH",
    }
}

registry! {
    /// IKE (Oakley, phase 1) Attribute Classes (RFC 2409 Appendix A + IANA; 16384 is the
    /// private GSS identity name of draft-ietf-ipsec-isakmp-gss-auth).
    OakleyAttributeType(u16) {
        ENCRYPTION_ALGORITHM = 1 => "Encryption Algorithm",
        HASH_ALGORITHM = 2 => "Hash Algorithm",
        AUTHENTICATION_METHOD = 3 => "Authentication Method",
        GROUP_DESCRIPTION = 4 => "Group Description",
        GROUP_TYPE = 5 => "Group Type",
        GROUP_PRIME = 6 => "Group Prime/Irreducible Polynomial",
        GROUP_GENERATOR_ONE = 7 => "Group Generator One",
        GROUP_GENERATOR_TWO = 8 => "Group Generator Two",
        GROUP_CURVE_A = 9 => "Group Curve A",
        GROUP_CURVE_B = 10 => "Group Curve B",
        LIFE_TYPE = 11 => "Life Type",
        LIFE_DURATION = 12 => "Life Duration",
        PRF = 13 => "PRF",
        KEY_LENGTH = 14 => "Key Length",
        FIELD_SIZE = 15 => "Field Size",
        GROUP_ORDER = 16 => "Group Order",
        GSS_IDENTITY_NAME = 16384 => "GSS Identity Name (private)",
        GSS_IDENTITY_NAME_W2K = 32001 => "GSS Identity Name (Windows 2000, private)",
    }
}

registry! {
    /// IKE Encryption Algorithm values (RFC 2409 Appendix A + IANA).
    EncryptionAlgorithm(u16) {
        DES_CBC = 1 => "DES-CBC",
        IDEA_CBC = 2 => "IDEA-CBC",
        BLOWFISH_CBC = 3 => "Blowfish-CBC",
        RC5_R16_B64_CBC = 4 => "RC5-R16-B64-CBC",
        TRIPLE_DES_CBC = 5 => "3DES-CBC",
        CAST_CBC = 6 => "CAST-CBC",
        AES_CBC = 7 => "AES-CBC",
        CAMELLIA_CBC = 8 => "CAMELLIA-CBC",
        SERPENT_CBC = 65004 => "Serpent-CBC (strongSwan private)",
        TWOFISH_CBC = 65005 => "Twofish-CBC (strongSwan private)",
    }
}

registry! {
    /// IKE Hash Algorithm values (RFC 2409 Appendix A + IANA).
    HashAlgorithm(u16) {
        MD5 = 1 => "MD5",
        SHA = 2 => "SHA",
        TIGER = 3 => "Tiger",
        SHA2_256 = 4 => "SHA2-256",
        SHA2_384 = 5 => "SHA2-384",
        SHA2_512 = 6 => "SHA2-512",
    }
}

registry! {
    /// IKE Authentication Method values (RFC 2409 Appendix A, RFC 4754, XAUTH and hybrid
    /// drafts).
    ///
    /// 65001 is also "GSS-API using Kerberos" (see [`AuthenticationMethod::GSS_API_KERBEROS`])
    /// and 65005 also Microsoft AUTH_CGA: which meaning applies depends on the vendor IDs
    /// exchanged, so the engine decides.
    AuthenticationMethod(u16) {
        PRE_SHARED_KEY = 1 => "pre-shared key",
        DSS_SIGNATURES = 2 => "DSS signatures",
        RSA_SIGNATURES = 3 => "RSA signatures",
        RSA_ENCRYPTION = 4 => "Encryption with RSA",
        RSA_REVISED_ENCRYPTION = 5 => "Revised encryption with RSA",
        ELGAMAL_ENCRYPTION = 6 => "Encryption with El-Gamal",
        ELGAMAL_REVISED_ENCRYPTION = 7 => "Revised encryption with El-Gamal",
        ECDSA_SIGNATURES = 8 => "ECDSA signatures",
        ECDSA_SHA256_P256 = 9 => "ECDSA with SHA-256 on the P-256 curve",
        ECDSA_SHA384_P384 = 10 => "ECDSA with SHA-384 on the P-384 curve",
        ECDSA_SHA512_P521 = 11 => "ECDSA with SHA-512 on the P-521 curve",
        HYBRID_INIT_RSA = 64221 => "HybridInitRSA",
        HYBRID_RESP_RSA = 64222 => "HybridRespRSA",
        HYBRID_INIT_DSS = 64223 => "HybridInitDSS",
        HYBRID_RESP_DSS = 64224 => "HybridRespDSS",
        XAUTH_INIT_PRE_SHARED = 65001 => "XAUTHInitPreShared",
        XAUTH_RESP_PRE_SHARED = 65002 => "XAUTHRespPreShared",
        XAUTH_INIT_DSS = 65003 => "XAUTHInitDSS",
        XAUTH_RESP_DSS = 65004 => "XAUTHRespDSS",
        XAUTH_INIT_RSA = 65005 => "XAUTHInitRSA",
        XAUTH_RESP_RSA = 65006 => "XAUTHRespRSA",
        XAUTH_INIT_RSA_ENCRYPTION = 65007 => "XAUTHInitRSAEncryption",
        XAUTH_RESP_RSA_ENCRYPTION = 65008 => "XAUTHRespRSAEncryption",
        XAUTH_INIT_RSA_REVISED_ENCRYPTION = 65009 => "XAUTHInitRSARevisedEncryption",
        XAUTH_RESP_RSA_REVISED_ENCRYPTION = 65010 => "XAUTHRespRSARevisedEncryption",
    }
}

impl AuthenticationMethod {
    /// "GSS-API using Kerberos" (draft-ietf-ipsec-isakmp-gss-auth, private range); same wire
    /// value as XAUTHInitPreShared, selected by the GSS vendor IDs. Windows uses it.
    pub const GSS_API_KERBEROS: Self = Self(65001);
    /// "Generic GSS-API" (draft-ietf-ipsec-isakmp-gss-auth).
    pub const GSS_API_GENERIC: Self = Self(65002);
    /// Microsoft AUTH_CGA (MS-IKEE §2.2.4); same wire value as XAUTHInitRSA.
    pub const MS_AUTH_CGA: Self = Self(65005);
}

registry! {
    /// IKE Group Description values (RFC 2409 §6, RFC 3526, RFC 5114, RFC 5903 + IANA).
    GroupDescription(u16) {
        MODP_768 = 1 => "768-bit MODP group",
        MODP_1024 = 2 => "1024-bit MODP group",
        EC2N_155 = 3 => "EC2N group on GP[2^155]",
        EC2N_185 = 4 => "EC2N group on GP[2^185]",
        MODP_1536 = 5 => "1536-bit MODP group",
        MODP_2048 = 14 => "2048-bit MODP group",
        MODP_3072 = 15 => "3072-bit MODP group",
        MODP_4096 = 16 => "4096-bit MODP group",
        MODP_6144 = 17 => "6144-bit MODP group",
        MODP_8192 = 18 => "8192-bit MODP group",
        ECP_256 = 19 => "256-bit random ECP group",
        ECP_384 = 20 => "384-bit random ECP group",
        ECP_521 = 21 => "521-bit random ECP group",
        MODP_1024_160_POS = 22 => "1024-bit MODP Group with 160-bit Prime Order Subgroup",
        MODP_2048_224_POS = 23 => "2048-bit MODP Group with 224-bit Prime Order Subgroup",
        MODP_2048_256_POS = 24 => "2048-bit MODP Group with 256-bit Prime Order Subgroup",
        ECP_192 = 25 => "192-bit Random ECP Group",
        ECP_224 = 26 => "224-bit Random ECP Group",
    }
}

registry! {
    /// IKE Group Type values (RFC 2409 Appendix A).
    GroupType(u16) {
        MODP = 1 => "MODP",
        ECP = 2 => "ECP",
        EC2N = 3 => "EC2N",
    }
}

registry! {
    /// Life Type values, shared by IKE Life Type (RFC 2409 Appendix A) and the IPsec SA Life
    /// Type (RFC 2407 §4.5).
    LifeType(u16) {
        SECONDS = 1 => "seconds",
        KILOBYTES = 2 => "kilobytes",
    }
}

registry! {
    /// IPsec Security Association Attributes (RFC 2407 §4.5 + IANA), the attribute classes
    /// of phase-2 transforms.
    IpsecAttributeType(u16) {
        SA_LIFE_TYPE = 1 => "SA Life Type",
        SA_LIFE_DURATION = 2 => "SA Life Duration",
        GROUP_DESCRIPTION = 3 => "Group Description",
        ENCAPSULATION_MODE = 4 => "Encapsulation Mode",
        AUTHENTICATION_ALGORITHM = 5 => "Authentication Algorithm",
        KEY_LENGTH = 6 => "Key Length",
        KEY_ROUNDS = 7 => "Key Rounds",
        COMPRESS_DICTIONARY_SIZE = 8 => "Compress Dictionary Size",
        COMPRESS_PRIVATE_ALGORITHM = 9 => "Compress Private Algorithm",
        ECN_TUNNEL = 10 => "ECN Tunnel",
        EXTENDED_SEQUENCE_NUMBER = 11 => "Extended (64-bit) Sequence Number",
        AUTHENTICATION_KEY_LENGTH = 12 => "Authentication Key Length",
        SIGNATURE_ENCODING_ALGORITHM = 13 => "Signature Encoding Algorithm",
    }
}

registry! {
    /// IPsec Encapsulation Mode values (RFC 2407 §4.5, RFC 3947, nat-t drafts 00–03).
    EncapsulationMode(u16) {
        TUNNEL = 1 => "Tunnel",
        TRANSPORT = 2 => "Transport",
        UDP_ENCAPSULATED_TUNNEL = 3 => "UDP-Encapsulated-Tunnel",
        UDP_ENCAPSULATED_TRANSPORT = 4 => "UDP-Encapsulated-Transport",
        CHECK_POINT_UDP = 61440 => "UDP encapsulation (Check Point, private)",
        UDP_ENCAPSULATED_TUNNEL_DRAFT = 61443 => "UDP-Encapsulated-Tunnel (nat-t drafts 00-03)",
        UDP_ENCAPSULATED_TRANSPORT_DRAFT = 61444 => "UDP-Encapsulated-Transport (nat-t drafts 00-03)",
    }
}

registry! {
    /// IPsec Authentication Algorithm attribute values (RFC 2407 §4.5 + IANA).
    AuthenticationAlgorithm(u16) {
        HMAC_MD5 = 1 => "HMAC-MD5",
        HMAC_SHA = 2 => "HMAC-SHA",
        DES_MAC = 3 => "DES-MAC",
        KPDK = 4 => "KPDK",
        HMAC_SHA2_256 = 5 => "HMAC-SHA2-256",
        HMAC_SHA2_384 = 6 => "HMAC-SHA2-384",
        HMAC_SHA2_512 = 7 => "HMAC-SHA2-512",
        HMAC_RIPEMD = 8 => "HMAC-RIPEMD",
        AES_XCBC_MAC = 9 => "AES-XCBC-MAC",
        SIG_RSA = 10 => "SIG-RSA",
        AES_128_GMAC = 11 => "AES-128-GMAC",
        AES_192_GMAC = 12 => "AES-192-GMAC",
        AES_256_GMAC = 13 => "AES-256-GMAC",
    }
}

registry! {
    /// IPsec Identification Types (RFC 2407 §4.6.2.1, RFC 3554; 250 is Microsoft private).
    IdType(u8) {
        IPV4_ADDR = 1 => "ID_IPV4_ADDR",
        FQDN = 2 => "ID_FQDN",
        USER_FQDN = 3 => "ID_USER_FQDN",
        IPV4_ADDR_SUBNET = 4 => "ID_IPV4_ADDR_SUBNET",
        IPV6_ADDR = 5 => "ID_IPV6_ADDR",
        IPV6_ADDR_SUBNET = 6 => "ID_IPV6_ADDR_SUBNET",
        IPV4_ADDR_RANGE = 7 => "ID_IPV4_ADDR_RANGE",
        IPV6_ADDR_RANGE = 8 => "ID_IPV6_ADDR_RANGE",
        DER_ASN1_DN = 9 => "ID_DER_ASN1_DN",
        DER_ASN1_GN = 10 => "ID_DER_ASN1_GN",
        KEY_ID = 11 => "ID_KEY_ID",
        LIST = 12 => "ID_LIST",
        IPV6_CGA = 250 => "ID_IPV6_CGA (Microsoft)",
    }
}

registry! {
    /// Certificate Encoding values of CERT and CR payloads (RFC 2408 §3.9; 11 is racoon's
    /// private plain RSA key).
    CertificateEncoding(u8) {
        NONE = 0 => "NONE",
        PKCS7_WRAPPED_X509 = 1 => "PKCS #7 wrapped X.509 certificate",
        PGP = 2 => "PGP Certificate",
        DNS_SIGNED_KEY = 3 => "DNS Signed Key",
        X509_SIGNATURE = 4 => "X.509 Certificate - Signature",
        X509_KEY_EXCHANGE = 5 => "X.509 Certificate - Key Exchange",
        KERBEROS_TOKENS = 6 => "Kerberos Tokens",
        CRL = 7 => "Certificate Revocation List (CRL)",
        ARL = 8 => "Authority Revocation List (ARL)",
        SPKI = 9 => "SPKI Certificate",
        X509_ATTRIBUTE = 10 => "X.509 Certificate - Attribute",
        PLAIN_RSA = 11 => "plain RSA key (racoon private)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_prints_constant_names_and_unknown_numbers() {
        assert_eq!(format!("{:?}", PayloadType::NONCE), "NONCE");
        assert_eq!(format!("{:?}", PayloadType(77)), "PayloadType(77)");
        assert_eq!(format!("{:?}", NotifyType::R_U_THERE), "R_U_THERE");
    }

    #[test]
    fn display_prints_registry_labels() {
        assert_eq!(
            NotifyType::PAYLOAD_MALFORMED.to_string(),
            "PAYLOAD-MALFORMED"
        );
        assert_eq!(ExchangeType(250).to_string(), "250");
    }

    #[test]
    fn unknown_values_are_kept() {
        let t = EspTransformId::from(200);
        assert!(!t.is_known());
        assert_eq!(u8::from(t), 200);
    }

    #[test]
    fn aliases_share_wire_values() {
        assert_eq!(
            AuthenticationMethod::GSS_API_KERBEROS,
            AuthenticationMethod::XAUTH_INIT_PRE_SHARED
        );
        assert_eq!(ExchangeType::MAIN_MODE.0, 2);
        assert_eq!(AuthenticationMethod::MS_AUTH_CGA.0, 0xFDED);
    }

    #[test]
    fn known_lists_every_named_value_once() {
        let mut v: Vec<u8> = PayloadType::KNOWN.iter().map(|t| t.0).collect();
        v.sort_unstable();
        v.dedup();
        assert_eq!(v.len(), PayloadType::KNOWN.len());
        assert!(NotifyType::KNOWN.iter().all(|t| t.is_known()));
        assert!(NotifyType::UNEQUAL_PAYLOAD_LENGTHS.is_error());
        assert!(!NotifyType::INITIAL_CONTACT.is_error());
    }
}
