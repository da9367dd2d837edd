//! The edge's funnel counts while they wait for the origin: counts merged per
//! event, visitor ids in a set, and reports cut from them that never exceed
//! [`EDGE_REPORT_MAX_BYTES`]. A report that could not be delivered is put back
//! and merged, so an outage of the origin delays counts and never loses them to
//! a size limit. Pure: the edge keeps one buffer per isolate and does the IO.
//!
//! A visitor id comes from the page, so a script could send a new one with
//! every read: per client address (when the platform names it) an isolate
//! takes at most [`NEW_VISITORS_PER_ADDRESS_PER_MIN`] new ids a minute
//! ([`VisitorGate`]); the rest count as views only.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::api::{EDGE_REPORT_MAX_BYTES, EdgeCounts, EdgeReport};

/// A step of the funnel the edge counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Arrival,
    Deduped,
    NotAdmitted,
    SoldOut,
    Forwarded,
    PageView,
}

/// Visitor ids kept while the origin is unreachable; past this, new ids are not
/// remembered (page views still count). About 3 MB.
pub const MAX_PENDING_VISITORS: usize = 50_000;

/// Longest visitor id kept.
pub const MAX_VISITOR_LEN: usize = 64;

/// New visitor ids one client address may bring an isolate in a minute: a
/// household or an office, not a script.
pub const NEW_VISITORS_PER_ADDRESS_PER_MIN: u32 = 20;

/// Addresses a gate remembers at most (past it, it forgets them all).
const MAX_ADDRESSES: usize = 10_000;

/// New visitor ids per client address and minute, as one isolate saw them.
#[derive(Debug, Default)]
pub struct VisitorGate {
    minute: i64,
    per_address: HashMap<[u8; 16], u32>,
}

impl VisitorGate {
    /// Whether a visitor id from `address` (its key) at `now_ms` counts.
    pub fn admits(&mut self, address: [u8; 16], now_ms: i64) -> bool {
        let minute = now_ms.div_euclid(60_000);
        if minute != self.minute || self.per_address.len() >= MAX_ADDRESSES {
            self.minute = minute;
            self.per_address.clear();
        }
        let seen = self.per_address.entry(address).or_insert(0);
        *seen += 1;
        *seen <= NEW_VISITORS_PER_ADDRESS_PER_MIN
    }
}

/// Bytes one event's counts take in a report, at most (seven fields of up to
/// 20 digits and their names).
const COUNTS_BYTES: usize = 320;

/// Bytes of an event's visitor list besides the ids themselves.
const VISITORS_OVERHEAD: usize = 32;

/// Counts and visitor ids not yet delivered.
#[derive(Debug, Default)]
pub struct Buffer {
    counts: BTreeMap<i64, EdgeCounts>,
    visitors: BTreeMap<i64, HashSet<String>>,
    visitor_total: usize,
}

