//! `ipsecadm static`: the policy store. Each command opens the store, changes one location
//! in one transaction (validated whole by `Store::update`) and closes it.

use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use ipsec_policy::{
    Action, AuthMethod, ConnectionType, DefaultResponseRule, Encryption, Endpoint, ExportKeys,
    Filter, FilterAction, FilterList, Integrity, IsakmpPolicy, LocationContents, Negotiation,
    Policy, PolicySet, Protocol, QuickModeMethod, Rule, Store, StoreError,
    DEFAULT_MM_LIFETIME_MINUTES, DEFAULT_POLLING_MINUTES,
};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::cli::*;
use crate::error::{store, usage, Error, Result};
use crate::output::{fields, print_json, yes, Table};
use crate::parse::{self, conntype_name, mm_methods_string, qm_methods_string};
use crate::Ctx;

pub(crate) fn open(ctx: &Ctx) -> Result<Store> {
    Ok(Store::open(&ctx.store_dir)?)
}

/// Runs `f` on the location inside one store transaction; an error of `f` writes nothing.
fn change<T>(
    ctx: &Ctx,
    f: impl FnOnce(&mut LocationContents) -> Result<T>,
) -> Result<(T, LocationContents)> {
    let st = open(ctx)?;
    let mut failure: Option<Error> = None;
    let mut value: Option<T> = None;
    let result = st.update(ctx.location, |c| match f(c) {
        Ok(v) => {
            value = Some(v);
            Ok(())
        }
        Err(e) => {
            failure = Some(e);
            // Any error aborts the transaction; the real one is `failure`.
            Err(StoreError::UnknownPolicy(Uuid::nil()))
        }
    });
    if let Some(e) = failure {
        return Err(e);
    }
    let contents = result?;
    let v = value.ok_or_else(|| store("internal error: change returned no value"))?;
    Ok((v, contents))
}

pub(crate) fn parse_guid(s: &str) -> Option<Uuid> {
    Uuid::parse_str(s.trim().trim_start_matches('{').trim_end_matches('}')).ok()
}

pub(crate) fn pick<'a>(name: &'a Option<String>, guid: &'a Option<String>) -> Result<&'a str> {
    name.as_deref()
        .or(guid.as_deref())
        .ok_or_else(|| usage("give --name or --guid"))
}

/// Position of the object named `r` (by name first, then by GUID).
fn find<T>(
    items: &[T],
    r: &str,
    kind: &str,
    name: impl Fn(&T) -> &str,
    id: impl Fn(&T) -> Uuid,
) -> Result<usize> {
    if let Some(i) = items.iter().position(|x| name(x) == r) {
        return Ok(i);
    }
    if let Some(g) = parse_guid(r) {
        if let Some(i) = items.iter().position(|x| id(x) == g) {
            return Ok(i);
        }
    }
    Err(store(format!("no {kind} {r:?} in this store location")))
}

fn find_policy(set: &PolicySet, r: &str) -> Result<usize> {
    find(&set.policies, r, "policy", |p| &p.name, |p| p.id)
}

fn find_list(set: &PolicySet, r: &str) -> Result<usize> {
    find(&set.filter_lists, r, "filter list", |l| &l.name, |l| l.id)
}

fn find_action(set: &PolicySet, r: &str) -> Result<usize> {
    find(
        &set.filter_actions,
        r,
        "filter action",
        |a| &a.name,
        |a| a.id,
    )
}

fn find_rule(p: &Policy, r: &str) -> Result<usize> {
    find(
        &p.rules,
        r,
        &format!("rule in policy {:?} named", p.name),
        |x| &x.name,
        |x| x.id,
    )
}

pub(crate) fn new_name(
    existing: impl IntoIterator<Item = String>,
    name: &str,
    kind: &str,
) -> Result<String> {
    if name.is_empty() {
        return Err(usage(format!("a {kind} needs a non-empty name")));
    }
    if existing.into_iter().any(|n| n == name) {
        return Err(store(format!("a {kind} named {name:?} already exists")));
    }
    Ok(name.to_owned())
}

fn default_mm_methods() -> Vec<ipsec_policy::MainModeMethod> {
    parse::mm_methods("3DES-SHA1-2 3DES-MD5-2 DES-SHA1-1 DES-MD5-1").unwrap_or_default()
}

fn default_qm_methods() -> Vec<QuickModeMethod> {
    use Encryption::*;
    use Integrity::*;
    vec![
        QuickModeMethod::esp(TripleDes, Sha1),
        QuickModeMethod::esp(TripleDes, Md5),
        QuickModeMethod::esp(Des, Sha1),
        QuickModeMethod::esp(Des, Md5),
    ]
}

fn default_response_methods() -> Vec<QuickModeMethod> {
    let mut m = default_qm_methods();
    m.push(QuickModeMethod::ah(Integrity::Sha1));
    m.push(QuickModeMethod::ah(Integrity::Md5));
    m
}

