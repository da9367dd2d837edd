//! Pure logic shared by the rushgate edge and origin: signed tokens, sale phases,
//! event validation, the error-code table and the JSON API types.
//!
//! Nothing here performs IO or reads a clock: callers pass `now` and randomness in.

pub mod admission;
pub mod api;
pub mod attest;
pub mod bucket;
pub mod challenge;
pub mod dedup;
pub mod desk;
pub mod draw;
pub mod error;
pub mod event;
pub mod funnel;
pub mod ledger;
pub mod login;
pub mod opening;
pub mod origins;
pub mod phase;
pub mod presale;
pub mod purchase;
pub mod queue;
pub mod role;
pub mod session;
pub mod token;
pub mod velocity;
pub mod webhook;

pub use error::{ErrorBody, ErrorCode};
pub use phase::{Phase, PresaleWindow, Schedule};
pub use role::Role;
pub use token::{Keyring, TokenError};
