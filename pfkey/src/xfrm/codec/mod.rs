//! XFRM netlink wire format: netlink framing, the `<linux/xfrm.h>` structures and the
//! `XFRMA_*` attributes.
//!
//! This module converts between bytes and typed values only. It performs no I/O, keeps no
//! state and never panics on input: every decoder returns [`crate::DecodeError`] for
//! truncated or inconsistent data. Attributes and message types it does not model are kept
//! raw and re-encoded byte for byte. Layouts are the LP64 ones (x86_64, aarch64); a 32-bit
//! userland on a 64-bit kernel would need the kernel's compat layer and is not supported.
//! Mapping to the [`crate::model`] types is in [`super::convert`].

pub mod attr;
pub mod message;
pub mod structs;
pub mod wire;

pub use attr::{
    xfrma, AlgName, Algo, AlgoAead, AlgoAuth, Attribute, ReplayStateEsn, SadAttr, SpdAttr, XfrmAttr,
};
pub use message::{
    decode_messages, encode_messages, flags, msg_type, InfoMessage, Messages, NlError, NlHeader,
    NlMessage, WithAttrs, XfrmPayload,
};
pub use structs::*;
pub use wire::{Be16, Be32, Reader, Struct};

/// Multicast groups (`XFRMNLGRP_*`).
pub mod groups {
    /// ACQUIRE messages.
    pub const ACQUIRE: u32 = 1;
    /// EXPIRE and POLEXPIRE messages.
    pub const EXPIRE: u32 = 2;
    /// SA add/delete/update notifications.
    pub const SA: u32 = 3;
    /// Policy add/delete/update notifications.
    pub const POLICY: u32 = 4;
    /// Async events (replay, etc.).
    pub const AEVENTS: u32 = 5;
    /// REPORT messages.
    pub const REPORT: u32 = 6;
    /// MIGRATE messages.
    pub const MIGRATE: u32 = 7;
    /// NAT-T MAPPING messages.
    pub const MAPPING: u32 = 8;
}

#[cfg(test)]
mod tests;
