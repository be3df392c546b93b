//! The system side of the default exemptions: the kernel module's parameters (level
//! written, mark read) and the interfaces' directed broadcasts, for
//! `ipsec_agent::exempt`. Errors are logged and degrade to the fallback (no module, or
//! no directed broadcasts): exemptions never stop the agent.

use ipsec_agent::exempt::{ExemptEnvironment, ModuleParams};
use ipsec_exempt::Level;

use crate::interfaces;

/// Sets the module's level when it is loaded and returns the exemption environment.
pub(crate) fn environment(level: Level) -> ExemptEnvironment {
    let module_mark = ModuleParams::probe().and_then(|m| {
        if let Err(e) = m.set_level(level) {
            tracing::warn!(error = %e, "cannot set the ipsec_exempt module's level");
        }
        m.mark()
            .map_err(|e| tracing::warn!(error = %e, "cannot read the ipsec_exempt module's mark"))
            .ok()
    });
    let directed_broadcasts = interfaces::broadcasts().unwrap_or_else(|e| {
        tracing::warn!(error = %e, "cannot read the interfaces' broadcast addresses");
        Vec::new()
    });
    ExemptEnvironment {
        directed_broadcasts,
        module_mark,
    }
}
