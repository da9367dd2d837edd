//! End-to-end tests of the whole system: the built edge worker under workerd in
//! front of the origin binary, over real Redis and PostgreSQL. Needs the edge
//! built (`scripts/build-edge.sh`) and the npm packages (`npm ci`);
//! `scripts/test.sh` does both.

mod crowd;
mod edge;
mod harness;
#[path = "../support/mod.rs"]
mod support;
