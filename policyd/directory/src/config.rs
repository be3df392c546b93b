//! The directory configuration file shared by policyd and ipsecadm
//! (`/etc/ipsec/directory.toml` by default; `man 5 ipsec-ldap`).
//!
//! ```toml
//! url = "ldap://ldap.example.org"      # ldap:// (with starttls = true) or ldaps://
//! starttls = true
//! ca-file = "/etc/ipsec/directory-ca.pem"   # optional, trusted besides the system's CAs
//! base = "dc=example,dc=org"           # the domain: the walk for assignments ends here
//! container = "ou=IP Security,dc=example,dc=org"   # where the policy objects live
//! host-dn = "cn=host1,ou=Web,dc=example,dc=org"    # or host-cn = "host1" (searched)
//! bind = "simple"                      # simple | anonymous | gssapi
//! bind-dn = "cn=host1,ou=Web,dc=example,dc=org"
//! password-file = "/etc/ipsec/directory.secret"  # mode 0600, first line is the password
//! timeout-seconds = 10
//! assignment-check-minutes = 90
//! ```
//!
//! The password is read when binding and never logged. `bind = "gssapi"` needs the crate
//! feature `gssapi` (see [`Bind::Gssapi`]).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::{DirectoryError, Result};

/// The default configuration file.
pub const DEFAULT_PATH: &str = "/etc/ipsec/directory.toml";

/// How to authenticate to the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Bind {
    /// No bind (anonymous reads).
    Anonymous,
    /// Simple bind with `bind-dn` and the password in `password-file`.
    Simple,
    /// SASL GSSAPI with the host keytab (`KRB5_CLIENT_KTNAME` in the environment). Only
    /// with the crate feature `gssapi` (ldap3's, which needs libkrb5-dev and libclang to
    /// build); without it connecting fails with a configuration error.
    Gssapi,
}

fn default_timeout() -> u64 {
    10
}
fn default_assignment() -> u32 {
    90
}

/// The parsed configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct DirectoryConfig {
    /// `ldap://host[:port]` or `ldaps://host[:port]`.
    pub url: String,
    /// Upgrade an `ldap://` connection with StartTLS.
    #[serde(default)]
    pub starttls: bool,
    /// PEM file of a CA to trust for LDAPS and StartTLS, besides the system's.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The domain's DN.
    pub base: String,
    /// The container of the policy objects (default `ou=IP Security,<base>`).
    #[serde(default)]
    pub container: Option<String>,
    /// This host's entry.
    #[serde(default)]
    pub host_dn: Option<String>,
    /// This host's `cn`, searched below `base` when `host-dn` is not set.
    #[serde(default)]
    pub host_cn: Option<String>,
    /// The bind method.
    pub bind: Bind,
    /// The directory server's host name for the GSSAPI service principal `ldap/<host>`
    /// (default: the URL's host).
    #[serde(default)]
    pub sasl_host: Option<String>,
    /// The DN for a simple bind.
    #[serde(default)]
    pub bind_dn: Option<String>,
    /// The file holding the simple-bind password (mode 0600).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Connect and operation timeout.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    /// The period of the assignment and membership check.
    #[serde(default = "default_assignment")]
    pub assignment_check_minutes: u32,
}

impl DirectoryConfig {
    /// Parses a configuration text; `path` names it in errors.
    pub fn parse(path: &str, text: &str) -> Result<Self> {
        let err = |reason: String| DirectoryError::Config {
            path: path.to_owned(),
            reason,
        };
        let c: Self = toml::from_str(text).map_err(|e| err(e.message().to_owned()))?;
        if !(c.url.starts_with("ldap://")
            || c.url.starts_with("ldaps://")
            || c.url.starts_with("ldapi://"))
        {
            return Err(err(format!(
                "url {:?} is not ldap://, ldaps:// or ldapi://",
                c.url
            )));
        }
        if c.starttls && !c.url.starts_with("ldap://") {
            return Err(err("starttls needs an ldap:// url".into()));
        }
        if c.host_dn.is_none() && c.host_cn.is_none() {
            return Err(err("host-dn or host-cn is required".into()));
        }
        if c.bind == Bind::Simple && (c.bind_dn.is_none() || c.password_file.is_none()) {
            return Err(err(
                "bind = \"simple\" needs bind-dn and password-file".into()
            ));
        }
        if c.timeout_seconds == 0 || c.assignment_check_minutes == 0 {
            return Err(err(
                "timeout-seconds and assignment-check-minutes must be positive".into(),
            ));
        }
        Ok(c)
    }

