//! `ipsecadm dynamic`: the running state (kernel SAs and policies through
//! `pfkey::KernelInterface`), agent settings, immediate rules and refresh.

use std::collections::BTreeSet;
use std::path::Path;

use ipsec_agent::{apply, compile, CompileOptions, DesiredState};
use ipsec_policy::{
    validate, validate_settings, Action, AuthMethod, ConnectionType, DefaultResponseRule,
    Direction as FilterDirection, Filter, FilterAction, FilterList, InterfaceSnapshot,
    IsakmpPolicy, Location, Negotiation, Policy as StorePolicy, PolicySet, Protocol, Rule,
    Settings,
};
#[cfg(not(target_os = "linux"))]
use pfkey::pfkey::PfKeyKernel as NativeKernel;
#[cfg(target_os = "linux")]
use pfkey::xfrm::XfrmKernel as NativeKernel;
use pfkey::{
    Direction, EncryptionAlgorithm, IntegrityAlgorithm, KernelInterface, Mode, Ownership, Policy,
    PolicyAction, SecurityAssociation, SecurityProtocol, TemplateLevel, UpperLayer,
};
use serde_json::{json, Value};

use crate::cli::*;
use crate::error::{store, usage, Error, Result};
use crate::output::{fields, print_json, yes, Table};
use crate::parse::{boot_exemptions_string, boot_mode_name, endpoint_with_mask};
use crate::{snapshot, statics, Ctx};

pub(crate) fn run(ctx: &Ctx, cmd: DynamicCmd) -> Result<()> {
    match cmd {
        DynamicCmd::Show(s) => match s {
            DynamicShow::Mmsas => crate::ikdctl::show_mmsas(ctx),
            DynamicShow::Qmsas => show_qmsas(ctx),
            DynamicShow::Mmfilters => show_mmfilters(ctx),
            DynamicShow::Qmfilters => show_qmfilters(ctx),
            DynamicShow::Stats => show_stats(ctx),
            DynamicShow::Config(a) => show_config(ctx, &a.rundir),
        },
        DynamicCmd::Set(DynamicSet::Config(args)) => set_config(ctx, args),
        DynamicCmd::Add(DynamicAdd::Rule(args)) => add_rule(ctx, &args),
        DynamicCmd::Delete(DynamicDelete::Rule(args)) => delete_rule(ctx, &args),
        DynamicCmd::Refresh(args) => refresh(&args.pidfile),
    }
}

/// The system's own kernel interface: XFRM on Linux, PF_KEY on FreeBSD.
fn kernel() -> Result<NativeKernel> {
    NativeKernel::open()
        .map_err(|e| Error::Kernel(format!("cannot open the kernel IPsec interface: {e}")))
}

// ---------------------------------------------------------------- formatting

fn proto_name(p: SecurityProtocol) -> &'static str {
    match p {
        SecurityProtocol::Esp => "esp",
        SecurityProtocol::Ah => "ah",
        SecurityProtocol::Comp => "comp",
    }
}

fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Transport => "transport",
        Mode::Tunnel => "tunnel",
    }
}

fn dir_name(d: Direction) -> &'static str {
    match d {
        Direction::In => "in",
        Direction::Out => "out",
        Direction::Fwd => "fwd",
    }
}

fn enc_name(e: EncryptionAlgorithm) -> String {
    match e {
        EncryptionAlgorithm::Null => "null".into(),
        EncryptionAlgorithm::DesCbc => "des-cbc".into(),
        EncryptionAlgorithm::TripleDesCbc => "3des-cbc".into(),
        EncryptionAlgorithm::AesCbc => "aes-cbc".into(),
        EncryptionAlgorithm::AesGcm { icv_bits } => format!("aes-gcm-{icv_bits}"),
    }
}

