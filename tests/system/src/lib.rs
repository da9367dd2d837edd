//! What the system tests share: the stack they run against — the built edge
//! under workerd in front of the origin binary, over a private Redis and a
//! fresh PostgreSQL database — and helpers to make buyers.

use rushgate_client::Client;
use rushgate_core::Role;
use rushgate_dev::{Options, Stack};
use time::OffsetDateTime;

pub use rushgate_client::{eventually, until_some};
pub use rushgate_dev::sale_input;

/// The origin's purchase route, as its metrics name it.
pub const BUY_ROUTE: &str = "/buy/{event_id}/{token}";

/// The edge (under workerd) in front of one origin; event reads cached for a
/// second, funnel reports every 200 ms.
pub async fn stack() -> Stack {
    stack_with(Options::with_edge()).await
}

/// A stack as `options` say, with the test settings of the edge added.
pub async fn stack_with(mut options: Options) -> Stack {
    options.edge_vars.extend([
        ("EVENT_CACHE_TTL_S".to_owned(), "1".to_owned()),
        ("REPORT_EVERY_MS".to_owned(), "200".to_owned()),
        // The tests stand in for Cloudflare: the addresses they send in
        // CF-Connecting-IP are their clients'.
        ("TRUST_CF_CONNECTING_IP".to_owned(), "true".to_owned()),
    ]);
    Stack::start(options).await.expect("starting the stack")
}

/// `n` new customers of the front, each with a purchase URL for `event`.
pub async fn buyers_with_urls(stack: &Stack, event: i64, n: usize) -> Vec<(Client, String)> {
    let mut buyers = Vec::with_capacity(n);
    for _ in 0..n {
        let (_, buyer) = stack.user(Role::Customer).await.unwrap();
        let url = buyer.purchase_url(event).await.unwrap().url;
        buyers.push((buyer, url));
    }
    buyers
}

/// Now plus `seconds`.
pub fn at(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::now_utc() + time::Duration::seconds(seconds)
}

/// `/buy` requests the origin has served.
pub async fn origin_buys(stack: &Stack) -> u64 {
    Client::new(stack.origin_url(0))
        .route_requests(BUY_ROUTE)
        .await
        .unwrap()
}