pub(crate) fn run(ctx: &Ctx, cmd: StaticCmd) -> Result<()> {
    if let Some(config) = &ctx.directory {
        return crate::directory::run_static(ctx, config, cmd);
    }
    match cmd {
        StaticCmd::Add(a) => match a {
            StaticAdd::Policy(args) => add_policy(ctx, args),
            StaticAdd::Filterlist(args) => add_list(ctx, args),
            StaticAdd::Filter(args) => add_filter(ctx, args),
            StaticAdd::Filteraction(args) => add_action(ctx, args),
            StaticAdd::Rule(args) => add_rule(ctx, args),
        },
        StaticCmd::Set(s) => match s {
            StaticSet::Policy(args) => set_policy(ctx, args),
            StaticSet::Filterlist(args) => set_list(ctx, args),
            StaticSet::Filteraction(args) => set_action(ctx, args),
            StaticSet::Rule(args) => set_rule(ctx, args),
            StaticSet::Defaultrule(args) => set_default_rule(ctx, args),
        },
        StaticCmd::Delete(d) => match d {
            StaticDelete::Policy(r) => delete_policy(ctx, r),
            StaticDelete::Filterlist(r) => delete_list(ctx, r),
            StaticDelete::Filter(args) => delete_filter(ctx, args),
            StaticDelete::Filteraction(r) => delete_action(ctx, r),
            StaticDelete::Rule(r) => delete_rule(ctx, r),
        },
        StaticCmd::Show(s) => show(ctx, s),
        StaticCmd::Importpolicy(args) => import(ctx, &args.file),
        StaticCmd::Exportpolicy(args) => export(ctx, &args.file, args.withkeys),
    }
}

// ---------------------------------------------------------------- policies

pub(crate) fn apply_policy_args(p: &mut Policy, args: &PolicyArgs) {
    if let Some(d) = &args.description {
        p.description = d.clone();
    }
    if let Some(v) = args.mmpfs {
        p.isakmp.master_key_pfs = v;
    }
    if let Some(v) = args.qmpermm {
        p.isakmp.quick_modes_per_main_mode = v;
    }
    if let Some(v) = args.mmlifetime {
        p.isakmp.master_key_lifetime_minutes = v;
    }
    if let Some(v) = args.pollinginterval {
        p.polling_interval_minutes = v;
    }
    if let Some(m) = &args.mmsecmethods {
        p.isakmp.methods = m.0.clone();
    }
    if let Some(v) = args.activatedefaultrule {
        p.default_response.active = v;
    }
}

fn add_policy(ctx: &Ctx, args: PolicyArgs) -> Result<()> {
    let Some(name) = args.name.clone() else {
        return Err(usage("add policy needs --name"));
    };
    if args.newname.is_some() || args.guid.is_some() {
        return Err(usage("--newname and --guid apply to set policy only"));
    }
    no_container(&args)?;
    let (id, _) = change(ctx, |c| {
        let name = new_name(
            c.set.policies.iter().map(|p| p.name.clone()),
            &name,
            "policy",
        )?;
        let p = new_policy(name, &args);
        let id = p.id;
        c.set.policies.push(p);
        if args.assign == Some(true) {
            c.assigned = Some(id);
        }
        Ok(id)
    })?;
    if !ctx.json {
        println!("added policy {name:?} {{{id}}}");
    }
    Ok(())
}

/// A new policy with the defaults and `args` applied.
pub(crate) fn new_policy(name: String, args: &PolicyArgs) -> Policy {
    let mut p = Policy {
        id: ipsec_policy::new_id(),
        version: 1,
        name,
        description: String::new(),
        polling_interval_minutes: DEFAULT_POLLING_MINUTES,
        isakmp: IsakmpPolicy {
            id: ipsec_policy::new_id(),
            version: 1,
            master_key_lifetime_minutes: DEFAULT_MM_LIFETIME_MINUTES,
            quick_modes_per_main_mode: 0,
            master_key_pfs: false,
            methods: default_mm_methods(),
        },
        rules: Vec::new(),
        default_response: DefaultResponseRule {
            id: ipsec_policy::new_id(),
            version: 1,
            active: true,
            auth_methods: vec![AuthMethod::Kerberos],
            methods: default_response_methods(),
            qm_pfs: false,
        },
    };
    apply_policy_args(&mut p, args);
    p
}

/// `--container` names a directory container: refused for the local and persistent
/// locations.
fn no_container(args: &PolicyArgs) -> Result<()> {
    if args.container.is_some() {
        return Err(usage(
            "--container applies to store location directory only",
        ));
    }
    Ok(())
}

