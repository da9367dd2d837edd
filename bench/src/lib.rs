//! rushgate's benchmark driver and crowd simulator, as a library so the system
//! tests can run a crowd too.

pub mod cold_start;
pub mod crowd;
pub mod failover;
pub mod provision;
pub mod replay;
pub mod stats;
pub mod trivial;
