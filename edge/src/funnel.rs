//! Funnel counters of this isolate (`core::funnel::Buffer`), sent in the
//! background of a request, at most once per `REPORT_EVERY_MS`, to one of the
//! funnel tallies (`tally`), which sum the isolates' counts before they reach
//! the origin: several bounded reports in a row when much is waiting; a report
//! that fails goes back into the buffer for the next turn.

use std::cell::RefCell;
use std::rc::Rc;

use rushgate_core::api::EdgeReport;
pub use rushgate_core::funnel::Step;
use rushgate_core::funnel::{Buffer, VisitorGate};
use worker::{Context, Env};

use crate::config::Config;
use crate::tally;

/// Reports sent back to back in one turn at most.
const MAX_REPORTS_PER_TURN: usize = 20;

#[derive(Default)]
struct Pending {
    buffer: Buffer,
    gate: VisitorGate,
    last_report_ms: i64,
    in_flight: bool,
}

thread_local! {
    static PENDING: RefCell<Pending> = RefCell::new(Pending::default());
}

pub fn bump(event_id: i64, step: Step) {
    PENDING.with(|p| p.borrow_mut().buffer.bump(event_id, step));
}

/// Remembers a visitor of an event page (for the unique-visitor count), if
/// its address (when known) has not brought too many new ones this minute.
pub fn visitor(event_id: i64, visitor: &str, address: Option<&str>, now_ms: i64) {
    PENDING.with(|p| {
        let mut p = p.borrow_mut();
        let admitted = address.is_none_or(|a| {
            p.gate
                .admits(rushgate_core::velocity::address_key(a), now_ms)
        });
        if admitted {
            p.buffer.visitor(event_id, visitor);
        }
    });
}

/// Claims this isolate's turn to report, if one is due and none is running.
fn claim(now_ms: i64, every_ms: u64) -> bool {
    PENDING.with(|p| {
        let mut p = p.borrow_mut();
        let due = now_ms - p.last_report_ms >= every_ms as i64;
        if !due || p.in_flight || p.buffer.is_empty() {
            return false;
        }
        p.last_report_ms = now_ms;
        p.in_flight = true;
        true
    })
}

/// Sends what has gathered in the background, if a report is due.
pub fn maybe_report(ctx: &Context, env: &Env, config: &Rc<Config>, now_ms: i64) {
    if !claim(now_ms, config.report_every_ms) {
        return;
    }
    let (config, env) = (config.clone(), env.clone());
    ctx.wait_until(async move {
        for _ in 0..MAX_REPORTS_PER_TURN {
            let Some(report) = PENDING.with(|p| p.borrow_mut().buffer.take()) else {
                break;
            };
            if !send(&env, &config, &report).await {
                PENDING.with(|p| p.borrow_mut().buffer.put_back(report));
                break;
            }
        }
        PENDING.with(|p| p.borrow_mut().in_flight = false);
    });
}

/// Sends a report to this isolate's tally.
async fn send(env: &Env, config: &Config, report: &EdgeReport) -> bool {
    let n = (crate::clock::isolate_id() % u64::from(config.tally_shards.max(1))) as u32;
    tally::report(env, n, report).await
}