fn integ_name(i: IntegrityAlgorithm) -> &'static str {
    match i {
        IntegrityAlgorithm::HmacMd5_96 => "hmac-md5-96",
        IntegrityAlgorithm::HmacSha1_96 => "hmac-sha1-96",
        IntegrityAlgorithm::HmacSha256_128 => "hmac-sha256-128",
        IntegrityAlgorithm::HmacSha384_192 => "hmac-sha384-192",
        IntegrityAlgorithm::HmacSha512_256 => "hmac-sha512-256",
    }
}

/// Algorithm names with key sizes; never the keys.
fn sa_algorithms(sa: &SecurityAssociation) -> (String, String) {
    let enc = sa.encryption.as_ref().map_or_else(
        || "none".into(),
        |(a, k)| format!("{}/{}", enc_name(*a), k.bits()),
    );
    let integ = sa
        .integrity
        .as_ref()
        .map_or_else(|| "none".into(), |(a, _)| integ_name(*a).to_owned());
    (enc, integ)
}

fn upper(u: &UpperLayer) -> (String, String, String) {
    match u {
        UpperLayer::Any => ("any".into(), "any".into(), "any".into()),
        UpperLayer::Proto {
            proto,
            source_port,
            destination_port,
        } => (
            Protocol::Number(*proto).to_string(),
            source_port.map_or("any".into(), |p| p.to_string()),
            destination_port.map_or("any".into(), |p| p.to_string()),
        ),
    }
}

fn action_string(a: &PolicyAction) -> String {
    match a {
        PolicyAction::Allow => "allow".into(),
        PolicyAction::Block => "block".into(),
        PolicyAction::Protect(ts) => {
            let parts: Vec<String> = ts
                .iter()
                .map(|t| {
                    let mut s = format!(
                        "{} {} reqid {}",
                        proto_name(t.protocol),
                        mode_name(t.mode),
                        t.reqid
                    );
                    if let Some((a, b)) = t.tunnel {
                        s.push_str(&format!(" {a}->{b}"));
                    }
                    if t.level == TemplateLevel::Use {
                        s.push_str(" (use)");
                    }
                    s
                })
                .collect();
            format!("protect[{}]", parts.join("; "))
        }
    }
}

fn policy_json(p: &Policy, owned: bool) -> Value {
    let s = &p.id.selector;
    let (proto, sport, dport) = upper(&s.upper);
    json!({
        "direction": dir_name(p.id.direction),
        "source": s.source.to_string(),
        "destination": s.destination.to_string(),
        "protocol": proto,
        "source-port": sport,
        "destination-port": dport,
        "action": action_string(&p.action),
        "priority": p.priority,
        "index": p.index,
        "owned": owned,
    })
}

fn policy_row(p: &Policy, extra: &str) -> Vec<String> {
    let s = &p.id.selector;
    let (proto, sport, dport) = upper(&s.upper);
    vec![
        dir_name(p.id.direction).into(),
        s.source.to_string(),
        s.destination.to_string(),
        proto,
        sport,
        dport,
        p.priority.to_string(),
        action_string(&p.action),
        extra.to_owned(),
    ]
}

const POLICY_HEADERS: [&str; 9] = [
    "DIR",
    "SOURCE",
    "DESTINATION",
    "PROTO",
    "SPORT",
    "DPORT",
    "PRIORITY",
    "ACTION",
    "OWNER",
];

// ---------------------------------------------------------------- show