fn set_policy(ctx: &Ctx, args: PolicyArgs) -> Result<()> {
    no_container(&args)?;
    let r = pick(&args.name, &args.guid)?.to_owned();
    change(ctx, |c| {
        let i = find_policy(&c.set, &r)?;
        if let Some(n) = &args.newname {
            let others = c
                .set
                .policies
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, p)| p.name.clone());
            c.set.policies[i].name = new_name(others, n, "policy")?;
        }
        apply_policy_args(&mut c.set.policies[i], &args);
        let id = c.set.policies[i].id;
        match args.assign {
            Some(true) => c.assigned = Some(id),
            Some(false) if c.assigned == Some(id) => c.assigned = None,
            _ => {}
        }
        Ok(())
    })?;
    Ok(())
}

fn delete_policy(ctx: &Ctx, r: ObjectRef) -> Result<()> {
    let name = pick(&r.name, &r.guid)?.to_owned();
    change(ctx, |c| {
        let i = find_policy(&c.set, &name)?;
        let p = c.set.policies.remove(i);
        if c.assigned == Some(p.id) {
            c.assigned = None;
            eprintln!(
                "ipsecadm: policy {:?} was assigned; now no policy is assigned",
                p.name
            );
        }
        Ok(())
    })?;
    Ok(())
}

// ---------------------------------------------------------------- filter lists and filters

fn add_list(ctx: &Ctx, args: ListArgs) -> Result<()> {
    let Some(name) = args.name.clone() else {
        return Err(usage("add filterlist needs --name"));
    };
    if args.newname.is_some() || args.guid.is_some() {
        return Err(usage("--newname and --guid apply to set filterlist only"));
    }
    let (id, _) = change(ctx, |c| {
        let name = new_name(
            c.set.filter_lists.iter().map(|l| l.name.clone()),
            &name,
            "filter list",
        )?;
        let l = FilterList {
            id: ipsec_policy::new_id(),
            version: 1,
            name,
            description: args.description.clone().unwrap_or_default(),
            filters: Vec::new(),
        };
        let id = l.id;
        c.set.filter_lists.push(l);
        Ok(id)
    })?;
    if !ctx.json {
        println!("added filter list {name:?} {{{id}}}");
    }
    Ok(())
}

fn set_list(ctx: &Ctx, args: ListArgs) -> Result<()> {
    let r = pick(&args.name, &args.guid)?.to_owned();
    change(ctx, |c| {
        let i = find_list(&c.set, &r)?;
        if let Some(n) = &args.newname {
            let others = c
                .set
                .filter_lists
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, l)| l.name.clone());
            c.set.filter_lists[i].name = new_name(others, n, "filter list")?;
        }
        if let Some(d) = &args.description {
            c.set.filter_lists[i].description = d.clone();
        }
        Ok(())
    })?;
    Ok(())
}

fn delete_list(ctx: &Ctx, r: ObjectRef) -> Result<()> {
    let name = pick(&r.name, &r.guid)?.to_owned();
    change(ctx, |c| {
        let i = find_list(&c.set, &name)?;
        let id = c.set.filter_lists[i].id;
        refuse_if_used(&c.set, |rule| rule.filter_list == id, "filter list", &name)?;
        c.set.filter_lists.remove(i);
        Ok(())
    })?;
    Ok(())
}

fn refuse_if_used(
    set: &PolicySet,
    uses: impl Fn(&Rule) -> bool,
    kind: &str,
    name: &str,
) -> Result<()> {
    for p in &set.policies {
        if let Some(r) = p.rules.iter().find(|r| uses(r)) {
            return Err(store(format!(
                "{kind} {name:?} is used by rule {:?} of policy {:?}; delete or change the rule first",
                r.name, p.name
            )));
        }
    }
    Ok(())
}

fn filter_endpoints(args: &FilterArgs) -> Result<(Option<Endpoint>, Option<Endpoint>)> {
    let src = args
        .srcaddr
        .map(|e| parse::endpoint_with_mask(e, args.srcmask))
        .transpose()
        .map_err(usage)?;
    let dst = args
        .dstaddr
        .map(|e| parse::endpoint_with_mask(e, args.dstmask))
        .transpose()
        .map_err(usage)?;
    if (args.srcmask.is_some() && src.is_none()) || (args.dstmask.is_some() && dst.is_none()) {
        return Err(usage("a mask needs its address (--srcaddr / --dstaddr)"));
    }
    Ok((src, dst))
}