    /// Reads and parses a configuration file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = fs::read_to_string(path).map_err(|e| DirectoryError::Config {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::parse(&path.display().to_string(), &text)
    }

    /// The host of the GSSAPI service principal: `sasl-host`, else the URL's host.
    pub fn sasl_host(&self) -> String {
        if let Some(h) = &self.sasl_host {
            return h.clone();
        }
        let rest = self.url.split_once("://").map_or("", |(_, r)| r);
        let authority = rest.split('/').next().unwrap_or_default();
        match authority.rsplit_once(':') {
            Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h.to_owned(),
            _ => authority.to_owned(),
        }
    }

    /// The policy container.
    pub fn container(&self) -> String {
        self.container
            .clone()
            .unwrap_or_else(|| format!("ou=IP Security,{}", self.base))
    }

    /// The timeout as a duration.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_seconds)
    }

    /// The assignment check period.
    pub fn assignment_interval(&self) -> Duration {
        Duration::from_secs(u64::from(self.assignment_check_minutes) * 60)
    }

    /// The simple-bind password: the first line of `password-file`, which must not be
    /// readable or writable by group or others.
    pub fn password(&self) -> Result<String> {
        let Some(path) = &self.password_file else {
            return Ok(String::new());
        };
        let err = |reason: String| DirectoryError::Config {
            path: path.display().to_string(),
            reason,
        };
        let meta = fs::metadata(path).map_err(|e| err(e.to_string()))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(err(format!(
                "password file has mode {mode:04o}; it must be 0600 (or stricter)"
            )));
        }
        let text = fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        Ok(text.lines().next().unwrap_or_default().to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const BASIC: &str = r#"
url = "ldap://127.0.0.1:3890"
base = "dc=example,dc=org"
host-cn = "h1"
bind = "anonymous"
"#;

    #[test]
    fn parses_with_defaults() {
        let c = DirectoryConfig::parse("t", BASIC).expect("valid");
        assert_eq!(c.container(), "ou=IP Security,dc=example,dc=org");
        assert_eq!(c.assignment_interval(), Duration::from_secs(90 * 60));
        assert_eq!(c.timeout(), Duration::from_secs(10));
        assert_eq!(c.sasl_host(), "127.0.0.1");
        let c = DirectoryConfig::parse("t", &BASIC.replace("127.0.0.1:3890", "ldap.example.org"))
            .expect("valid");
        assert_eq!(c.sasl_host(), "ldap.example.org");
    }

    #[test]
    fn rejects_bad_configs() {
        for (text, needle) in [
            (BASIC.replace("ldap://", "http://"), "is not ldap://"),
            (BASIC.replace("host-cn = \"h1\"", ""), "host-dn or host-cn"),
            (BASIC.replace("anonymous", "simple"), "needs bind-dn"),
            (
                format!("{BASIC}starttls = true\n").replace("ldap://", "ldaps://"),
                "starttls",
            ),
            (format!("{BASIC}bogus = 1\n"), "unknown field"),
        ] {
            let e = DirectoryConfig::parse("t", &text)
                .expect_err(needle)
                .to_string();
            assert!(e.contains(needle), "{e}");
        }
    }

    #[test]
    fn password_file_must_be_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("secret");
        let mut f = fs::File::create(&p).expect("create");
        writeln!(f, "s3cret").expect("write");
        let mut c = DirectoryConfig::parse("t", BASIC).expect("valid");
        c.password_file = Some(p.clone());
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).expect("chmod");
        let e = c.password().expect_err("0644").to_string();
        assert!(e.contains("must be 0600") && !e.contains("s3cret"), "{e}");
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).expect("chmod");
        assert_eq!(c.password().expect("0600"), "s3cret");
    }
}
