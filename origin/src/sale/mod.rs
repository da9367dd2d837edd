//! The sale's Redis side, in one place: the keys of an event bucket, the Lua
//! scripts that change them — each beside the typed wrapper that owns its KEYS
//! and ARGV order — and what reads them: the reservation (`reserve`), moving
//! stock between buckets (`transfer`), giving units back (`release`), writing a
//! lost sale back from PostgreSQL (`rebuild`), the stock figures (`stock`), the
//! sold-out flags (`soldout`), operators' corrections (`stock::adjust`), reservations not yet written (`queued`), the
//! order streams and their registry (`streams`), the record on them
//! (`record`), confirming writes on replicas (`replicas`) and checking the
//! ledger against PostgreSQL (`ledger`). The background loops that use them
//! live in `worker`.

pub mod keys;
pub mod ledger;
pub mod lua;
pub mod queued;
pub mod rebuild;
pub mod record;
pub mod release;
pub mod replicas;
pub mod reserve;
pub mod soldout;
pub mod stock;
pub mod streams;
pub mod transfer;

pub use keys::{Bucket, BucketKeys};
pub use replicas::{Replicas, Unconfirmed};

/// A sale operation failed: Redis did not answer, or the replicas did not
/// confirm the write (it is on the master only).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
    #[error(transparent)]
    Unconfirmed(#[from] Unconfirmed),
}

#[cfg(test)]
mod tests {
    use super::lua::Lua;

    /// Every script, with the names its wrapper gives KEYS and ARGV.
    const SCRIPTS: &[&Lua] = &[
        &super::reserve::RESERVE,
        &super::transfer::TAKE,
        &super::transfer::GIVE,
        &super::release::RELEASE,
        &super::rebuild::REBUILD,
        &super::streams::PRUNE,
        &super::stock::ADJUST,
    ];

    #[test]
    fn every_wrapper_names_its_keys_and_args_as_the_script_header_does() {
        for script in SCRIPTS {
            let (keys, args) = script.header();
            let first_line = script.source.lines().next().unwrap_or("");
            assert_eq!(keys, script.keys, "KEYS of {first_line}");
            assert_eq!(args, script.args, "ARGV of {first_line}");
        }
    }
}