fn add_filter(ctx: &Ctx, args: FilterArgs) -> Result<()> {
    if args.guid.is_some() {
        return Err(usage("--guid applies to delete filter only"));
    }
    let (Some(source), Some(destination)) = filter_endpoints(&args)? else {
        return Err(usage("add filter needs --srcaddr and --dstaddr"));
    };
    let (id, _) = change(ctx, |c| {
        let i = find_list(&c.set, &args.filterlist)?;
        let f = Filter {
            id: ipsec_policy::new_id(),
            version: 1,
            description: args.description.clone().unwrap_or_default(),
            source,
            destination,
            mirrored: args.mirrored.unwrap_or(true),
            protocol: args.protocol.unwrap_or(Protocol::Any),
            source_port: args.srcport.unwrap_or(0),
            destination_port: args.dstport.unwrap_or(0),
        };
        let id = f.id;
        c.set.filter_lists[i].filters.push(f);
        Ok(id)
    })?;
    if !ctx.json {
        println!("added filter {{{id}}} to {:?}", args.filterlist);
    }
    Ok(())
}

fn delete_filter(ctx: &Ctx, args: FilterArgs) -> Result<()> {
    let (src, dst) = filter_endpoints(&args)?;
    let guid = match &args.guid {
        Some(g) => Some(parse_guid(g).ok_or_else(|| usage(format!("{g:?} is not a GUID")))?),
        None => None,
    };
    if guid.is_none()
        && src.is_none()
        && dst.is_none()
        && args.protocol.is_none()
        && args.srcport.is_none()
        && args.dstport.is_none()
        && args.mirrored.is_none()
        && args.description.is_none()
    {
        return Err(usage(
            "delete filter needs --guid or filter fields (--srcaddr, --dstaddr, --protocol, ...)",
        ));
    }
    let (n, _) = change(ctx, |c| {
        let i = find_list(&c.set, &args.filterlist)?;
        let list = &mut c.set.filter_lists[i];
        let before = list.filters.len();
        list.filters.retain(|f| {
            let matches = guid.is_none_or(|g| f.id == g)
                && src.is_none_or(|e| f.source == e)
                && dst.is_none_or(|e| f.destination == e)
                && args.protocol.is_none_or(|p| f.protocol == p)
                && args.srcport.is_none_or(|p| f.source_port == p)
                && args.dstport.is_none_or(|p| f.destination_port == p)
                && args.mirrored.is_none_or(|m| f.mirrored == m)
                && args
                    .description
                    .as_ref()
                    .is_none_or(|d| &f.description == d);
            !matches
        });
        let n = before - list.filters.len();
        if n == 0 {
            return Err(store(format!(
                "no filter of {:?} matches; nothing deleted",
                args.filterlist
            )));
        }
        Ok(n)
    })?;
    if !ctx.json {
        println!("deleted {n} filter(s) from {:?}", args.filterlist);
    }
    Ok(())
}

// ---------------------------------------------------------------- filter actions

fn negotiate_options_given(args: &ActionArgs) -> bool {
    args.qmsecmethods.is_some()
        || args.inpass.is_some()
        || args.soft.is_some()
        || args.qmpfs.is_some()
        || args.offload.is_some()
}

fn apply_negotiation(n: &mut Negotiation, args: &ActionArgs) {
    if let Some(m) = &args.qmsecmethods {
        n.methods = m.0.clone();
    }
    if let Some(v) = args.inpass {
        n.inbound_pass_through = v;
    }
    if let Some(v) = args.soft {
        n.fall_back_to_clear = v;
    }
    if let Some(v) = args.qmpfs {
        n.qm_pfs = v;
    }
    if let Some(v) = args.offload {
        n.offload = v;
    }
}

fn new_negotiation() -> Negotiation {
    Negotiation {
        inbound_pass_through: false,
        fall_back_to_clear: false,
        qm_pfs: false,
        offload: false,
        methods: default_qm_methods(),
    }
}

fn add_action(ctx: &Ctx, args: ActionArgs) -> Result<()> {
    let Some(name) = args.name.clone() else {
        return Err(usage("add filteraction needs --name"));
    };
    if args.newname.is_some() || args.guid.is_some() {
        return Err(usage("--newname and --guid apply to set filteraction only"));
    }
    let kind = args.action.unwrap_or(ActionKind::Negotiate);
    if kind != ActionKind::Negotiate && negotiate_options_given(&args) {
        return Err(usage(
            "--qmsecmethods, --inpass, --soft, --qmpfs and --offload apply to --action negotiate only",
        ));
    }
    let (id, _) = change(ctx, |c| {
        let name = new_name(
            c.set.filter_actions.iter().map(|a| a.name.clone()),
            &name,
            "filter action",
        )?;
        let action = match kind {
            ActionKind::Permit => Action::Permit,
            ActionKind::Block => Action::Block,
            ActionKind::Negotiate => {
                let mut n = new_negotiation();
                apply_negotiation(&mut n, &args);
                Action::Negotiate(n)
            }
        };
        let a = FilterAction {
            id: ipsec_policy::new_id(),
            version: 1,
            name,
            description: args.description.clone().unwrap_or_default(),
            action,
        };
        let id = a.id;
        c.set.filter_actions.push(a);
        Ok(id)
    })?;
    if !ctx.json {
        println!("added filter action {name:?} {{{id}}}");
    }
    Ok(())
}

