//! Waiting for a condition with a deadline: the one way tests, the bench and
//! the launcher wait for work done elsewhere — never a bare sleep.

use std::future::Future;
use std::time::Duration;

/// Polls `check` every 20 ms until it holds; panics after `deadline`.
pub async fn eventually<F, Fut>(deadline: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    until_some(deadline, || {
        let done = check();
        async move { done.await.then_some(()) }
    })
    .await;
}

/// Polls `check` every 20 ms until it gives a value, and returns it; panics
/// after `deadline`.
pub async fn until_some<T, F, Fut>(deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let until = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "condition not met in {deadline:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
