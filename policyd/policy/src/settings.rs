//! The agent's settings (netsh `dynamic set config` / `static set config`): boot mode and
//! boot exemptions, default exemptions, CRL checking, logging, diagnostics and polling.
//!
//! Defaults are Windows Server 2003's (seed: `ipsecexempt` 3, CRL checked but failures
//! ignored, directory polling every 180 minutes, assignment check every 90 minutes). This
//! module only holds and checks values; the agent applies them.

use serde::{Deserialize, Serialize};

use crate::model::Protocol;

/// Limits of `ipsecexempt`.
pub const IPSEC_EXEMPT: std::ops::RangeInclusive<u8> = 0..=3;
/// Limits of `strongcrlcheck`.
pub const STRONG_CRL_CHECK: std::ops::RangeInclusive<u8> = 0..=2;
/// Limits of `ipsecdiagnostics`.
pub const IPSEC_DIAGNOSTICS: std::ops::RangeInclusive<u8> = 0..=7;
/// Limits of the polling intervals, in minutes.
pub const POLLING_MINUTES: std::ops::RangeInclusive<u32> = 1..=43_200;

/// The agent settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Settings {
    /// Filtering between boot and the agent's start (`bootmode`).
    pub boot_mode: BootMode,
    /// Traffic that passes in block boot mode, besides DHCP (`bootexemptions`).
    #[serde(default)]
    pub boot_exemptions: Vec<BootExemption>,
    /// Default exemptions (`ipsecexempt`): 0 multicast, broadcast, RSVP, Kerberos and ISAKMP;
    /// 1 multicast, broadcast and ISAKMP; 2 RSVP, Kerberos and ISAKMP; 3 ISAKMP only.
    pub ipsec_exempt: u8,
    /// CRL checking (`strongcrlcheck`): 0 off, 1 fail only on a revoked certificate,
    /// 2 fail on any CRL error.
    pub strong_crl_check: u8,
    /// IKE logging (`ikelogging`).
    pub ike_logging: bool,
    /// Driver diagnostics level (`ipsecdiagnostics`), 0 = off.
    pub ipsec_diagnostics: u8,
    /// Directory polling interval when no policy says otherwise, in minutes.
    pub directory_polling_minutes: u32,
    /// Check for assignment and membership changes, in minutes (Winlogon's 90).
    pub assignment_check_minutes: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            boot_mode: BootMode::Stateful,
            boot_exemptions: Vec::new(),
            ipsec_exempt: 3,
            strong_crl_check: 1,
            ike_logging: false,
            ipsec_diagnostics: 0,
            directory_polling_minutes: 180,
            assignment_check_minutes: 90,
        }
    }
}

/// The computer startup modes of the seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BootMode {
    /// No filtering.
    Permit,
    /// Drop everything but the boot exemptions and DHCP.
    Block,
    /// Outbound allowed, inbound only replies, plus the exemptions and DHCP.
    Stateful,
}

/// One boot exemption (netsh `protocol:srcport:dstport:direction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct BootExemption {
    /// Protocol.
    pub protocol: Protocol,
    /// Source port, 0 = any.
    #[serde(default)]
    pub source_port: u16,
    /// Destination port, 0 = any.
    #[serde(default)]
    pub destination_port: u16,
    /// Direction.
    pub direction: ExemptionDirection,
}

/// Direction of a boot exemption.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExemptionDirection {
    /// Packets received.
    Inbound,
    /// Packets sent.
    Outbound,
}
