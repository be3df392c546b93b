//! The IPsec policy model, its validation, filter ordering and the local policy store.
//!
//! The structure follows Windows Server 2003 IPsec: a [`Policy`] holds policy-wide settings,
//! an ISAKMP policy (main-mode security methods) and rules; a [`Rule`] joins a shared
//! [`FilterList`] to a shared [`FilterAction`] with authentication methods, an optional
//! tunnel endpoint and a connection type; every policy has a [`DefaultResponseRule`].
//! A [`PolicySet`] is what one store location holds.
//!
//! - [`model`]: the types. No I/O.
//! - [`validate`](mod@validate): whole-set checks with typed errors naming the object.
//! - [`order`]: filter weights, kernel priorities and the expansion of mirrored, "my address"
//!   and keyword filters against a caller-supplied [`InterfaceSnapshot`]. Pure functions.
//! - [`file`](mod@file): the versioned TOML import/export format.
//! - [`store`]: the transactional local store (redb): local and persistent policies, the
//!   directory cache and the agent settings.
//! - [`defaults`]: the embedded default store (Windows' three default policies and the lab
//!   policy of the seed).
//!
//! This crate does not talk to the kernel, to ikd or to a directory; the agent does.

pub mod defaults;
pub mod file;
pub mod model;
pub mod order;
pub mod settings;
pub mod store;
pub mod validate;
mod versions;

pub use file::{ExportKeys, FileError};
pub use model::*;
pub use order::{
    expand, Direction, ExpandedFilter, InterfaceAddress, InterfaceKind, InterfaceSnapshot,
};
pub use settings::Settings;
pub use store::{Location, LocationContents, Store, StoreError};
pub use validate::{validate, validate_settings, ValidationError, ValidationErrors};
