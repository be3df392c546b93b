//! The LDAP client (ldap3, synchronous): bind, find this host's assignment, cheap change
//! detection, whole-policy download, publishing and assignment.
//!
//! Change detection reads only `ipsecVersion` and OpenLDAP's `entryCSN` of the policy entry
//! and of every entry naming it in `ipsecOwnersReference` (two searches; see
//! [`Client::fingerprint`]). A download reads the same entries whole and any referenced
//! entry not owned by the policy, maps them with [`crate::mapping::from_entries`] and
//! validates the result. Not here: the cache and the apply (policyd's directory source).

use std::collections::{HashMap, HashSet};

use ipsec_policy::PolicySet;
use ldap3::{LdapConn, LdapConnSettings, LdapError, Mod, Scope, SearchEntry};
use uuid::Uuid;

use crate::config::{Bind, DirectoryConfig};
use crate::dn;
use crate::error::{malformed, DirectoryError, Result};
use crate::mapping::{self, Entry};
use crate::precedence::{self, Container, Resolution};
use crate::schema::*;

/// What change detection compares: (normalized DN, ipsecVersion, entryCSN) of every entry
/// of a policy, sorted.
pub type Fingerprint = Vec<(String, String, String)>;

/// A downloaded, validated policy.
#[derive(Debug, Clone)]
pub struct Downloaded {
    /// The policy's DN.
    pub dn: String,
    /// The set holding the policy and the components it uses.
    pub set: PolicySet,
    /// The policy's GUID.
    pub id: Uuid,
    /// The policy entry's `ipsecVersion`.
    pub version: u64,
    /// The fingerprint of the downloaded entries.
    pub fingerprint: Fingerprint,
    /// How many entries were read.
    pub entries: usize,
}

/// A policy stored in the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// Its DN.
    pub dn: String,
    /// Its `ipsecName`.
    pub name: String,
    /// Its `ipsecVersion`.
    pub version: String,
}

