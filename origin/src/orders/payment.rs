//! Payment behind a trait, so a real provider can replace the built-in fake one.

use futures::future::BoxFuture;

use super::repo::OrderRow;

#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    #[error("declined")]
    Declined,
    #[error("provider unavailable: {0}")]
    Unavailable(String),
}

/// Charges an order. Implementations must be idempotent per order id: a retry of
/// the same order never charges twice.
pub trait PaymentProvider: Send + Sync + 'static {
    /// Returns the provider's reference for the payment.
    fn charge<'a>(&'a self, order: &'a OrderRow) -> BoxFuture<'a, Result<String, PaymentError>>;
}

/// Approves every payment without moving money; for development, tests and
/// benchmarks.
#[derive(Debug, Default)]
pub struct FakeProvider;

impl PaymentProvider for FakeProvider {
    fn charge<'a>(&'a self, order: &'a OrderRow) -> BoxFuture<'a, Result<String, PaymentError>> {
        Box::pin(async move { Ok(format!("fake-{}", order.id.simple())) })
    }
}
