//! Funnel counters of this isolate, sent to the origin in batches (at most one
//! report per `REPORT_EVERY_MS`, in the background of a request). A report that
//! fails is added back, so nothing is lost while the origin is away.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use rushgate_core::api::{EDGE_REPORT_PATH, EdgeCounts, EdgeReport};
use rushgate_core::token::AdmissionClaims;
use worker::{Context, Headers, Method};

use crate::config::Config;
use crate::origin;

#[derive(Debug, Clone, Copy)]
pub enum Step {
    Arrival,
    Deduped,
    NotAdmitted,
    SoldOut,
    Forwarded,
    PageView,
}

#[derive(Default)]
struct Pending {
    counts: HashMap<i64, EdgeCounts>,
    visitors: HashMap<i64, HashSet<String>>,
    last_report_ms: i64,
    in_flight: bool,
}

thread_local! {
    static PENDING: RefCell<Pending> = RefCell::new(Pending::default());
}

pub fn bump(event_id: i64, step: Step) {
    PENDING.with(|p| {
        let mut p = p.borrow_mut();
        let counts = p.counts.entry(event_id).or_insert_with(|| EdgeCounts {
            event_id,
            ..EdgeCounts::default()
        });
        let field = match step {
            Step::Arrival => &mut counts.edge_arrivals,
            Step::Deduped => &mut counts.deduped,
            Step::NotAdmitted => &mut counts.not_admitted,
            Step::SoldOut => &mut counts.sold_out_edge,
            Step::Forwarded => &mut counts.edge_forwarded,
            Step::PageView => &mut counts.page_views,
        };
        *field += 1;
    });
}

/// Remembers a visitor of an event page (for the unique-visitor count).
pub fn visitor(event_id: i64, visitor: &str) {
    if visitor.is_empty() || visitor.len() > 64 {
        return;
    }
    PENDING.with(|p| {
        p.borrow_mut()
            .visitors
            .entry(event_id)
            .or_default()
            .insert(visitor.to_owned());
    });
}

fn take(now_ms: i64, every_ms: u64) -> Option<EdgeReport> {
    PENDING.with(|p| {
        let mut p = p.borrow_mut();
        let due = now_ms - p.last_report_ms >= every_ms as i64;
        if !due || p.in_flight || (p.counts.is_empty() && p.visitors.is_empty()) {
            return None;
        }
        p.last_report_ms = now_ms;
        p.in_flight = true;
        Some(EdgeReport {
            events: p.counts.drain().map(|(_, c)| c).collect(),
            visitors: p
                .visitors
                .drain()
                .map(|(event, set)| (event, set.into_iter().collect()))
                .collect(),
        })
    })
}

fn put_back(report: EdgeReport) {
    PENDING.with(|p| {
        let mut p = p.borrow_mut();
        for c in report.events {
            let mine = p.counts.entry(c.event_id).or_insert_with(|| EdgeCounts {
                event_id: c.event_id,
                ..EdgeCounts::default()
            });
            mine.edge_arrivals += c.edge_arrivals;
            mine.deduped += c.deduped;
            mine.not_admitted += c.not_admitted;
            mine.sold_out_edge += c.sold_out_edge;
            mine.edge_forwarded += c.edge_forwarded;
            mine.page_views += c.page_views;
        }
        for (event, visitors) in report.visitors {
            p.visitors.entry(event).or_default().extend(visitors);
        }
    });
}

/// Sends the gathered counts in the background if a report is due.
pub fn maybe_report(ctx: &Context, config: &Rc<Config>, now_ms: i64) {
    let Some(report) = take(now_ms, config.report_every_ms) else {
        return;
    };
    let config = config.clone();
    ctx.wait_until(async move {
        let sent = send(&config, &report, now_ms).await;
        if !sent {
            put_back(report);
        }
        PENDING.with(|p| p.borrow_mut().in_flight = false);
    });
}

async fn send(config: &Config, report: &EdgeReport, now_ms: i64) -> bool {
    let Ok(body) = serde_json::to_vec(report) else {
        return false;
    };
    let admit = config.keys.sign(&AdmissionClaims {
        method: "POST".into(),
        path: EDGE_REPORT_PATH.into(),
        user_id: 0,
        timestamp: now_ms / 1000,
    });
    let headers = Headers::new();
    let _ = headers.set("content-type", "application/json");
    let _ = headers.set(crate::buy::ADMIT_HEADER, &admit);
    match origin::send(config, Method::Post, EDGE_REPORT_PATH, headers, Some(body)).await {
        Ok(response) => response.status_code() < 300,
        Err(_) => false,
    }
}