/// A bound connection.
pub struct Client {
    conn: LdapConn,
    cfg: DirectoryConfig,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.cfg.url)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Connects (StartTLS when configured) and binds.
    pub fn connect(cfg: &DirectoryConfig) -> Result<Self> {
        let unreachable = |e: LdapError| DirectoryError::Unreachable {
            url: cfg.url.clone(),
            reason: e.to_string(),
        };
        #[cfg(not(feature = "gssapi"))]
        if cfg.bind == Bind::Gssapi {
            return Err(DirectoryError::Config {
                path: cfg.url.clone(),
                reason: "bind = \"gssapi\": SASL GSSAPI is not built into this binary (build with the ipsec-directory feature \"gssapi\")".into(),
            });
        }
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(cfg.timeout())
            .set_starttls(cfg.starttls);
        if let Some(ca) = &cfg.ca_file {
            let config_err = |reason: String| DirectoryError::Config {
                path: ca.display().to_string(),
                reason,
            };
            let pem = std::fs::read(ca).map_err(|e| config_err(e.to_string()))?;
            let cert = native_tls::Certificate::from_pem(&pem)
                .map_err(|e| config_err(format!("not a PEM certificate: {e}")))?;
            let connector = native_tls::TlsConnector::builder()
                .add_root_certificate(cert)
                .build()
                .map_err(|e| config_err(e.to_string()))?;
            settings = settings.set_connector(connector);
        }
        let mut conn = LdapConn::with_settings(settings, &cfg.url).map_err(unreachable)?;
        if cfg.bind == Bind::Simple {
            let bind_dn = cfg.bind_dn.clone().unwrap_or_default();
            let password = cfg.password()?;
            conn.with_timeout(cfg.timeout())
                .simple_bind(&bind_dn, &password)
                .map_err(unreachable)?
                .success()
                .map_err(|e| DirectoryError::Unreachable {
                    url: cfg.url.clone(),
                    reason: format!("bind as {bind_dn:?} failed: {e}"),
                })?;
        }
        #[cfg(feature = "gssapi")]
        if cfg.bind == Bind::Gssapi {
            // The credentials come from the process's Kerberos environment: the host
            // keytab through KRB5_CLIENT_KTNAME (MIT), set by the service's start script.
            let host = cfg.sasl_host();
            let failed = |e: LdapError| DirectoryError::Unreachable {
                url: cfg.url.clone(),
                reason: format!("SASL GSSAPI bind (service ldap/{host}) failed: {e}"),
            };
            conn.with_timeout(cfg.timeout())
                .sasl_gssapi_bind(&host)
                .map_err(failed)?
                .success()
                .map_err(failed)?;
        }
        Ok(Self {
            conn,
            cfg: cfg.clone(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &DirectoryConfig {
        &self.cfg
    }

    fn search(
        &mut self,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: &[&str],
    ) -> Result<Vec<Entry>> {
        let r = self
            .conn
            .with_timeout(self.cfg.timeout())
            .search(base, scope, filter, attrs.to_vec())
            .map_err(|e| DirectoryError::Unreachable {
                url: self.cfg.url.clone(),
                reason: e.to_string(),
            })?;
        if r.1.rc == 32 {
            return Ok(Vec::new()); // noSuchObject
        }
        let (entries, _) = r.success().map_err(|e| DirectoryError::Operation {
            op: "search",
            dn: base.to_owned(),
            reason: e.to_string(),
        })?;
        entries
            .into_iter()
            .map(|e| {
                let se = SearchEntry::construct(e);
                if let Some(a) = se.bin_attrs.keys().next() {
                    return Err(malformed(&se.dn, format!("attribute {a} is not UTF-8")));
                }
                let mut out = Entry::new(se.dn);
                for (k, v) in se.attrs {
                    out.add(&k, v);
                }
                Ok(out)
            })
            .collect()
    }

    fn base(&mut self, dn: &str, attrs: &[&str]) -> Result<Option<Entry>> {
        Ok(self
            .search(dn, Scope::Base, "(objectClass=*)", attrs)?
            .into_iter()
            .next())
    }

    /// This host's entry DN: `host-dn`, or the one entry below `base` with `cn=host-cn`.
    pub fn host_dn(&mut self) -> Result<String> {
        if let Some(d) = &self.cfg.host_dn {
            return Ok(d.clone());
        }
        let cn = self.cfg.host_cn.clone().unwrap_or_default();
        let filter = format!(
            "(&(cn={})(!(objectClass={CLASS_BASE})))",
            dn::escape_filter(&cn)
        );
        let base = self.cfg.base.clone();
        let found = self.search(&base, Scope::Subtree, &filter, &["1.1"])?;
        match found.as_slice() {
            [e] => Ok(e.dn.clone()),
            [] => Err(DirectoryError::Operation {
                op: "find host",
                dn: base,
                reason: format!("no entry with cn={cn}"),
            }),
            _ => Err(DirectoryError::Operation {
                op: "find host",
                dn: base,
                reason: format!("{} entries with cn={cn}", found.len()),
            }),
        }
    }

    /// The containers from this host up to the domain, nearest first, with their
    /// assignments.
    pub fn containers(&mut self, host_dn: &str) -> Result<Vec<Container>> {
        let mut out = Vec::new();
        for c in precedence::ancestors(host_dn, &self.cfg.base) {
            let e = self.base(&c, &[ATTR_ASSIGNED, ATTR_BLOCK])?;
            let (assigned, block) = match &e {
                Some(e) => (
                    e.values(ATTR_ASSIGNED).first().cloned(),
                    e.values(ATTR_BLOCK)
                        .first()
                        .is_some_and(|v| v.eq_ignore_ascii_case("TRUE")),
                ),
                None => (None, false),
            };
            out.push(Container {
                dn: c,
                assigned,
                block_inheritance: block,
            });
        }
        Ok(out)
    }

    /// Finds this host and resolves its assignment (the periodic assignment and membership
    /// check).
    pub fn assignment(&mut self) -> Result<(String, Resolution)> {
        let host = self.host_dn()?;
        let chain = self.containers(&host)?;
        Ok((host, precedence::resolve(&chain)))
    }

    fn owner_filter(policy_dn: &str) -> String {
        format!("({ATTR_OWNERS}={})", dn::escape_filter(policy_dn))
    }

    /// The change-detection fingerprint of a policy: version attributes only.
    pub fn fingerprint(&mut self, policy_dn: &str) -> Result<Fingerprint> {
        let attrs = [ATTR_VERSION, "entryCSN"];
        let mut entries: Vec<Entry> = self.base(policy_dn, &attrs)?.into_iter().collect();
        let container = self.cfg.container();
        entries.extend(self.search(
            &container,
            Scope::Subtree,
            &Self::owner_filter(policy_dn),
            &attrs,
        )?);
        Ok(fingerprint_of(&entries))
    }

    /// Downloads the policy at `policy_dn` whole, maps and validates it.
    pub fn download(&mut self, policy_dn: &str) -> Result<Downloaded> {
        let attrs = ["*", "entryCSN"];
        let container = self.cfg.container();
        let mut map: HashMap<String, Entry> = HashMap::new();
        for e in self.base(policy_dn, &attrs)?.into_iter().chain(self.search(
            &container,
            Scope::Subtree,
            &Self::owner_filter(policy_dn),
            &attrs,
        )?) {
            map.insert(dn::normalize(&e.dn), e);
        }
        let mut extra = 0usize;
        let (set, id) = {
            let mut fetch = |d: &str| -> Result<Option<Entry>> {
                if let Some(e) = map.get(&dn::normalize(d)) {
                    return Ok(Some(e.clone()));
                }
                extra += 1;
                self.base(d, &attrs)
            };
            mapping::from_entries(policy_dn, &mut fetch)?
        };
        ipsec_policy::validate(&set).map_err(|e| DirectoryError::Invalid {
            dn: policy_dn.to_owned(),
            reason: e.to_string(),
        })?;
        let entries: Vec<Entry> = map.into_values().collect();
        let version = set.policy(id).map_or(0, |p| p.version);
        Ok(Downloaded {
            dn: policy_dn.to_owned(),
            fingerprint: fingerprint_of(&entries),
            entries: entries.len() + extra,
            set,
            id,
            version,
        })
    }

    fn ldap_err<'a>(dn: &'a str, op: &'static str) -> impl Fn(LdapError) -> DirectoryError + 'a {
        move |e| DirectoryError::Operation {
            op,
            dn: dn.to_owned(),
            reason: e.to_string(),
        }
    }

    /// Writes policy `id` of `set` and its components to the container (added or
    /// replaced; shared components get this policy added to their owners; rules the policy
    /// no longer has are deleted). Returns the policy's DN.
    pub fn publish(&mut self, set: &PolicySet, id: Uuid) -> Result<String> {
        let container = self.cfg.container();
        let closure = mapping::policy_closure(set, id)
            .ok_or_else(|| DirectoryError::Publish(format!("no policy {}", mapping::guid(id))))?;
        ipsec_policy::validate(&closure).map_err(|e| DirectoryError::Publish(e.to_string()))?;
        let entries = mapping::to_entries(&closure, id, &container)?;
        let pdn = entries
            .first()
            .map(|e| e.dn.clone())
            .ok_or_else(|| DirectoryError::Publish("no entries".into()))?;
        let old_rules: Vec<String> = self
            .base(&pdn, &[ATTR_NFA_REF])?
            .map(|e| e.values(ATTR_NFA_REF).to_vec())
            .unwrap_or_default();
        // Atomic for a reader: the components first, then the heads of other policies
        // sharing a changed component, and this policy's head last, each head in one modify.
        // A head records the digest of every component it was published with, and a
        // download that reads a component not matching its head is rejected as inconsistent
        // (the reader keeps its last good policy and reads again at the next poll): it gets
        // either the whole old policy or the whole new one.
        let mut shared: Vec<(String, Uuid, String)> = Vec::new();
        for e in entries.iter().skip(1) {
            for owner in self.write_entry(e)? {
                if dn::same(&owner, &pdn) {
                    continue;
                }
                let class = mapping::component_class(e).unwrap_or_default();
                let cid = mapping::parse_guid(&e.dn, e.single(ATTR_ID)?)?;
                let d = mapping::digest(class, e.single(ATTR_DATA)?);
                shared.push((owner, cid, d));
            }
        }
        for (owner, cid, d) in shared {
            let Some(head) = self.base(&owner, &[ATTR_DATA])? else {
                continue; // an owner deleted since: nothing to keep consistent
            };
            if let Some(data) = mapping::redigest(&head, cid, &d)? {
                self.modify(
                    &owner,
                    vec![Mod::Replace(ATTR_DATA.into(), HashSet::from([data]))],
                )?;
            }
        }
        if let Some(head) = entries.first() {
            self.write_entry(head)?;
        }
        let new: HashSet<String> = entries.iter().map(|e| dn::normalize(&e.dn)).collect();
        for r in old_rules {
            if !new.contains(&dn::normalize(&r)) {
                self.conn
                    .delete(&r)
                    .map_err(Self::ldap_err(&r, "delete"))?
                    .non_error()
                    .map_err(Self::ldap_err(&r, "delete"))?;
            }
        }
        Ok(pdn)
    }

    fn modify(&mut self, dn: &str, mods: Vec<Mod<String>>) -> Result<()> {
        self.conn
            .modify(dn, mods)
            .map_err(Self::ldap_err(dn, "modify"))?
            .success()
            .map_err(Self::ldap_err(dn, "modify"))?;
        Ok(())
    }

    /// Adds the entry, or modifies only the attributes that differ (an unchanged object
    /// keeps its entryCSN, so republishing it marks no policy changed). Returns the owners
    /// the entry had when its `ipsecData` changed (empty otherwise).
    fn write_entry(&mut self, e: &Entry) -> Result<Vec<String>> {
        let existing = self.base(&e.dn, &["*"])?;
        match existing {
            None => {
                // An attribute without values (a policy without rules) is left out: LDAP
                // refuses an add with an empty value set.
                let attrs: Vec<(String, HashSet<String>)> = e
                    .attrs
                    .iter()
                    .filter(|(_, v)| !v.is_empty())
                    .map(|(k, v)| (k.clone(), v.iter().cloned().collect()))
                    .collect();
                self.conn
                    .add(&e.dn, attrs)
                    .map_err(Self::ldap_err(&e.dn, "add"))?
                    .success()
                    .map_err(Self::ldap_err(&e.dn, "add"))?;
            }
            Some(old) => {
                let mut mods = Vec::new();
                for (k, v) in &e.attrs {
                    if k == "objectClass" || k == "cn" {
                        continue;
                    }
                    if k == ATTR_OWNERS {
                        let missing: HashSet<String> = v
                            .iter()
                            .filter(|o| !old.values(ATTR_OWNERS).iter().any(|x| dn::same(x, o)))
                            .cloned()
                            .collect();
                        if !missing.is_empty() {
                            mods.push(Mod::Add(k.clone(), missing));
                        }
                        continue;
                    }
                    let norm = |vals: &[String]| -> HashSet<String> {
                        vals.iter()
                            .map(|x| {
                                if k.ends_with("Reference") {
                                    dn::normalize(x)
                                } else {
                                    x.clone()
                                }
                            })
                            .collect()
                    };
                    if norm(v) != norm(old.values(k)) {
                        mods.push(Mod::Replace(k.clone(), v.iter().cloned().collect()));
                    }
                }
                if mods.is_empty() {
                    return Ok(Vec::new());
                }
                let data_changed = e.values(ATTR_DATA) != old.values(ATTR_DATA);
                self.modify(&e.dn, mods)?;
                if data_changed {
                    return Ok(old.values(ATTR_OWNERS).to_vec());
                }
            }
        }
        Ok(Vec::new())
    }

    fn modify_container(&mut self, container: &str, mut mods: Vec<Mod<String>>) -> Result<()> {
        let e =
            self.base(container, &["objectClass"])?
                .ok_or_else(|| DirectoryError::Operation {
                    op: "assign",
                    dn: container.to_owned(),
                    reason: "no such container".into(),
                })?;
        if !e.has_class(CLASS_ASSIGNMENT) {
            mods.insert(
                0,
                Mod::Add(
                    "objectClass".into(),
                    HashSet::from([CLASS_ASSIGNMENT.to_owned()]),
                ),
            );
        }
        self.conn
            .modify(container, mods)
            .map_err(Self::ldap_err(container, "modify"))?
            .success()
            .map_err(Self::ldap_err(container, "modify"))?;
        Ok(())
    }

    /// Assigns `policy_dn` to `container`, or removes its assignment (`None`).
    pub fn assign(&mut self, container: &str, policy_dn: Option<&str>) -> Result<()> {
        if let Some(p) = policy_dn {
            if self.base(p, &[ATTR_ID])?.is_none() {
                return Err(DirectoryError::Operation {
                    op: "assign",
                    dn: p.to_owned(),
                    reason: "no such policy".into(),
                });
            }
        }
        let values: HashSet<String> = policy_dn.into_iter().map(str::to_owned).collect();
        self.modify_container(container, vec![Mod::Replace(ATTR_ASSIGNED.into(), values)])
    }

    /// The DN of the policy assigned to `container` (`None`: no assignment).
    pub fn assigned_to(&mut self, container: &str) -> Result<Option<String>> {
        let e =
            self.base(container, &[ATTR_ASSIGNED])?
                .ok_or_else(|| DirectoryError::Operation {
                    op: "read assignment",
                    dn: container.to_owned(),
                    reason: "no such container".into(),
                })?;
        Ok(e.values(ATTR_ASSIGNED).first().cloned())
    }

    /// Sets or clears the blocking of inheritance at `container`.
    pub fn block_inheritance(&mut self, container: &str, block: bool) -> Result<()> {
        let v = if block { "TRUE" } else { "FALSE" };
        self.modify_container(
            container,
            vec![Mod::Replace(
                ATTR_BLOCK.into(),
                HashSet::from([v.to_owned()]),
            )],
        )
    }

    /// The policies in the container.
    pub fn policies(&mut self) -> Result<Vec<Published>> {
        let container = self.cfg.container();
        let mut v: Vec<Published> = self
            .search(
                &container,
                Scope::OneLevel,
                &format!("(objectClass={CLASS_POLICY})"),
                &[ATTR_NAME, ATTR_VERSION],
            )?
            .into_iter()
            .map(|e| Published {
                name: e.values(ATTR_NAME).first().cloned().unwrap_or_default(),
                version: e.values(ATTR_VERSION).first().cloned().unwrap_or_default(),
                dn: e.dn,
            })
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(v)
    }

    /// The DN of the published policy named `name`.
    pub fn policy_dn_by_name(&mut self, name: &str) -> Result<String> {
        self.policies()?
            .into_iter()
            .find(|p| p.name == name)
            .map(|p| p.dn)
            .ok_or_else(|| DirectoryError::Operation {
                op: "find policy",
                dn: self.cfg.container(),
                reason: format!("no policy named {name:?}"),
            })
    }
}

fn fingerprint_of(entries: &[Entry]) -> Fingerprint {
    let mut f: Fingerprint = entries
        .iter()
        .map(|e| {
            (
                dn::normalize(&e.dn),
                e.values(ATTR_VERSION).join(","),
                e.values("entryCSN").join(","),
            )
        })
        .collect();
    f.sort();
    f.dedup();
    f
}