fn show_qmsas(ctx: &Ctx) -> Result<()> {
    let own = Ownership::default();
    let sas = kernel()?.dump_sas()?;
    let by_spi = crate::ikdctl::sas_by_spi(ctx);
    let ikd = |sa: &SecurityAssociation| by_spi.get(&format!("{:08x}", sa.id.spi)).cloned();
    let connection = |sa: &SecurityAssociation| ikd(sa).map(|s| s.connection);
    // ikd's record when it has one, else what the kernel says (an SA ikd did not install).
    let offload = |sa: &SecurityAssociation| {
        ikd(sa)
            .and_then(|s| s.offload)
            .unwrap_or_else(|| match &sa.offload {
                Some(o) => format!("ifindex {}", o.ifindex),
                None => "none".into(),
            })
    };
    if ctx.json {
        let v: Vec<Value> = sas
            .iter()
            .map(|sa| {
                let (enc, integ) = sa_algorithms(sa);
                json!({
                    "source": sa.source.to_string(),
                    "destination": sa.id.destination.to_string(),
                    "protocol": proto_name(sa.id.protocol),
                    "spi": format!("0x{:08x}", sa.id.spi),
                    "mode": mode_name(sa.mode),
                    "reqid": sa.reqid,
                    "owned": own.owns_sa(sa),
                    "encryption": enc,
                    "integrity": integ,
                    "bytes": sa.current.bytes,
                    "packets": sa.current.packets,
                    "add-time": sa.current.add_time,
                    "use-time": sa.current.use_time,
                    "ike-connection": connection(sa),
                    "offload": offload(sa),
                })
            })
            .collect();
        print_json(&Value::Array(v));
        return Ok(());
    }
    let mut t = Table::new(&[
        "SOURCE",
        "DESTINATION",
        "PROTO",
        "SPI",
        "MODE",
        "REQID",
        "OWNED",
        "ENCRYPTION",
        "INTEGRITY",
        "BYTES",
        "PACKETS",
        "IKE CONNECTION",
        "OFFLOAD",
    ]);
    for sa in &sas {
        let (enc, integ) = sa_algorithms(sa);
        t.row(vec![
            sa.source.to_string(),
            sa.id.destination.to_string(),
            proto_name(sa.id.protocol).into(),
            format!("0x{:08x}", sa.id.spi),
            mode_name(sa.mode).into(),
            sa.reqid.to_string(),
            yes(own.owns_sa(sa)),
            enc,
            integ,
            sa.current.bytes.to_string(),
            sa.current.packets.to_string(),
            connection(sa).unwrap_or_else(|| "-".into()),
            offload(sa),
        ]);
    }
    print!("{}", t.render());
    println!("{} quick-mode SA(s)", sas.len());
    Ok(())
}

/// The assigned policies of the persistent and local locations with their sets.
fn assigned_policies(ctx: &Ctx) -> Result<Vec<(&'static str, PolicySet, StorePolicy)>> {
    let st = statics::open(ctx)?;
    let mut out = Vec::new();
    for (name, loc) in [
        ("persistent", Location::Persistent),
        ("local", Location::Local),
    ] {
        let c = st.location(loc)?;
        if let Some(p) = c.assigned.and_then(|id| c.set.policy(id)).cloned() {
            out.push((name, c.set, p));
        }
    }
    Ok(out)
}

fn show_mmfilters(ctx: &Ctx) -> Result<()> {
    let snap = snapshot::take();
    let mut rows = Vec::new();
    for (loc, set, p) in assigned_policies(ctx)? {
        let mut seen = BTreeSet::new();
        for f in ipsec_policy::expand(&set, &p, &snap) {
            if !matches!(f.action, Action::Negotiate(_)) {
                continue;
            }
            let Some(rule) = p.rules.iter().find(|r| r.id == f.rule) else {
                continue;
            };
            let (src, dst) = match f.direction {
                FilterDirection::Outbound => (f.source, f.destination),
                FilterDirection::Inbound => (f.destination, f.source),
            };
            // Main-mode filters are per address pair, both directions in one.
            if !seen.insert((f.rule, src.to_string(), dst.to_string())) {
                continue;
            }
            let auth: Vec<&str> = rule.auth_methods.iter().map(AuthMethod::kind).collect();
            rows.push((
                loc,
                p.name.clone(),
                rule.name.clone(),
                src.to_string(),
                dst.to_string(),
                auth.join(","),
                f.tunnel_endpoint
                    .map_or_else(|| "none".into(), |t| t.to_string()),
            ));
        }
    }
    if ctx.json {
        let v: Vec<Value> = rows
            .iter()
            .map(|(loc, p, r, s, d, a, t)| {
                json!({"location": loc, "policy": p, "rule": r, "me": s, "peer": d, "auth": a, "tunnel": t})
            })
            .collect();
        print_json(&Value::Array(v));
    } else {
        let mut t = Table::new(&["LOCATION", "POLICY", "RULE", "ME", "PEER", "AUTH", "TUNNEL"]);
        for (loc, p, r, s, d, a, tun) in rows {
            t.row(vec![loc.into(), p, r, s, d, a, tun]);
        }
        print!("{}", t.render());
    }
    Ok(())
}

