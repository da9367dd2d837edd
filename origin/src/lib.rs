//! rushgate origin: accounts, events, and (with the selling path) atomic
//! reservations and exactly-once orders. `main.rs` only parses the command line;
//! everything lives here so tests can build the application.

pub mod admin;
pub mod app;
pub mod auth;
pub mod buy;
pub mod cli;
pub mod config;
pub mod csv_file;
pub mod demo;
pub mod edge_report;
pub mod error;
pub mod events;
pub mod extract;
pub mod forgery;
pub mod funnel;
pub mod health;
pub mod openapi;
pub mod orders;
pub mod overload;
pub mod presale;
pub mod queue;
pub mod sale;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod users;
pub mod webhooks;
pub mod worker;
