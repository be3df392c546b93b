//! The names of the directory schema (`schema/ipsec-policy.schema`, `man 5 ipsec-ldap`).
//! The OIDs live in the schema file only.

/// The schema in OpenLDAP `include` form.
pub const SCHEMA: &str = include_str!("../schema/ipsec-policy.schema");
/// The schema as an LDIF for `cn=schema,cn=config` (`ldapadd -Y EXTERNAL -H ldapi:///`).
pub const SCHEMA_LDIF: &str = include_str!("../schema/ipsec-policy.ldif");

/// Abstract superclass of the five policy object classes.
pub const CLASS_BASE: &str = "ipsecBase";
/// A policy (head: policy-wide settings, default response rule, references).
pub const CLASS_POLICY: &str = "ipsecPolicy";
/// A policy's ISAKMP (main mode) policy.
pub const CLASS_ISAKMP: &str = "ipsecISAKMPPolicy";
/// A rule (negotiation/filter association).
pub const CLASS_NFA: &str = "ipsecNFA";
/// A filter list.
pub const CLASS_FILTER: &str = "ipsecFilter";
/// A filter action (negotiation policy).
pub const CLASS_NEGPOL: &str = "ipsecNegotiationPolicy";
/// Auxiliary class of a container (domain, organizational unit) with an assignment.
pub const CLASS_ASSIGNMENT: &str = "ipsecPolicyAssignment";

/// The object's GUID, `{...}`.
pub const ATTR_ID: &str = "ipsecID";
/// The object's change version (the seed's `whenChanged`).
pub const ATTR_VERSION: &str = "ipsecVersion";
/// Display name.
pub const ATTR_NAME: &str = "ipsecName";
/// Format of `ipsecData`.
pub const ATTR_DATA_TYPE: &str = "ipsecDataType";
/// The object's settings as TOML.
pub const ATTR_DATA: &str = "ipsecData";
/// The policies using a component.
pub const ATTR_OWNERS: &str = "ipsecOwnersReference";
/// Policy → ISAKMP policy.
pub const ATTR_ISAKMP_REF: &str = "ipsecISAKMPReference";
/// Policy → rules.
pub const ATTR_NFA_REF: &str = "ipsecNFAReference";
/// Rule → filter list.
pub const ATTR_FILTER_REF: &str = "ipsecFilterReference";
/// Rule → filter action.
pub const ATTR_NEGPOL_REF: &str = "ipsecNegotiationPolicyReference";
/// Container → assigned policy.
pub const ATTR_ASSIGNED: &str = "ipsecAssignedPolicy";
/// Container blocks the assignments of its parents.
pub const ATTR_BLOCK: &str = "ipsecBlockInheritance";

/// Every object class and attribute above (for the checks that the schema file, its LDIF
/// form and the man page name them all).
pub const ALL_NAMES: &[&str] = &[
    CLASS_BASE,
    CLASS_POLICY,
    CLASS_ISAKMP,
    CLASS_NFA,
    CLASS_FILTER,
    CLASS_NEGPOL,
    CLASS_ASSIGNMENT,
    ATTR_ID,
    ATTR_VERSION,
    ATTR_NAME,
    ATTR_DATA_TYPE,
    ATTR_DATA,
    ATTR_OWNERS,
    ATTR_ISAKMP_REF,
    ATTR_NFA_REF,
    ATTR_FILTER_REF,
    ATTR_NEGPOL_REF,
    ATTR_ASSIGNED,
    ATTR_BLOCK,
];

/// The `ipsecDataType` this version writes and reads.
pub const DATA_TYPE: u32 = 1;
