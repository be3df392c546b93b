//! The LDAP directory policy store (issue #6; `man 5 ipsec-ldap`).
//!
//! - [`schema`]: attribute and object class names; the OpenLDAP schema files.
//! - [`mapping`]: policy model ↔ directory entries (pure; malformed entries are errors).
//! - [`precedence`]: which container's assignment applies to a host (pure).
//! - [`config`]: the configuration file shared by policyd and ipsecadm.
//! - [`client`]: the ldap3 client: bind, assignment, change detection, download, publish
//!   (crate feature `client`, on by default).
//!
//! Not here: the local cache and the apply, which policyd's directory source does with
//! [`ipsec_policy::store::Store::set_cache`] and the agent.

#[cfg(feature = "client")]
pub mod client;
pub mod config;
pub mod dn;
pub mod error;
pub mod mapping;
pub mod precedence;
pub mod schema;

#[cfg(feature = "client")]
pub use client::{Client, Downloaded, Fingerprint};
pub use config::DirectoryConfig;
pub use error::DirectoryError;
pub use precedence::Resolution;
