pub mod kdc;
pub mod slapd;
