//! Load shedding on the purchase path: at most `limit` purchases are worked on
//! at once, and one more is answered 503 `overloaded` at once instead of
//! waiting in a queue. The limit adapts (additive increase, multiplicative
//! decrease) to two signs that the process is short of CPU: the purchases it
//! lets in slow down, or its runtime is busy nearly all the time — then
//! requests are waiting unread in front of it, where no limit sees them. The
//! limit shrinks, fewer purchases are served and more are refused — a refusal
//! costs a fraction of a purchase — so the process keeps up with what arrives
//! and the purchases it serves stay fast. The limit never exceeds
//! `RUSHGATE_BUY_MAX_IN_FLIGHT`, and starts there.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use metrics::{Counter, Gauge};
use rushgate_core::{ErrorBody, ErrorCode};

/// The limit's controller: pure, fed with what happened in each interval.
#[derive(Debug, Clone, PartialEq)]
pub struct Aimd {
    pub limit: usize,
    pub max: usize,
    /// Purchases slower than this on average mean the process is short of CPU;
    /// zero keeps the limit fixed.
    pub target: Duration,
}

/// Above this share of the time busy, the runtime is saturated.
pub const SATURATED: f64 = 0.9;

/// What happened during one interval.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Interval {
    /// Purchases finished, and the time they took in all.
    pub finished: u64,
    pub took: Duration,
    /// Purchases refused because the limit was reached.
    pub refused: u64,
    /// Share of the interval the runtime's workers were busy (0 to 1).
    pub busy: f64,
}

impl Aimd {
    /// The limit for the next interval. Only an interval in which the limit
    /// turned purchases away changes it: to half when the purchases let in
    /// were slow on average or the runtime was saturated (serving fewer frees
    /// time to refuse the rest), to one more (a tenth more when large) when
    /// neither. A process that keeps up, however busy, keeps its limit.
    pub fn adjust(&mut self, interval: Interval) -> usize {
        if interval.refused == 0 || self.target.is_zero() {
            return self.limit;
        }
        let slow = interval.finished > 0 && interval.took / interval.finished as u32 > self.target;
        if slow || interval.busy > SATURATED {
            self.limit = (self.limit / 2).max(1);
        } else {
            self.limit = (self.limit + (self.limit / 10).max(1)).min(self.max);
        }
        self.limit
    }
}

/// How often the limit is adjusted.
const INTERVAL: Duration = Duration::from_millis(25);

/// The adaptive limit shared by the requests of one process.
#[derive(Clone)]
pub struct Limiter(Arc<Shared>);

struct Shared {
    in_flight: AtomicUsize,
    limit: AtomicUsize,
    state: Mutex<Window>,
    gauge: Gauge,
    refusals: Counter,
}

struct Window {
    controller: Aimd,
    started: Instant,
    interval: Interval,
    /// The runtime's busy time at the start of the interval.
    busy_before: Duration,
}

/// Busy time of all the runtime's workers so far, and how many there are.
fn runtime_busy() -> (Duration, usize) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return (Duration::ZERO, 1);
    };
    let metrics = runtime.metrics();
    let workers = metrics.num_workers();
    let busy = (0..workers)
        .map(|w| metrics.worker_total_busy_duration(w))
        .sum();
    (busy, workers.max(1))
}

impl Limiter {
    pub fn new(max: usize, target: Duration) -> Self {
        let max = max.max(1);
        let gauge = metrics::gauge!("rushgate_buy_in_flight_limit");
        gauge.set(max as f64);
        Self(Arc::new(Shared {
            in_flight: AtomicUsize::new(0),
            limit: AtomicUsize::new(max),
            state: Mutex::new(Window {
                controller: Aimd {
                    limit: max,
                    max,
                    target,
                },
                started: Instant::now(),
                interval: Interval::default(),
                busy_before: runtime_busy().0,
            }),
            gauge,
            refusals: metrics::counter!("rushgate_buy_shed_total"),
        }))
    }

    /// The current limit.
    pub fn limit(&self) -> usize {
        self.0.limit.load(Ordering::Relaxed)
    }

    /// A place among the purchases in flight, or `None` if they are at the limit.
    pub fn enter(&self) -> Option<Permit> {
        let limit = self.0.limit.load(Ordering::Relaxed);
        let entered = self
            .0
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .is_ok();
        if !entered {
            self.0.refusals.increment(1);
            self.record(|i| i.refused += 1);
            return None;
        }
        Some(Permit {
            limiter: self.clone(),
            started: Instant::now(),
        })
    }