fn set_action(ctx: &Ctx, args: ActionArgs) -> Result<()> {
    let r = pick(&args.name, &args.guid)?.to_owned();
    change(ctx, |c| {
        let i = find_action(&c.set, &r)?;
        if let Some(n) = &args.newname {
            let others = c
                .set
                .filter_actions
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, a)| a.name.clone());
            c.set.filter_actions[i].name = new_name(others, n, "filter action")?;
        }
        let a = &mut c.set.filter_actions[i];
        if let Some(d) = &args.description {
            a.description = d.clone();
        }
        match args.action {
            Some(ActionKind::Permit) => a.action = Action::Permit,
            Some(ActionKind::Block) => a.action = Action::Block,
            Some(ActionKind::Negotiate) if !matches!(a.action, Action::Negotiate(_)) => {
                a.action = Action::Negotiate(new_negotiation());
            }
            _ => {}
        }
        match &mut a.action {
            Action::Negotiate(n) => apply_negotiation(n, &args),
            _ if negotiate_options_given(&args) => {
                return Err(usage(format!(
                    "filter action {:?} does not negotiate; --qmsecmethods, --inpass, --soft, --qmpfs and --offload need --action negotiate",
                    a.name
                )))
            }
            _ => {}
        }
        Ok(())
    })?;
    Ok(())
}

fn delete_action(ctx: &Ctx, r: ObjectRef) -> Result<()> {
    let name = pick(&r.name, &r.guid)?.to_owned();
    change(ctx, |c| {
        let i = find_action(&c.set, &name)?;
        let id = c.set.filter_actions[i].id;
        refuse_if_used(
            &c.set,
            |rule| rule.filter_action == id,
            "filter action",
            &name,
        )?;
        c.set.filter_actions.remove(i);
        Ok(())
    })?;
    Ok(())
}

// ---------------------------------------------------------------- rules

fn apply_rule_args(ctx: &Ctx, set: &PolicySet, rule: &mut Rule, args: &RuleArgs) -> Result<()> {
    if let Some(d) = &args.description {
        rule.description = d.clone();
    }
    if let Some(l) = &args.filterlist {
        rule.filter_list = set.filter_lists[find_list(set, l)?].id;
    }
    if let Some(a) = &args.filteraction {
        rule.filter_action = set.filter_actions[find_action(set, a)?].id;
    }
    if let Some(t) = args.tunnel {
        rule.tunnel_endpoint = t.0.map(Endpoint::Address);
    }
    if let Some(ct) = args.conntype {
        rule.connection_type = ct;
    }
    if let Some(a) = args.activate {
        rule.active = a;
    }
    if args.auth.given() {
        rule.auth_methods = ctx.auth.clone();
    }
    Ok(())
}

fn add_rule(ctx: &Ctx, args: RuleArgs) -> Result<()> {
    let Some(name) = args.name.clone() else {
        return Err(usage("add rule needs --name"));
    };
    if args.newname.is_some() || args.guid.is_some() {
        return Err(usage("--newname and --guid apply to set rule only"));
    }
    if args.filterlist.is_none() || args.filteraction.is_none() {
        return Err(usage("add rule needs --filterlist and --filteraction"));
    }
    let (id, _) = change(ctx, |c| {
        let pi = find_policy(&c.set, &args.policy)?;
        let name = new_name(
            c.set.policies[pi].rules.iter().map(|r| r.name.clone()),
            &name,
            "rule in this policy",
        )?;
        let mut rule = Rule {
            id: ipsec_policy::new_id(),
            version: 1,
            name,
            description: String::new(),
            active: true,
            filter_list: Uuid::nil(),
            filter_action: Uuid::nil(),
            auth_methods: vec![AuthMethod::Kerberos],
            tunnel_endpoint: None,
            connection_type: ConnectionType::All,
        };
        apply_rule_args(ctx, &c.set, &mut rule, &args)?;
        let id = rule.id;
        c.set.policies[pi].rules.push(rule);
        Ok(id)
    })?;
    if !ctx.json {
        println!("added rule {name:?} {{{id}}} to policy {:?}", args.policy);
    }
    Ok(())
}

fn set_rule(ctx: &Ctx, args: RuleArgs) -> Result<()> {
    let r = pick(&args.name, &args.guid)?.to_owned();
    change(ctx, |c| {
        let pi = find_policy(&c.set, &args.policy)?;
        let ri = find_rule(&c.set.policies[pi], &r)?;
        let mut rule = c.set.policies[pi].rules[ri].clone();
        if let Some(n) = &args.newname {
            let others = c.set.policies[pi]
                .rules
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != ri)
                .map(|(_, x)| x.name.clone());
            rule.name = new_name(others, n, "rule in this policy")?;
        }
        apply_rule_args(ctx, &c.set, &mut rule, &args)?;
        c.set.policies[pi].rules[ri] = rule;
        Ok(())
    })?;
    Ok(())
}

