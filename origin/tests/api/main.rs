//! Integration tests of the origin over real PostgreSQL and Redis: one binary,
//! one module per endpoint family.

mod accounts;
mod admin;
mod auth;
mod buy;
mod events;
mod faults;
mod health;
mod helpers;
mod invariants;
mod orders;
mod proxy;
mod stock;
mod webhooks;
mod worker;
