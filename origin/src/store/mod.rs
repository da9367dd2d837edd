//! Connections to the two stores: PostgreSQL (durable truth) and Redis (the live
//! sale: stock, holds, the order stream).

pub mod db;
pub mod redis;