fn delete_rule(ctx: &Ctx, r: RuleRef) -> Result<()> {
    let name = pick(&r.name, &r.guid)?.to_owned();
    change(ctx, |c| {
        let pi = find_policy(&c.set, &r.policy)?;
        let ri = find_rule(&c.set.policies[pi], &name)?;
        c.set.policies[pi].rules.remove(ri);
        Ok(())
    })?;
    Ok(())
}

fn set_default_rule(ctx: &Ctx, args: DefaultRuleArgs) -> Result<()> {
    change(ctx, |c| {
        let pi = find_policy(&c.set, &args.policy)?;
        let d = &mut c.set.policies[pi].default_response;
        if let Some(a) = args.activate {
            d.active = a;
        }
        if let Some(m) = &args.qmsecmethods {
            d.methods = m.0.clone();
        }
        if let Some(v) = args.qmpfs {
            d.qm_pfs = v;
        }
        if args.auth.given() {
            d.auth_methods = ctx.auth.clone();
        }
        Ok(())
    })?;
    Ok(())
}

// ---------------------------------------------------------------- import / export

fn import(ctx: &Ctx, file: &Path) -> Result<()> {
    let text = if file == Path::new("-") {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| store(format!("standard input: {e}")))?;
        s
    } else {
        std::fs::read_to_string(file).map_err(|e| store(format!("{}: {e}", file.display())))?
    };
    let st = open(ctx)?;
    let c = st
        .import(ctx.location, &text)
        .map_err(|e| store(format!("{}: {e}; the store is unchanged", file.display())))?;
    if !ctx.json {
        println!(
            "imported {}: the location now holds {} policies, {} filter lists, {} filter actions",
            file.display(),
            c.set.policies.len(),
            c.set.filter_lists.len(),
            c.set.filter_actions.len()
        );
    }
    Ok(())
}