fn compile_assigned(
    ctx: &Ctx,
    snap: &InterfaceSnapshot,
) -> Vec<(&'static str, String, DesiredState)> {
    let policies = match assigned_policies(ctx) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("ipsecadm: warning: policy store not read ({e}); kernel state only");
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for (loc, set, p) in policies {
        match compile(&set, &p, snap, &CompileOptions::default()) {
            Ok(d) => out.push((loc, p.name.clone(), d)),
            Err(e) => eprintln!(
                "ipsecadm: warning: policy {:?} does not compile: {e}",
                p.name
            ),
        }
    }
    out
}

fn show_qmfilters(ctx: &Ctx) -> Result<()> {
    let own = Ownership::default();
    let installed = kernel()?.dump_policies()?;
    let snap = snapshot::take();
    let desired = compile_assigned(ctx, &snap);
    let is_installed = |d: &Policy| {
        installed
            .iter()
            .any(|p| p.id == d.id && p.action == d.action && p.priority == d.priority)
    };
    if ctx.json {
        let kernel: Vec<Value> = installed
            .iter()
            .map(|p| policy_json(p, own.owns_policy(p)))
            .collect();
        let mut want = Vec::new();
        for (loc, name, d) in &desired {
            for p in d.policies() {
                let mut v = policy_json(p, true);
                if let Value::Object(m) = &mut v {
                    m.insert("location".into(), json!(loc));
                    m.insert("policy".into(), json!(name));
                    m.insert("installed".into(), json!(is_installed(p)));
                }
                want.push(v);
            }
        }
        print_json(&json!({"kernel": kernel, "desired": want}));
        return Ok(());
    }
    println!("Kernel policies:");
    let mut t = Table::new(&POLICY_HEADERS);
    for p in &installed {
        t.row(policy_row(
            p,
            if own.owns_policy(p) {
                "ipsec"
            } else {
                "foreign"
            },
        ));
    }
    print!("{}", t.render());
    for (loc, name, d) in &desired {
        println!("\nDesired by the assigned {loc} policy {name:?}:");
        let mut headers = POLICY_HEADERS;
        headers[8] = "INSTALLED";
        let mut t = Table::new(&headers);
        for p in d.policies() {
            t.row(policy_row(p, &yes(is_installed(p))));
        }
        print!("{}", t.render());
    }
    Ok(())
}