impl Buffer {
    pub fn bump(&mut self, event_id: i64, step: Step) {
        let counts = self.counts.entry(event_id).or_insert_with(|| EdgeCounts {
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
    }

    /// Remembers a visitor of an event page (for the unique-visitor count). Ids
    /// must be 1–64 ASCII letters or digits; others are ignored.
    pub fn visitor(&mut self, event_id: i64, visitor: &str) {
        let valid = !visitor.is_empty()
            && visitor.len() <= MAX_VISITOR_LEN
            && visitor.bytes().all(|b| b.is_ascii_alphanumeric());
        if !valid || self.visitor_total >= MAX_PENDING_VISITORS {
            return;
        }
        if self
            .visitors
            .entry(event_id)
            .or_default()
            .insert(visitor.to_owned())
        {
            self.visitor_total += 1;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty() && self.visitors.is_empty()
    }

    /// Visitor ids waiting.
    pub fn pending_visitors(&self) -> usize {
        self.visitor_total
    }

    /// Cuts the next report: the counts of as many events as fit, then visitor
    /// ids up to the size bound. Its JSON is at most [`EDGE_REPORT_MAX_BYTES`].
    pub fn take(&mut self) -> Option<EdgeReport> {
        let mut budget = EDGE_REPORT_MAX_BYTES - 64;
        let mut report = EdgeReport::default();
        while budget >= COUNTS_BYTES {
            let Some((_, counts)) = self.counts.pop_first() else {
                break;
            };
            report.events.push(counts);
            budget -= COUNTS_BYTES;
        }
        while budget > VISITORS_OVERHEAD {
            let Some(mut entry) = self.visitors.first_entry() else {
                break;
            };
            budget -= VISITORS_OVERHEAD;
            let mut ids = Vec::new();
            let set = entry.get_mut();
            while let Some(id) = set.iter().next().cloned() {
                // The id, its quotes and a comma.
                if id.len() + 3 > budget {
                    break;
                }
                budget -= id.len() + 3;
                set.remove(&id);
                ids.push(id);
            }
            let emptied = set.is_empty();
            let event = *entry.key();
            if emptied {
                entry.remove();
            }
            self.visitor_total -= ids.len();
            if !ids.is_empty() {
                report.visitors.push((event, ids));
            }
            if !emptied {
                break;
            }
        }
        (!report.events.is_empty() || !report.visitors.is_empty()).then_some(report)
    }

    /// Puts back a report that could not be delivered: its counts merge into
    /// what gathered since, its visitor ids rejoin the set.
    pub fn put_back(&mut self, report: EdgeReport) {
        for c in report.events {
            let mine = self.counts.entry(c.event_id).or_insert_with(|| EdgeCounts {
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
            let set = self.visitors.entry(event).or_default();
            let before = set.len();
            set.extend(visitors);
            self.visitor_total += set.len() - before;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn drain(buffer: &mut Buffer) -> Vec<EdgeReport> {
        std::iter::from_fn(|| buffer.take()).collect()
    }

    #[test]
    fn an_address_brings_a_few_new_visitors_a_minute() {
        let mut gate = VisitorGate::default();
        let admitted = (0..100).filter(|_| gate.admits([1; 16], 5_000)).count();
        assert_eq!(admitted, NEW_VISITORS_PER_ADDRESS_PER_MIN as usize);
        assert!(gate.admits([2; 16], 5_000), "another address");
        assert!(gate.admits([1; 16], 65_000), "the next minute");
    }

    #[test]
    fn counts_merge_and_survive_failed_reports() {
        let mut buffer = Buffer::default();
        for _ in 0..3 {
            buffer.bump(7, Step::PageView);
        }
        buffer.bump(7, Step::Arrival);
        let failed = buffer.take().unwrap();
        assert!(buffer.is_empty());
        buffer.bump(7, Step::PageView);
        buffer.put_back(failed);
        let report = buffer.take().unwrap();
        assert_eq!(report.events.len(), 1);
        assert_eq!(report.events[0].page_views, 4);
        assert_eq!(report.events[0].edge_arrivals, 1);
        assert!(buffer.take().is_none());
    }

    #[test]
    fn a_long_outage_is_delivered_in_reports_under_the_bound() {
        let mut buffer = Buffer::default();
        let mut undelivered = None;
        // The origin is away while 20,000 visitors of 3 events come by: every
        // report fails and is put back, as the edge does.
        for i in 0..20_000 {
            let event = i % 3;
            buffer.bump(event, Step::PageView);
            buffer.visitor(event, &format!("visitor{i:0>40}"));
            if i % 500 == 0 {
                if let Some(report) = undelivered.take() {
                    buffer.put_back(report);
                }
                undelivered = buffer.take();
            }
        }
        buffer.put_back(undelivered.unwrap());
        let reports = drain(&mut buffer);
        assert!(reports.len() > 1);
        let mut views = 0;
        let mut visitors = HashSet::new();
        for report in &reports {
            let bytes = serde_json::to_vec(report).unwrap().len();
            assert!(bytes <= EDGE_REPORT_MAX_BYTES, "{bytes} bytes");
            views += report.events.iter().map(|c| c.page_views).sum::<i64>();
            for (_, ids) in &report.visitors {
                visitors.extend(ids.iter().cloned());
            }
        }
        assert_eq!(views, 20_000);
        assert_eq!(visitors.len(), 20_000);
        assert_eq!(buffer.pending_visitors(), 0);
    }

    #[test]
    fn memory_is_bounded_and_junk_ids_ignored() {
        let mut buffer = Buffer::default();
        for i in 0..MAX_PENDING_VISITORS + 10 {
            buffer.visitor(1, &format!("v{i}"));
        }
        assert_eq!(buffer.pending_visitors(), MAX_PENDING_VISITORS);
        let mut buffer = Buffer::default();
        for junk in ["", "a b", "ü", &"x".repeat(65), "a\"b"] {
            buffer.visitor(1, junk);
        }
        assert!(buffer.is_empty());
    }

    proptest! {
        #[test]
        fn every_report_fits_and_nothing_is_lost(
            visits in proptest::collection::vec((0i64..300, "[a-zA-Z0-9]{1,64}"), 0..3000),
            events in 0i64..400,
        ) {
            let mut buffer = Buffer::default();
            for event in 0..events {
                buffer.bump(i64::MAX - event, Step::Forwarded);
            }
            let mut expected: BTreeMap<i64, HashSet<String>> = BTreeMap::new();
            for (event, id) in &visits {
                buffer.visitor(*event, id);
                expected.entry(*event).or_default().insert(id.clone());
            }
            let mut seen: BTreeMap<i64, HashSet<String>> = BTreeMap::new();
            let mut counted = 0;
            for report in drain(&mut buffer) {
                prop_assert!(serde_json::to_vec(&report).unwrap().len() <= EDGE_REPORT_MAX_BYTES);
                counted += report.events.len() as i64;
                for (event, ids) in report.visitors {
                    seen.entry(event).or_default().extend(ids);
                }
            }
            prop_assert_eq!(counted, events);
            prop_assert_eq!(seen, expected);
        }
    }
}
