//! One way to start the whole of rushgate: the [`Stack`] — Redis, PostgreSQL,
//! origins and workers, the edge under workerd or `wrangler dev` — used by the
//! system tests as a library, and by `scripts/run.sh`, the bench scripts and the
//! browser tests through the `rushgate-dev` binary.

pub mod edge;
mod ports;
pub mod proc;
pub mod receiver;
pub mod redis;
pub mod stack;

pub use edge::Runtime;
pub use ports::{free_port, listening};
pub use stack::{Options, Stack, binaries, root, sale_input};