fn show_stats(ctx: &Ctx) -> Result<()> {
    let own = Ownership::default();
    let mut k = kernel()?;
    let spd = k.spd_info()?;
    let policies = k.dump_policies()?;
    let sas = k.dump_sas()?;
    let owned_policies = policies.iter().filter(|p| own.owns_policy(p)).count();
    let owned_sas = sas.iter().filter(|s| own.owns_sa(s)).count();
    let count = |p: SecurityProtocol| sas.iter().filter(|s| s.id.protocol == p).count();
    // ikd's counters when it answers; the kernel's view stands alone otherwise.
    let ike = crate::ikdctl::statistics(ctx);
    let bytes: u64 = sas
        .iter()
        .map(|s| s.current.bytes)
        .fold(0, u64::saturating_add);
    let packets: u64 = sas
        .iter()
        .map(|s| s.current.packets)
        .fold(0, u64::saturating_add);
    if ctx.json {
        print_json(&json!({
            "backend": k.backend_name(),
            "spd": {
                "inbound": spd.inbound, "outbound": spd.outbound, "forward": spd.forward,
                "socket-inbound": spd.socket_inbound, "socket-outbound": spd.socket_outbound,
            },
            "policies": {"total": policies.len(), "owned": owned_policies},
            "sas": {
                "total": sas.len(), "owned": owned_sas,
                "esp": count(SecurityProtocol::Esp), "ah": count(SecurityProtocol::Ah),
                "comp": count(SecurityProtocol::Comp),
            },
            "bytes": bytes,
            "packets": packets,
            "ike": ike.as_ref().ok(),
        }));
        return Ok(());
    }
    let mut pairs = vec![
        ("Kernel interface", k.backend_name().into()),
        ("SPD inbound", spd.inbound.to_string()),
        ("SPD outbound", spd.outbound.to_string()),
        ("SPD forward", spd.forward.to_string()),
        (
            "SPD socket in/out",
            format!("{}/{}", spd.socket_inbound, spd.socket_outbound),
        ),
        (
            "Policies (owned)",
            format!("{} ({owned_policies})", policies.len()),
        ),
        (
            "Quick-mode SAs (owned)",
            format!("{} ({owned_sas})", sas.len()),
        ),
        (
            "ESP / AH / IPComp SAs",
            format!(
                "{} / {} / {}",
                count(SecurityProtocol::Esp),
                count(SecurityProtocol::Ah),
                count(SecurityProtocol::Comp)
            ),
        ),
        ("Bytes (all SAs)", bytes.to_string()),
        ("Packets (all SAs)", packets.to_string()),
    ];
    match &ike {
        Ok(s) => pairs.extend(crate::ikdctl::statistics_pairs(s)),
        Err(e) => pairs.push(("IKE (ikd)", format!("not available: {e}"))),
    }
    print!("{}", fields(&pairs));
    Ok(())
}

// ---------------------------------------------------------------- config

fn show_config(ctx: &Ctx, run_dir: &Path) -> Result<()> {
    let s = statics::open(ctx)?.settings()?;
    let source = crate::directory::active_source(run_dir);
    if ctx.json {
        let mut v = serde_json::to_value(&s).map_err(|e| store(e.to_string()))?;
        if let Value::Object(m) = &mut v {
            m.insert("policy-source".into(), Value::String(source));
        }
        print_json(&v);
        return Ok(());
    }
    print!("{}", config_text(&s, source));
    Ok(())
}

fn config_text(s: &Settings, source: String) -> String {
    fields(&[
        ("bootmode", boot_mode_name(s.boot_mode).into()),
        ("bootexemptions", boot_exemptions_string(&s.boot_exemptions)),
        ("ipsecexempt", s.ipsec_exempt.to_string()),
        ("strongcrlcheck", s.strong_crl_check.to_string()),
        ("ikelogging", yes(s.ike_logging)),
        ("ipsecdiagnostics", s.ipsec_diagnostics.to_string()),
        (
            "directorypolling",
            format!("{} min", s.directory_polling_minutes),
        ),
        (
            "assignmentcheck",
            format!("{} min", s.assignment_check_minutes),
        ),
        ("policysource", source),
    ])
}

fn set_config(ctx: &Ctx, a: ConfigArgs) -> Result<()> {
    let st = statics::open(ctx)?;
    let mut s = st.settings()?;
    if let Some(v) = a.bootmode {
        s.boot_mode = v;
    }
    if let Some(v) = a.bootexemptions {
        s.boot_exemptions = v.0;
    }
    if let Some(v) = a.ipsecexempt {
        s.ipsec_exempt = v;
    }
    if let Some(v) = a.strongcrlcheck {
        s.strong_crl_check = v;
    }
    if let Some(v) = a.ikelogging {
        s.ike_logging = v;
    }
    if let Some(v) = a.ipsecdiagnostics {
        s.ipsec_diagnostics = v;
    }
    if let Some(v) = a.directorypolling {
        s.directory_polling_minutes = v;
    }
    if let Some(v) = a.assignmentcheck {
        s.assignment_check_minutes = v;
    }
    validate_settings(&s)?;
    st.set_settings(&s)?;
    Ok(())
}