fn export(ctx: &Ctx, file: &Path, withkeys: bool) -> Result<()> {
    let keys = if withkeys {
        ExportKeys::Include
    } else {
        ExportKeys::Redact
    };
    let text = open(ctx)?.export(ctx.location, keys)?;
    if file == Path::new("-") {
        std::io::stdout()
            .write_all(text.as_bytes())
            .map_err(|e| store(format!("standard output: {e}")))?;
        return Ok(());
    }
    let err = |e: std::io::Error| store(format!("{}: {e}", file.display()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(file)
        .map_err(err)?;
    f.write_all(text.as_bytes()).map_err(err)?;
    f.sync_all().map_err(err)?;
    Ok(())
}

// ---------------------------------------------------------------- show

fn to_json<T: serde::Serialize>(v: &T) -> Result<Value> {
    serde_json::to_value(v).map_err(|e| store(format!("cannot encode JSON: {e}")))
}

fn auth_string(methods: &[AuthMethod]) -> String {
    if methods.is_empty() {
        return "none".into();
    }
    methods
        .iter()
        .map(|m| match m {
            AuthMethod::Certificate { ca, .. } => format!("certificate({ca})"),
            // Never the key.
            other => other.kind().to_owned(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn action_summary(a: &Action) -> String {
    match a {
        Action::Permit => "permit".into(),
        Action::Block => "block".into(),
        Action::Negotiate(n) => {
            let mut s = "negotiate".to_owned();
            if n.inbound_pass_through {
                s.push_str(" +inpass");
            }
            if n.fall_back_to_clear {
                s.push_str(" +soft");
            }
            if n.qm_pfs {
                s.push_str(" +qmpfs");
            }
            if n.offload {
                s.push_str(" +offload");
            }
            s
        }
    }
}

fn name_of<T>(items: &[T], id: Uuid, f: impl Fn(&T) -> Option<&str>) -> String {
    items
        .iter()
        .find_map(&f)
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{{{id}}} (missing)"))
}

fn list_name(set: &PolicySet, id: Uuid) -> String {
    name_of(&set.filter_lists, id, |l| {
        (l.id == id).then_some(l.name.as_str())
    })
}

fn action_name(set: &PolicySet, id: Uuid) -> String {
    name_of(&set.filter_actions, id, |a| {
        (a.id == id).then_some(a.name.as_str())
    })
}

fn policy_text(set: &PolicySet, p: &Policy, assigned: bool) -> String {
    let d = &p.default_response;
    let mut out = fields(&[
        ("Policy", p.name.clone()),
        ("GUID", p.id.to_string()),
        ("Version", p.version.to_string()),
        ("Description", p.description.clone()),
        ("Assigned", yes(assigned)),
        (
            "Polling interval",
            format!("{} min", p.polling_interval_minutes),
        ),
        (
            "MM lifetime",
            format!("{} min", p.isakmp.master_key_lifetime_minutes),
        ),
        ("QM per MM", p.isakmp.quick_modes_per_main_mode.to_string()),
        ("MM PFS", yes(p.isakmp.master_key_pfs)),
        ("MM sec methods", mm_methods_string(&p.isakmp.methods)),
        (
            "Default rule",
            if d.active { "active" } else { "inactive" }.into(),
        ),
        ("Default rule auth", auth_string(&d.auth_methods)),
        ("Default rule QM", qm_methods_string(&d.methods)),
    ]);
    out.push('\n');
    out.push_str(&rules_table(set, p).render());
    out
}

fn rules_table(set: &PolicySet, p: &Policy) -> Table {
    let mut t = Table::new(&[
        "RULE",
        "ACTIVE",
        "FILTER LIST",
        "FILTER ACTION",
        "AUTH",
        "TUNNEL",
        "CONNTYPE",
    ]);
    for r in &p.rules {
        t.row(vec![
            r.name.clone(),
            yes(r.active),
            list_name(set, r.filter_list),
            action_name(set, r.filter_action),
            auth_string(&r.auth_methods),
            r.tunnel_endpoint
                .map_or_else(|| "none".into(), |e| e.to_string()),
            conntype_name(r.connection_type).into(),
        ]);
    }
    t
}

fn policy_json(set: &PolicySet, p: &Policy, assigned: bool) -> Result<Value> {
    let mut v = to_json(p)?;
    if let Value::Object(m) = &mut v {
        m.insert("assigned".into(), Value::Bool(assigned));
        let rules: Vec<Value> = p
            .rules
            .iter()
            .map(|r| json!({"filter-list-name": list_name(set, r.filter_list), "filter-action-name": action_name(set, r.filter_action)}))
            .collect();
        m.insert("rule-references".into(), Value::Array(rules));
    }
    Ok(v)
}

fn list_text(l: &FilterList) -> String {
    let mut out = fields(&[
        ("Filter list", l.name.clone()),
        ("GUID", l.id.to_string()),
        ("Version", l.version.to_string()),
        ("Description", l.description.clone()),
    ]);
    let mut t = Table::new(&[
        "GUID",
        "SOURCE",
        "DESTINATION",
        "PROTOCOL",
        "SRCPORT",
        "DSTPORT",
        "MIRRORED",
        "DESCRIPTION",
    ]);
    for f in &l.filters {
        t.row(vec![
            f.id.to_string(),
            f.source.to_string(),
            f.destination.to_string(),
            f.protocol.to_string(),
            f.source_port.to_string(),
            f.destination_port.to_string(),
            yes(f.mirrored),
            f.description.clone(),
        ]);
    }
    out.push('\n');
    out.push_str(&t.render());
    out
}

fn action_text(a: &FilterAction) -> String {
    let mut pairs = vec![
        ("Filter action", a.name.clone()),
        ("GUID", a.id.to_string()),
        ("Version", a.version.to_string()),
        ("Description", a.description.clone()),
        ("Action", action_summary(&a.action)),
    ];
    if let Action::Negotiate(n) = &a.action {
        pairs.push(("QM sec methods", qm_methods_string(&n.methods)));
        pairs.push(("Inbound pass-through", yes(n.inbound_pass_through)));
        pairs.push(("Fall back to clear", yes(n.fall_back_to_clear)));
        pairs.push(("QM PFS", yes(n.qm_pfs)));
    }
    fields(&pairs)
}

fn show(ctx: &Ctx, cmd: StaticShow) -> Result<()> {
    let c = open(ctx)?.location(ctx.location)?;
    show_set(ctx, cmd, &c.set, c.assigned)
}

/// Shows objects of `set`, whose assigned policy is `assigned_id`.
pub(crate) fn show_set(
    ctx: &Ctx,
    cmd: StaticShow,
    set: &PolicySet,
    assigned_id: Option<Uuid>,
) -> Result<()> {
    // Keys never leave the store through show.
    let set = set.redacted();
    let assigned = |p: &Policy| assigned_id == Some(p.id);
    match cmd {
        StaticShow::Policy(r) => {
            let selected: Vec<&Policy> = match r.name.as_deref().or(r.guid.as_deref()) {
                Some(n) => vec![&set.policies[find_policy(&set, n)?]],
                None => set.policies.iter().collect(),
            };
            if ctx.json {
                let v: Result<Vec<Value>> = selected
                    .iter()
                    .map(|p| policy_json(&set, p, assigned(p)))
                    .collect();
                print_json(&Value::Array(v?));
            } else if selected.len() == 1 && (r.name.is_some() || r.guid.is_some()) {
                print!("{}", policy_text(&set, selected[0], assigned(selected[0])));
            } else {
                let mut t = Table::new(&[
                    "POLICY",
                    "GUID",
                    "ASSIGNED",
                    "RULES",
                    "DEFAULT RULE",
                    "VERSION",
                ]);
                for p in selected {
                    t.row(vec![
                        p.name.clone(),
                        p.id.to_string(),
                        yes(assigned(p)),
                        p.rules.len().to_string(),
                        if p.default_response.active {
                            "active"
                        } else {
                            "inactive"
                        }
                        .into(),
                        p.version.to_string(),
                    ]);
                }
                print!("{}", t.render());
            }
        }
        StaticShow::Filterlist(r) => {
            let selected: Vec<&FilterList> = match r.name.as_deref().or(r.guid.as_deref()) {
                Some(n) => vec![&set.filter_lists[find_list(&set, n)?]],
                None => set.filter_lists.iter().collect(),
            };
            if ctx.json {
                print_json(&to_json(&selected)?);
            } else {
                let texts: Vec<String> = selected.iter().map(|l| list_text(l)).collect();
                print!("{}", texts.join("\n"));
            }
        }
        StaticShow::Filteraction(r) => {
            let selected: Vec<&FilterAction> = match r.name.as_deref().or(r.guid.as_deref()) {
                Some(n) => vec![&set.filter_actions[find_action(&set, n)?]],
                None => set.filter_actions.iter().collect(),
            };
            if ctx.json {
                print_json(&to_json(&selected)?);
            } else {
                let texts: Vec<String> = selected.iter().map(|a| action_text(a)).collect();
                print!("{}", texts.join("\n"));
            }
        }
        StaticShow::Rule(args) => {
            let policies: Vec<&Policy> = match &args.policy {
                Some(p) => vec![&set.policies[find_policy(&set, p)?]],
                None => set.policies.iter().collect(),
            };
            if ctx.json {
                let mut out = Vec::new();
                for p in policies {
                    for r in &p.rules {
                        if args
                            .name
                            .as_ref()
                            .is_none_or(|n| &r.name == n || parse_guid(n) == Some(r.id))
                        {
                            let mut v = to_json(r)?;
                            if let Value::Object(m) = &mut v {
                                m.insert("policy".into(), Value::String(p.name.clone()));
                            }
                            out.push(v);
                        }
                    }
                }
                print_json(&Value::Array(out));
            } else {
                for p in policies {
                    let mut p2 = p.clone();
                    if let Some(n) = &args.name {
                        let i = find_rule(p, n)?;
                        p2.rules = vec![p.rules[i].clone()];
                    }
                    println!("Policy: {}", p.name);
                    print!("{}", rules_table(&set, &p2).render());
                }
            }
        }
        StaticShow::Defaultrule(r) => {
            let p = &set.policies[find_policy(&set, &r.policy)?];
            let d = &p.default_response;
            if ctx.json {
                let mut v = to_json(d)?;
                if let Value::Object(m) = &mut v {
                    m.insert("policy".into(), Value::String(p.name.clone()));
                }
                print_json(&v);
            } else {
                print!(
                    "{}",
                    fields(&[
                        ("Policy", p.name.clone()),
                        ("GUID", d.id.to_string()),
                        ("Active", yes(d.active)),
                        ("Auth", auth_string(&d.auth_methods)),
                        ("QM sec methods", qm_methods_string(&d.methods)),
                        ("QM PFS", yes(d.qm_pfs)),
                    ])
                );
            }
        }
        StaticShow::All => {
            if ctx.json {
                let policies: Result<Vec<Value>> = set
                    .policies
                    .iter()
                    .map(|p| policy_json(&set, p, assigned(p)))
                    .collect();
                print_json(&json!({
                    "location": location_name(ctx),
                    "assigned": assigned_id.map(|g| g.to_string()),
                    "policies": policies?,
                    "filter-lists": to_json(&set.filter_lists)?,
                    "filter-actions": to_json(&set.filter_actions)?,
                }));
            } else {
                println!("Store location: {}", location_name(ctx));
                println!(
                    "Assigned policy: {}\n",
                    assigned_id
                        .and_then(|g| set.policy(g))
                        .map_or_else(|| "none".into(), |p| p.name.clone())
                );
                for p in &set.policies {
                    println!("{}", policy_text(&set, p, assigned(p)));
                }
                for l in &set.filter_lists {
                    println!("{}", list_text(l));
                }
                for a in &set.filter_actions {
                    println!("{}", action_text(a));
                }
            }
        }
    }
    Ok(())
}

pub(crate) fn location_name(ctx: &Ctx) -> &'static str {
    if ctx.directory.is_some() {
        return "directory";
    }
    match ctx.location {
        ipsec_policy::Location::Local => "local",
        ipsec_policy::Location::Persistent => "persistent",
    }
}
