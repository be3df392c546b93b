//! The command line (clap). Every subcommand here is documented in `man/ipsecadm.8`; the
//! test `policyd/tests/ipsecadm_doc.rs` fails otherwise.

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};
use ipsec_policy::settings::BootMode;
use ipsec_policy::{ConnectionType, Endpoint, Protocol};

use crate::parse;

/// Administers IPsec policy (static: the policy store) and the running IPsec state
/// (dynamic: kernel SAs and filters, agent settings), in the style of `netsh ipsec`.
///
/// Options may also be written netsh style, `name=value` (for `--name value`).
#[derive(Debug, Parser)]
#[command(name = "ipsecadm", version, disable_help_subcommand = true)]
pub(crate) struct Cli {
    /// Policy store directory (default /var/lib/ipsec on Linux, /var/db/ipsec on FreeBSD).
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) store: Option<PathBuf>,
    /// Store location the static commands work on (netsh `set store location`).
    #[arg(long, global = true, value_enum, default_value_t = LocationArg::Local)]
    pub(crate) location: LocationArg,
    /// Directory configuration file used by store location `directory`
    /// (default /etc/ipsec/directory.toml).
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) directory_config: Option<PathBuf>,
    /// Machine-readable JSON output of show commands.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// Directory of the daemons' control sockets (ipsec-control(7); default /run/ipsec).
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) control_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub(crate) mode: Mode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LocationArg {
    /// Local policies.
    Local,
    /// Persistent policies (applied first at start-up).
    Persistent,
    /// The LDAP directory (ipsec-ldap(5)): static show, add policy and set policy only.
    Directory,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Mode {
    /// Policies in the store.
    #[command(name = "static", subcommand, disable_help_subcommand = true)]
    Static(StaticCmd),
    /// The running state: kernel SAs and filters, agent settings, immediate rules.
    #[command(subcommand, disable_help_subcommand = true)]
    Dynamic(DynamicCmd),
    /// The LDAP directory policy store: publish, assign, show (man 5 ipsec-ldap).
    #[command(subcommand, disable_help_subcommand = true)]
    Directory(crate::directory::DirectoryCmd),
}

// ---------------------------------------------------------------- static

#[derive(Debug, Subcommand)]
pub(crate) enum StaticCmd {
    /// Create an object.
    #[command(subcommand, disable_help_subcommand = true)]
    Add(StaticAdd),
    /// Change an object.
    #[command(subcommand, disable_help_subcommand = true)]
    Set(StaticSet),
    /// Delete an object.
    #[command(subcommand, disable_help_subcommand = true)]
    Delete(StaticDelete),
    /// Show objects (keys are never shown).
    #[command(subcommand, disable_help_subcommand = true)]
    Show(StaticShow),
    /// Import a policy file into the store location (validated whole before writing).
    Importpolicy(ImportArgs),
    /// Export the store location to a policy file.
    Exportpolicy(ExportArgs),
}

#[derive(Debug, Subcommand)]
pub(crate) enum StaticAdd {
    /// Add a policy.
    Policy(PolicyArgs),
    /// Add an (empty) filter list.
    Filterlist(ListArgs),
    /// Add a filter to a filter list.
    Filter(FilterArgs),
    /// Add a filter action.
    Filteraction(ActionArgs),
    /// Add a rule to a policy.
    Rule(RuleArgs),
}

#[derive(Debug, Subcommand)]
pub(crate) enum StaticSet {
    /// Change a policy, or assign it.
    Policy(PolicyArgs),
    /// Change a filter list.
    Filterlist(ListArgs),
    /// Change a filter action.
    Filteraction(ActionArgs),
    /// Change a rule.
    Rule(RuleArgs),
    /// Change a policy's default response rule.
    Defaultrule(DefaultRuleArgs),
}

#[derive(Debug, Subcommand)]
pub(crate) enum StaticDelete {
    /// Delete a policy.
    Policy(ObjectRef),
    /// Delete a filter list (refused while a rule uses it).
    Filterlist(ObjectRef),
    /// Delete filters from a filter list.
    Filter(FilterArgs),
    /// Delete a filter action (refused while a rule uses it).
    Filteraction(ObjectRef),
    /// Delete a rule of a policy.
    Rule(RuleRef),
}

#[derive(Debug, Subcommand)]
pub(crate) enum StaticShow {
    /// Show policies.
    Policy(OptionalRef),
    /// Show filter lists and their filters.
    Filterlist(OptionalRef),
    /// Show filter actions.
    Filteraction(OptionalRef),
    /// Show the rules of a policy (or of every policy).
    Rule(RuleShowArgs),
    /// Show a policy's default response rule.
    Defaultrule(PolicyRef),
    /// Show everything in the store location.
    All,
}

/// `--name` or `--guid` of an object.
#[derive(Debug, Args)]
pub(crate) struct ObjectRef {
    /// Name (or GUID) of the object.
    #[arg(long, required_unless_present = "guid")]
    pub(crate) name: Option<String>,
    /// GUID of the object.
    #[arg(long, conflicts_with = "name")]
    pub(crate) guid: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct OptionalRef {
    /// Name (or GUID) of the object; all objects when left out.
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// GUID of the object.
    #[arg(long, conflicts_with = "name")]
    pub(crate) guid: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct PolicyRef {
    /// Policy name or GUID.
    #[arg(long)]
    pub(crate) policy: String,
}

#[derive(Debug, Args)]
pub(crate) struct RuleRef {
    /// Policy name or GUID.
    #[arg(long)]
    pub(crate) policy: String,
    /// Rule name (or GUID).
    #[arg(long, required_unless_present = "guid")]
    pub(crate) name: Option<String>,
    /// Rule GUID.
    #[arg(long, conflicts_with = "name")]
    pub(crate) guid: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct RuleShowArgs {
    /// Policy name or GUID; every policy when left out.
    #[arg(long)]
    pub(crate) policy: Option<String>,
    /// Rule name or GUID.
    #[arg(long, requires = "policy")]
    pub(crate) name: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct PolicyArgs {
    /// Policy name (or GUID, for set).
    #[arg(long, required_unless_present = "guid")]
    pub(crate) name: Option<String>,
    /// Policy GUID (set only).
    #[arg(long, conflicts_with = "name")]
    pub(crate) guid: Option<String>,
    /// New name (set only).
    #[arg(long)]
    pub(crate) newname: Option<String>,
    /// Description.
    #[arg(long)]
    pub(crate) description: Option<String>,
    /// Master-key perfect forward secrecy (one quick mode per main mode).
    #[arg(long, value_parser = parse::yes_no, action = ArgAction::Set, value_name = "yes|no")]
    pub(crate) mmpfs: Option<bool>,
    /// Quick modes per main mode (0 = unlimited).
    #[arg(long, value_name = "N")]
    pub(crate) qmpermm: Option<u32>,
    /// Master-key lifetime in minutes.
    #[arg(long, value_name = "MINUTES")]
    pub(crate) mmlifetime: Option<u32>,
    /// Policy polling interval in minutes.
    #[arg(long, value_name = "MINUTES")]
    pub(crate) pollinginterval: Option<u32>,
    /// Main-mode security methods in order, e.g. "3DES-SHA1-2 AES128-SHA1-14".
    #[arg(long, value_parser = parse::mm_list, value_name = "LIST")]
    pub(crate) mmsecmethods: Option<parse::MmList>,
    /// Activate the default response rule.
    #[arg(long, value_parser = parse::yes_no, action = ArgAction::Set, value_name = "yes|no")]
    pub(crate) activatedefaultrule: Option<bool>,
    /// Assign the policy (only one per location is assigned).
    #[arg(long, value_parser = parse::yes_no, action = ArgAction::Set, value_name = "yes|no")]
    pub(crate) assign: Option<bool>,
    /// Container (DN) that assign=yes|no changes; store location directory only
    /// (default: the domain, the configuration's base).
    #[arg(long, value_name = "DN", requires = "assign")]
    pub(crate) container: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Filter list name (or GUID, for set).
    #[arg(long, required_unless_present = "guid")]
    pub(crate) name: Option<String>,
    /// Filter list GUID (set only).
    #[arg(long, conflicts_with = "name")]
    pub(crate) guid: Option<String>,
    /// New name (set only).
    #[arg(long)]
    pub(crate) newname: Option<String>,
    /// Description.
    #[arg(long)]
    pub(crate) description: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct FilterArgs {
    /// The filter list (name or GUID).
    #[arg(long)]
    pub(crate) filterlist: String,
    /// Filter GUID (delete only).
    #[arg(long)]
    pub(crate) guid: Option<String>,
    /// Source: an address, a subnet, me, any, dns, dhcp, wins or gateway.
    #[arg(long, value_parser = parse::endpoint)]
    pub(crate) srcaddr: Option<Endpoint>,
    /// Source mask: a prefix length or a dotted mask.
    #[arg(long, value_parser = parse::mask, value_name = "MASK")]
    pub(crate) srcmask: Option<u8>,
    /// Destination: an address, a subnet, me, any, dns, dhcp, wins or gateway.
    #[arg(long, value_parser = parse::endpoint)]
    pub(crate) dstaddr: Option<Endpoint>,
    /// Destination mask: a prefix length or a dotted mask.
    #[arg(long, value_parser = parse::mask, value_name = "MASK")]
    pub(crate) dstmask: Option<u8>,
    /// Also match the reverse direction (default yes).
    #[arg(long, value_parser = parse::yes_no, action = ArgAction::Set, value_name = "yes|no")]
    pub(crate) mirrored: Option<bool>,
    /// Protocol: any, tcp, udp, icmp, icmpv6 or a number (default any).
    #[arg(long, value_parser = parse::protocol)]
    pub(crate) protocol: Option<Protocol>,
    /// Source port (0 = any).
    #[arg(long)]
    pub(crate) srcport: Option<u16>,
    /// Destination port (0 = any).
    #[arg(long)]
    pub(crate) dstport: Option<u16>,
    /// Description.
    #[arg(long)]
    pub(crate) description: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ActionKind {
    /// Pass unmodified.
    Permit,
    /// Drop.
    Block,
    /// Secure with IPsec.
    Negotiate,
}

#[derive(Debug, Args)]
pub(crate) struct ActionArgs {
    /// Filter action name (or GUID, for set).
    #[arg(long, required_unless_present = "guid")]
    pub(crate) name: Option<String>,
    /// Filter action GUID (set only).
    #[arg(long, conflicts_with = "name")]
    pub(crate) guid: Option<String>,
    /// New name (set only).
    #[arg(long)]
    pub(crate) newname: Option<String>,
    /// Description.
    #[arg(long)]
    pub(crate) description: Option<String>,
    /// permit, block or negotiate (default negotiate).
    #[arg(long, value_enum)]
    pub(crate) action: Option<ActionKind>,
    /// Quick-mode security methods in order, e.g. "ESP[3DES,SHA1] ESP[AES128,SHA1]:3600s/50000kb".
    #[arg(long, value_parser = parse::qm_list, value_name = "LIST")]
    pub(crate) qmsecmethods: Option<parse::QmList>,
    /// Accept unsecured communication, but always respond using IPsec.
    #[arg(long, value_parser = parse::yes_no, action = ArgAction::Set, value_name = "yes|no")]
    pub(crate) inpass: Option<bool>,
    /// Allow unsecured communication with non-IPsec-aware computers (fall back to clear).
    #[arg(long, value_parser = parse::yes_no, action = ArgAction::Set, value_name = "yes|no")]
    pub(crate) soft: Option<bool>,
    /// Quick-mode (session key) perfect forward secrecy.
    #[arg(long, value_parser = parse::yes_no, action = ArgAction::Set, value_name = "yes|no")]
    pub(crate) qmpfs: Option<bool>,
    /// Ask the kernel to offload the SAs' crypto to the device the peer is reached through
    /// (software when the device refuses).
    #[arg(long, value_parser = parse::yes_no, action = ArgAction::Set, value_name = "yes|no")]
    pub(crate) offload: Option<bool>,
}

/// Authentication options; their order on the command line is the preference order.
#[derive(Debug, Args)]
pub(crate) struct AuthArgs {
    /// Kerberos V5 authentication.
    #[arg(long, value_parser = parse::yes_no, action = ArgAction::Set, value_name = "yes|no")]
    pub(crate) kerberos: Option<bool>,
    /// Preshared key authentication (repeatable).
    #[arg(long, action = ArgAction::Append, value_name = "KEY")]
    pub(crate) psk: Vec<String>,
    /// Preshared key read from a file (repeatable): a regular file not accessible by group
    /// or others; one trailing newline is dropped. Keeps the key out of the process list.
    #[arg(long, action = ArgAction::Append, value_parser = parse::psk_file, value_name = "PATH")]
    pub(crate) psk_file: Vec<ipsec_policy::AuthMethod>,
    /// Certificate authentication: "CA-DN [certmap:yes|no] [excludecaname:yes|no]" (repeatable).
    #[arg(long, action = ArgAction::Append, value_parser = parse::rootca, value_name = "CA")]
    pub(crate) rootca: Vec<ipsec_policy::AuthMethod>,
}

impl AuthArgs {
    pub(crate) fn given(&self) -> bool {
        self.kerberos.is_some()
            || !self.psk.is_empty()
            || !self.psk_file.is_empty()
            || !self.rootca.is_empty()
    }
}

#[derive(Debug, Args)]
pub(crate) struct RuleArgs {
    /// Rule name (or GUID, for set).
    #[arg(long, required_unless_present = "guid")]
    pub(crate) name: Option<String>,
    /// Rule GUID (set only).
    #[arg(long, conflicts_with = "name")]
    pub(crate) guid: Option<String>,
    /// The policy (name or GUID).
    #[arg(long)]
    pub(crate) policy: String,
    /// New name (set only).
    #[arg(long)]
    pub(crate) newname: Option<String>,
    /// Description.
    #[arg(long)]
    pub(crate) description: Option<String>,
    /// The filter list (name or GUID).
    #[arg(long)]
    pub(crate) filterlist: Option<String>,
    /// The filter action (name or GUID).
    #[arg(long)]
    pub(crate) filteraction: Option<String>,
    /// Tunnel endpoint address, or none (transport mode).
    #[arg(long, value_parser = parse::tunnel_arg, value_name = "ADDR|none")]
    pub(crate) tunnel: Option<parse::Tunnel>,
    /// Connection type: all, lan or dialup.
    #[arg(long, value_parser = parse::conntype)]
    pub(crate) conntype: Option<ConnectionType>,
    /// Activate the rule.
    #[arg(long, value_parser = parse::yes_no, action = ArgAction::Set, value_name = "yes|no")]
    pub(crate) activate: Option<bool>,
    #[command(flatten)]
    pub(crate) auth: AuthArgs,
}

#[derive(Debug, Args)]
pub(crate) struct DefaultRuleArgs {
    /// The policy (name or GUID).
    #[arg(long)]
    pub(crate) policy: String,
    /// Activate or deactivate the default response rule.
    #[arg(long, value_parser = parse::yes_no, action = ArgAction::Set, value_name = "yes|no")]
    pub(crate) activate: Option<bool>,
    /// Quick-mode security methods in order.
    #[arg(long, value_parser = parse::qm_list, value_name = "LIST")]
    pub(crate) qmsecmethods: Option<parse::QmList>,
    /// Quick-mode perfect forward secrecy.
    #[arg(long, value_parser = parse::yes_no, action = ArgAction::Set, value_name = "yes|no")]
    pub(crate) qmpfs: Option<bool>,
    #[command(flatten)]
    pub(crate) auth: AuthArgs,
}

#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// The policy file (`-` for standard input).
    #[arg(long)]
    pub(crate) file: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// The policy file (`-` for standard output).
    #[arg(long)]
    pub(crate) file: PathBuf,
    /// Write the preshared keys in clear text (the file is created with mode 0600).
    #[arg(long)]
    pub(crate) withkeys: bool,
}

// ---------------------------------------------------------------- dynamic

#[derive(Debug, Subcommand)]
pub(crate) enum DynamicCmd {
    /// Show the running state.
    #[command(subcommand, disable_help_subcommand = true)]
    Show(DynamicShow),
    /// Change agent settings.
    #[command(subcommand, disable_help_subcommand = true)]
    Set(DynamicSet),
    /// Install an immediate (non-persistent) rule in the kernel.
    #[command(subcommand, disable_help_subcommand = true)]
    Add(DynamicAdd),
    /// Remove an immediate rule from the kernel.
    #[command(subcommand, disable_help_subcommand = true)]
    Delete(DynamicDelete),
    /// Ask the policy agent to re-read and re-apply the policy now.
    Refresh(RefreshArgs),
}

#[derive(Debug, Subcommand)]
pub(crate) enum DynamicShow {
    /// Main-mode SAs (from ikd).
    Mmsas,
    /// Quick-mode SAs in the kernel (keys are never shown).
    Qmsas,
    /// Main-mode filters of the assigned policies.
    Mmfilters,
    /// Quick-mode filters: kernel policies and the assigned policies' desired state.
    Qmfilters,
    /// SPD and SAD statistics.
    Stats,
    /// Agent settings and where the active policy came from.
    Config(ShowConfigArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ShowConfigArgs {
    /// The agent's run directory, holding its status.json.
    #[arg(long, value_name = "DIR", default_value = "/run/policyd")]
    pub(crate) rundir: PathBuf,
}

#[derive(Debug, Subcommand)]
pub(crate) enum DynamicSet {
    /// Change agent settings (validated before they are stored).
    Config(ConfigArgs),
}

#[derive(Debug, Args)]
#[group(required = true, multiple = true)]
pub(crate) struct ConfigArgs {
    /// Filtering from boot until the agent starts: permit, block or stateful.
    #[arg(long, value_parser = parse::boot_mode)]
    pub(crate) bootmode: Option<BootMode>,
    /// Boot exemptions: none, or "tcp:88:in,udp:0:88:out" (protocol:[srcport:]dstport:in|out).
    #[arg(long, value_parser = parse::exemptions, value_name = "LIST")]
    pub(crate) bootexemptions: Option<parse::Exemptions>,
    /// Default exemptions, 0-3.
    #[arg(long, value_name = "0-3")]
    pub(crate) ipsecexempt: Option<u8>,
    /// CRL checking, 0-2.
    #[arg(long, value_name = "0-2")]
    pub(crate) strongcrlcheck: Option<u8>,
    /// IKE logging.
    #[arg(long, value_parser = parse::yes_no, action = ArgAction::Set, value_name = "yes|no")]
    pub(crate) ikelogging: Option<bool>,
    /// Driver diagnostics level, 0-7.
    #[arg(long, value_name = "0-7")]
    pub(crate) ipsecdiagnostics: Option<u8>,
    /// Directory polling interval in minutes.
    #[arg(long, value_name = "MINUTES")]
    pub(crate) directorypolling: Option<u32>,
    /// Assignment check interval in minutes.
    #[arg(long, value_name = "MINUTES")]
    pub(crate) assignmentcheck: Option<u32>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum DynamicAdd {
    /// Install an immediate rule.
    Rule(ImmediateRuleArgs),
}

#[derive(Debug, Subcommand)]
pub(crate) enum DynamicDelete {
    /// Remove an immediate rule (same filter arguments as when it was added).
    Rule(ImmediateRuleArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ImmediateRuleArgs {
    /// Source: an address, a subnet, me or any.
    #[arg(long, value_parser = parse::endpoint)]
    pub(crate) srcaddr: Endpoint,
    /// Source mask.
    #[arg(long, value_parser = parse::mask, value_name = "MASK")]
    pub(crate) srcmask: Option<u8>,
    /// Destination: an address, a subnet, me or any.
    #[arg(long, value_parser = parse::endpoint)]
    pub(crate) dstaddr: Endpoint,
    /// Destination mask.
    #[arg(long, value_parser = parse::mask, value_name = "MASK")]
    pub(crate) dstmask: Option<u8>,
    /// Also match the reverse direction (default yes).
    #[arg(long, value_parser = parse::yes_no, action = ArgAction::Set, value_name = "yes|no")]
    pub(crate) mirrored: Option<bool>,
    /// Protocol (default any).
    #[arg(long, value_parser = parse::protocol)]
    pub(crate) protocol: Option<Protocol>,
    /// Source port (0 = any).
    #[arg(long)]
    pub(crate) srcport: Option<u16>,
    /// Destination port (0 = any).
    #[arg(long)]
    pub(crate) dstport: Option<u16>,
    /// permit, block or negotiate (default block).
    #[arg(long, value_enum)]
    pub(crate) action: Option<ActionKind>,
    /// Quick-mode security methods (negotiate).
    #[arg(long, value_parser = parse::qm_list, value_name = "LIST")]
    pub(crate) qmsecmethods: Option<parse::QmList>,
    /// Accept unsecured inbound communication (negotiate).
    #[arg(long, value_parser = parse::yes_no, action = ArgAction::Set, value_name = "yes|no")]
    pub(crate) inpass: Option<bool>,
}

#[derive(Debug, Args)]
pub(crate) struct RefreshArgs {
    /// The agent's pid file.
    #[arg(long, default_value = "/run/policyd.pid")]
    pub(crate) pidfile: PathBuf,
}