// ---------------------------------------------------------------- immediate rules

/// A one-rule policy set for an immediate rule, with fresh GUIDs.
fn immediate_set(a: &ImmediateRuleArgs) -> Result<PolicySet> {
    let source = endpoint_with_mask(a.srcaddr, a.srcmask).map_err(usage)?;
    let destination = endpoint_with_mask(a.dstaddr, a.dstmask).map_err(usage)?;
    let kind = a.action.unwrap_or(ActionKind::Block);
    if kind != ActionKind::Negotiate && (a.qmsecmethods.is_some() || a.inpass.is_some()) {
        return Err(usage(
            "--qmsecmethods and --inpass apply to --action negotiate only",
        ));
    }
    let id = ipsec_policy::new_id;
    let filter = Filter {
        id: id(),
        version: 1,
        description: "immediate".into(),
        source,
        destination,
        mirrored: a.mirrored.unwrap_or(true),
        protocol: a.protocol.unwrap_or(Protocol::Any),
        source_port: a.srcport.unwrap_or(0),
        destination_port: a.dstport.unwrap_or(0),
    };
    let list = FilterList {
        id: id(),
        version: 1,
        name: "ipsecadm immediate".into(),
        description: String::new(),
        filters: vec![filter],
    };
    let action = FilterAction {
        id: id(),
        version: 1,
        name: "ipsecadm immediate".into(),
        description: String::new(),
        action: match kind {
            ActionKind::Permit => Action::Permit,
            ActionKind::Block => Action::Block,
            ActionKind::Negotiate => Action::Negotiate(Negotiation {
                inbound_pass_through: a.inpass.unwrap_or(false),
                fall_back_to_clear: false,
                qm_pfs: false,
                offload: false,
                methods: a.qmsecmethods.clone().map(|m| m.0).unwrap_or_else(|| {
                    vec![ipsec_policy::QuickModeMethod::esp(
                        ipsec_policy::Encryption::Aes128,
                        ipsec_policy::Integrity::Sha1,
                    )]
                }),
            }),
        },
    };
    let rule = Rule {
        id: id(),
        version: 1,
        name: "immediate".into(),
        description: String::new(),
        active: true,
        filter_list: list.id,
        filter_action: action.id,
        auth_methods: vec![AuthMethod::Kerberos],
        tunnel_endpoint: None,
        connection_type: ConnectionType::All,
    };
    let policy = StorePolicy {
        id: id(),
        version: 1,
        name: "ipsecadm immediate".into(),
        description: String::new(),
        polling_interval_minutes: ipsec_policy::DEFAULT_POLLING_MINUTES,
        isakmp: IsakmpPolicy {
            id: id(),
            version: 1,
            master_key_lifetime_minutes: ipsec_policy::DEFAULT_MM_LIFETIME_MINUTES,
            quick_modes_per_main_mode: 0,
            master_key_pfs: false,
            methods: crate::parse::mm_methods("3DES-SHA1-2").unwrap_or_default(),
        },
        rules: vec![rule],
        default_response: DefaultResponseRule {
            id: id(),
            version: 1,
            active: false,
            auth_methods: vec![AuthMethod::Kerberos],
            methods: vec![],
            qm_pfs: false,
        },
    };
    Ok(PolicySet {
        policies: vec![policy],
        filter_lists: vec![list],
        filter_actions: vec![action],
    })
}

