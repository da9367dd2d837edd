//! End-to-end tests of the whole system, each on a stack of its own (the
//! launcher, `rushgate-dev`): the built edge worker under workerd — and once
//! under `wrangler dev` — in front of the origin binary, over real Redis and
//! PostgreSQL. Needs the edge built (`scripts/build-edge.sh`) and the npm
//! packages (`npm ci`); `scripts/test.sh` does both.

mod accounts;
mod cluster;
mod compose;
mod counts;
mod crowd;
mod door;
mod edge;
mod isolates;
mod launcher;
mod opening;
mod presale;
mod queue;
mod refusals;
mod scripts;
mod webhooks;
mod wrangler;