    fn record(&self, update: impl FnOnce(&mut Interval)) {
        let mut window = self.0.state.lock().unwrap_or_else(PoisonError::into_inner);
        update(&mut window.interval);
        let elapsed = window.started.elapsed();
        if elapsed >= INTERVAL {
            let (busy, workers) = runtime_busy();
            let mut interval = std::mem::take(&mut window.interval);
            interval.busy = busy.saturating_sub(window.busy_before).as_secs_f64()
                / (elapsed.as_secs_f64() * workers as f64);
            window.busy_before = busy;
            let limit = window.controller.adjust(interval);
            window.started = Instant::now();
            self.0.limit.store(limit, Ordering::Relaxed);
            self.0.gauge.set(limit as f64);
        }
    }
}

/// A purchase in flight; dropping it records how long it took.
pub struct Permit {
    limiter: Limiter,
    started: Instant,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.limiter.0.in_flight.fetch_sub(1, Ordering::AcqRel);
        let took = self.started.elapsed();
        self.limiter.record(|i| {
            i.finished += 1;
            i.took += took;
        });
    }
}

/// Middleware: a purchase goes on only with a place among those in flight.
pub async fn shed(State(limiter): State<Limiter>, request: Request, next: Next) -> Response {
    let Some(permit) = limiter.enter() else {
        return overloaded();
    };
    let response = next.run(request).await;
    drop(permit);
    response
}

/// The refusal: no log line, no allocation beyond the answer itself —
/// refusing must cost far less than serving.
fn overloaded() -> Response {
    static BODY: OnceLock<ErrorBody> = OnceLock::new();
    crate::error::respond(BODY.get_or_init(|| {
        ErrorBody::new(
            ErrorCode::Overloaded,
            "busy or temporarily unavailable, try again shortly",
        )
        .with_retry_after(1)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn controller() -> Aimd {
        Aimd {
            limit: 128,
            max: 128,
            target: Duration::from_millis(5),
        }
    }

    fn interval(finished: u64, mean_ms: u64, refused: u64) -> Interval {
        Interval {
            finished,
            took: Duration::from_millis(mean_ms * finished),
            refused,
            busy: 0.5,
        }
    }

    #[test]
    fn slow_purchases_shrink_the_limit_to_one() {
        let mut c = controller();
        assert_eq!(c.adjust(interval(100, 20, 500)), 64);
        for _ in 0..40 {
            c.adjust(interval(100, 20, 500));
        }
        assert_eq!(c.limit, 1, "never below one");
    }

    #[test]
    fn a_saturated_runtime_shrinks_it_however_fast_purchases_are() {
        let mut c = controller();
        let saturated = Interval {
            busy: 0.97,
            ..interval(100, 1, 500)
        };
        assert_eq!(c.adjust(saturated), 64);
        let busy_but_not_saturated = Interval {
            busy: 0.85,
            ..interval(100, 1, 500)
        };
        assert_eq!(c.adjust(busy_but_not_saturated), 70);
    }

    #[test]
    fn a_process_that_keeps_up_keeps_its_limit() {
        let mut c = controller();
        let at_capacity = Interval {
            busy: 1.0,
            ..interval(100, 20, 0)
        };
        assert_eq!(c.adjust(at_capacity), 128);
    }

    #[test]
    fn a_zero_target_keeps_the_limit_fixed() {
        let mut c = Aimd {
            target: Duration::ZERO,
            ..controller()
        };
        assert_eq!(c.adjust(interval(100, 20, 500)), 128);
    }

    #[test]
    fn fast_purchases_grow_it_back_only_when_it_refuses() {
        let mut c = controller();
        c.limit = 10;
        assert_eq!(c.adjust(interval(100, 1, 0)), 10, "no pressure, no change");
        assert_eq!(c.adjust(interval(100, 1, 3)), 11);
        for _ in 0..100 {
            c.adjust(interval(100, 1, 3));
        }
        assert_eq!(c.limit, 128, "never above the maximum");
        assert_eq!(c.adjust(Interval::default()), 128, "an idle interval");
    }

    #[tokio::test]
    async fn the_limit_holds_and_frees() {
        let limiter = Limiter::new(2, Duration::from_millis(5));
        let a = limiter.enter().unwrap();
        let _b = limiter.enter().unwrap();
        assert!(limiter.enter().is_none());
        drop(a);
        assert!(limiter.enter().is_some());
        let refused = overloaded();
        assert_eq!(refused.status(), 503);
        assert!(refused.headers().contains_key("retry-after"));
    }
}