/// Compiles an immediate rule to kernel policies with reqids no installed owned policy uses.
fn immediate_policies(a: &ImmediateRuleArgs, installed: &[Policy]) -> Result<Vec<Policy>> {
    let snap = snapshot::take();
    let used: BTreeSet<u32> = installed
        .iter()
        .filter_map(|p| match &p.action {
            PolicyAction::Protect(ts) => Some(ts.iter().map(|t| t.reqid)),
            _ => None,
        })
        .flatten()
        .collect();
    for _ in 0..32 {
        let set = immediate_set(a)?;
        validate(&set)?;
        let Some(policy) = set.policies.first() else {
            return Err(store("internal error: empty immediate policy"));
        };
        let d = compile(&set, policy, &snap, &CompileOptions::default())
            .map_err(|e| store(format!("the rule does not compile: {e}")))?;
        if d.entries.is_empty() {
            return Err(usage(
                "the rule matches no traffic on this computer (no address for me?)",
            ));
        }
        if d.reqids.values().all(|r| !used.contains(r)) {
            return Ok(d.policies().cloned().collect());
        }
    }
    Err(Error::Kernel("no free reqid for the immediate rule".into()))
}

fn print_policies(ctx: &Ctx, verb: &str, ps: &[Policy]) {
    if ctx.json {
        print_json(&json!({
            verb: ps.iter().map(|p| policy_json(p, true)).collect::<Vec<_>>()
        }));
    } else {
        println!("{verb} {} kernel policies:", ps.len());
        let mut t = Table::new(&POLICY_HEADERS);
        for p in ps {
            t.row(policy_row(p, "ipsec"));
        }
        print!("{}", t.render());
    }
}

fn add_rule(ctx: &Ctx, a: &ImmediateRuleArgs) -> Result<()> {
    let own = Ownership::default();
    let mut k = kernel()?;
    let installed = k.dump_policies()?;
    let new = immediate_policies(a, &installed)?;
    let mut desired: Vec<Policy> = installed
        .iter()
        .filter(|p| own.owns_policy(p) && !new.iter().any(|n| n.id == p.id))
        .cloned()
        .collect();
    desired.extend(new.iter().cloned());
    apply(&mut k, &DesiredState::from_policies(desired), &own)?;
    print_policies(ctx, "added", &new);
    Ok(())
}

fn delete_rule(ctx: &Ctx, a: &ImmediateRuleArgs) -> Result<()> {
    let own = Ownership::default();
    let mut k = kernel()?;
    let installed = k.dump_policies()?;
    let gone = immediate_policies(a, &[])?;
    let removed: Vec<Policy> = installed
        .iter()
        .filter(|p| own.owns_policy(p) && gone.iter().any(|g| g.id == p.id))
        .cloned()
        .collect();
    if removed.is_empty() {
        return Err(store("no installed rule matches; nothing deleted"));
    }
    let desired: Vec<Policy> = installed
        .iter()
        .filter(|p| own.owns_policy(p) && !gone.iter().any(|g| g.id == p.id))
        .cloned()
        .collect();
    apply(&mut k, &DesiredState::from_policies(desired), &own)?;
    print_policies(ctx, "deleted", &removed);
    Ok(())
}

// ---------------------------------------------------------------- refresh

fn refresh(pidfile: &Path) -> Result<()> {
    let not_running = |why: String| {
        Error::Service(format!(
            "policyd is not available ({why}); the policy will be read when it starts"
        ))
    };
    let text = std::fs::read_to_string(pidfile)
        .map_err(|e| not_running(format!("{}: {e}", pidfile.display())))?;
    let pid: u32 = text
        .trim()
        .parse()
        .map_err(|_| not_running(format!("{} holds no pid", pidfile.display())))?;
    if pid <= 1 || !Path::new(&format!("/proc/{pid}")).exists() {
        return Err(not_running(format!("no process {pid}")));
    }
    let status = std::process::Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .map_err(|e| not_running(format!("cannot run kill: {e}")))?;
    if !status.success() {
        return Err(not_running(format!("kill -HUP {pid} failed")));
    }
    println!("asked policyd (pid {pid}) to refresh");
    Ok(())
}
