//! A typed client of the rushgate HTTP API over the `core::api` types: the same
//! calls against the edge or an origin, each answering the type the contract
//! promises or an [`Error`] carrying the API's error body. Used by the crowd
//! simulator, the system tests and the launcher; [`eventually`] is the one way
//! to wait for a condition.

mod error;
mod wait;

use reqwest::{Method, StatusCode};
use rushgate_core::api::{
    AdminEventList, BuyRequest, Challenge, Credentials, DoorAnswer, EventList, EventStats,
    EventView, LoggedIn, LoggedOut, Me, Order, OrderList, PurchaseUrl, Registered, Reservation,
    ReviewNote, ServerTime, header,
};
use rushgate_core::event::EventInput;
use rushgate_core::queue::wire::QueueStatus;
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

pub use error::Error;
pub use wait::{eventually, until_some};

/// What a call answers.
pub type Result<T> = std::result::Result<T, Error>;

/// A client of one base URL (the edge or an origin), signed in or not. Cheap to
/// clone; clones share connections.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    /// Sent as `CF-Connecting-IP` (a test or a bench standing in for
    /// Cloudflare, which sets it in production).
    address: Option<String>,
}

/// A purchase's answer: the reservation, whether it is the original answer
/// (202) or a replay (200), and the units left when the answer says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bought {
    pub reservation: Reservation,
    pub replay: bool,
    pub remaining: Option<i64>,
}

/// A raw answer, for what the typed calls do not cover.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Answer {
    /// The body as JSON (`null` if it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.text).unwrap_or(serde_json::Value::Null)
    }
}

impl Client {
    /// A client of `base` (e.g. `http://127.0.0.1:8787`) with its own connections.
    pub fn new(base: impl Into<String>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .expect("a TLS-less HTTP client always builds");
        Self::with_http(http, base)
    }

    /// A client of `base` over existing connections.
    pub fn with_http(http: reqwest::Client, base: impl Into<String>) -> Self {
        Self {
            http,
            base: base.into().trim_end_matches('/').to_owned(),
            token: None,
            address: None,
        }
    }

    /// The same client acting with the session `token`.
    pub fn as_user(&self, token: impl Into<String>) -> Self {
        Self {
            token: Some(token.into()),
            ..self.clone()
        }
    }

    /// The same client at another base URL (same session, same connections).
    pub fn at(&self, base: impl Into<String>) -> Self {
        Self {
            base: base.into().trim_end_matches('/').to_owned(),
            ..self.clone()
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(address) = &self.address {
            request = request.header("cf-connecting-ip", address);
        }
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// The same client, its requests from `address` (`CF-Connecting-IP`).
    pub fn from_address(&self, address: impl Into<String>) -> Self {
        Self {
            address: Some(address.into()),
            ..self.clone()
        }
    }

    async fn call<T: DeserializeOwned>(&self, request: reqwest::RequestBuilder) -> Result<T> {
        let response = request.send().await?;
        let status = response.status();
        let text = response.text().await?;
        error::decode(status, &text)
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        match self.call(self.request(Method::GET, path)).await {
            // A pooled connection the server closed just as it was reused
            // (the edge drops idle ones): a GET is safe to send again.
            Err(Error::Transport(e)) if e.is_request() || e.is_connect() => {
                self.call(self.request(Method::GET, path)).await
            }
            other => other,
        }
    }

    async fn post<T: DeserializeOwned>(&self, path: &str, body: &impl Serialize) -> Result<T> {
        self.call(self.request(Method::POST, path).json(body)).await
    }

    /// Any request, answered raw: for headers, non-JSON answers and bodies the
    /// contract refuses.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
        headers: &[(&str, &str)],
    ) -> Result<Answer> {
        let mut request = self.request(method, path);
        if let Some(body) = body {
            request = request.json(body);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await?;
        Ok(Answer {
            status: response.status(),
            headers: response.headers().clone(),
            text: response.text().await?,
        })
    }

    // Accounts.

    pub async fn register(&self, username: &str, password: &str) -> Result<Registered> {
        self.post("/api/auth/register", &credentials(username, password))
            .await
    }

    pub async fn login(&self, username: &str, password: &str) -> Result<LoggedIn> {
        self.post("/api/auth/login", &credentials(username, password))
            .await
    }

    pub async fn logout(&self) -> Result<LoggedOut> {
        self.post("/api/auth/logout", &serde_json::json!({})).await
    }

    pub async fn me(&self) -> Result<Me> {
        self.get("/api/me").await
    }

    // Events and buying.

    pub async fn time(&self) -> Result<ServerTime> {
        self.get("/api/time").await
    }

    pub async fn events(&self) -> Result<EventList> {
        self.get("/api/events").await
    }

    pub async fn event(&self, id: i64) -> Result<EventView> {
        self.get(&format!("/api/events/{id}")).await
    }

    /// `GET /api/edge/dedup-load` (the edge only; admins): each dedup Durable
    /// Object's load since it started.
    pub async fn dedup_load(&self) -> Result<rushgate_core::api::DedupLoad> {
        self.dedup_load_with(None).await
    }

    /// The same, with the load of `event`'s queue frontier object if given.
    pub async fn dedup_load_with(
        &self,
        event: Option<i64>,
    ) -> Result<rushgate_core::api::DedupLoad> {
        match event {
            Some(id) => self.get(&format!("/api/edge/dedup-load?event={id}")).await,
            None => self.get("/api/edge/dedup-load").await,
        }
    }

    /// The event as its page loads it: counted as a view by `visitor`.
    pub async fn view_event(&self, id: i64, visitor: &str) -> Result<EventView> {
        self.get(&format!("/api/events/{id}?view={visitor}")).await
    }

    /// `POST /api/events/{id}/queue` (the edge): joins the event's queue, or
    /// finds the pass of an earlier join.
    pub async fn join_queue(&self, event_id: i64) -> Result<QueueStatus> {
        self.post(
            &format!("/api/events/{event_id}/queue"),
            &serde_json::json!({}),
        )
        .await
    }

    /// `POST /api/events/{id}/queue` with the door's answer.
    pub async fn join_queue_with(&self, event_id: i64, answer: &DoorAnswer) -> Result<QueueStatus> {
        self.post(&format!("/api/events/{event_id}/queue"), answer)
            .await
    }

    /// `GET /api/events/{id}/challenge`, in the slow lane if `slow`.
    pub async fn challenge(&self, event_id: i64, slow: bool) -> Result<Challenge> {
        let lane = if slow { "?lane=slow" } else { "" };
        self.get(&format!("/api/events/{event_id}/challenge{lane}"))
            .await
    }

    /// `GET /api/events/{id}/queue` with `pass`: where it stands.
    pub async fn queue_status(&self, event_id: i64, pass: &str) -> Result<QueueStatus> {
        self.call(
            self.request(Method::GET, &format!("/api/events/{event_id}/queue"))
                .header(rushgate_core::api::header::QUEUE_PASS, pass),
        )
        .await
    }

    /// `GET /api/events/{id}/draw`: the queue's draw record, once the sale closed.
    pub async fn draw(&self, event_id: i64) -> Result<rushgate_core::draw::DrawRecord> {
        self.get(&format!("/api/events/{event_id}/draw")).await
    }

    /// `POST /api/events/{id}/purchase-url` with the door's answer.
    pub async fn purchase_url_with(
        &self,
        event_id: i64,
        answer: &DoorAnswer,
    ) -> Result<PurchaseUrl> {
        self.post(&format!("/api/events/{event_id}/purchase-url"), answer)
            .await
    }

    pub async fn purchase_url(&self, event_id: i64) -> Result<PurchaseUrl> {
        self.post(
            &format!("/api/events/{event_id}/purchase-url"),
            &serde_json::json!({}),
        )
        .await
    }

    /// `POST {url}` for `quantity` units of `tier_id`, entering the round of
    /// `retry_token` if one is given.
    pub async fn buy(
        &self,
        url: &str,
        tier_id: i64,
        quantity: i64,
        retry_token: Option<&str>,
    ) -> Result<Bought> {
        let mut request = self
            .request(Method::POST, url)
            .json(&BuyRequest { tier_id, quantity });
        if let Some(token) = retry_token {
            request = request.header(header::RETRY_TOKEN, token);
        }
        let response = request.send().await?;
        let status = response.status();
        let remaining = response
            .headers()
            .get(header::REMAINING)
            .and_then(|v| v.to_str().ok()?.parse().ok());
        let text = response.text().await?;
        let reservation = error::decode(status, &text)?;
        Ok(Bought {
            reservation,
            replay: status == StatusCode::OK,
            remaining,
        })
    }

    pub async fn order(&self, id: Uuid) -> Result<Order> {
        self.get(&format!("/api/orders/{id}")).await
    }

    pub async fn my_orders(&self) -> Result<OrderList> {
        self.get("/api/me/orders").await
    }

    pub async fn pay(&self, id: Uuid) -> Result<Order> {
        self.post(&format!("/api/orders/{id}/pay"), &serde_json::json!({}))
            .await
    }

    pub async fn cancel(&self, id: Uuid) -> Result<Order> {
        self.post(&format!("/api/orders/{id}/cancel"), &serde_json::json!({}))
            .await
    }

    // The console.

    pub async fn create_event(&self, event: &EventInput) -> Result<EventView> {
        self.post("/api/admin/events", event).await
    }

    pub async fn update_event(&self, id: i64, event: &EventInput) -> Result<EventView> {
        self.call(
            self.request(Method::PUT, &format!("/api/admin/events/{id}"))
                .json(event),
        )
        .await
    }

    pub async fn admin_events(&self) -> Result<AdminEventList> {
        self.get("/api/admin/events").await
    }

    pub async fn admin_event(&self, id: i64) -> Result<EventView> {
        self.get(&format!("/api/admin/events/{id}")).await
    }

    /// `submit`, `approve`, `reject` or `cancel` an event, with a note.
    pub async fn review(&self, id: i64, action: &str, note: Option<&str>) -> Result<EventView> {
        let note = ReviewNote {
            note: note.map(str::to_owned),
        };
        self.post(&format!("/api/admin/events/{id}/{action}"), &note)
            .await
    }

    /// Creates an event and takes it through review: an operator's or admin's
    /// client submits, `admin` approves.
    pub async fn approved_event(&self, admin: &Client, event: &EventInput) -> Result<EventView> {
        let created = self.create_event(event).await?;
        self.review(created.id, "submit", None).await?;
        admin.review(created.id, "approve", None).await
    }

    /// Accounts whose username starts with `prefix` (admins).
    pub async fn users(&self, prefix: &str) -> Result<rushgate_core::api::UserList> {
        self.get(&format!("/api/admin/users?username={prefix}"))
            .await
    }

    /// A new role, or disabled / enabled (admins): the account's sessions end.
    pub async fn change_user(
        &self,
        id: i64,
        change: &rushgate_core::api::UserChange,
    ) -> Result<rushgate_core::api::UserView> {
        self.call(
            self.request(Method::PATCH, &format!("/api/admin/users/{id}"))
                .json(change),
        )
        .await
    }

    pub async fn stats(&self, id: i64) -> Result<EventStats> {
        self.get(&format!("/api/admin/events/{id}/stats")).await
    }

    pub async fn orders_csv(&self, id: i64) -> Result<String> {
        let answer = self
            .send(
                Method::GET,
                &format!("/api/admin/events/{id}/orders.csv"),
                None,
                &[],
            )
            .await?;
        if answer.status.is_success() {
            Ok(answer.text)
        } else {
            error::decode(answer.status, &answer.text)
        }
    }

    /// `POST /api/admin/events/{id}/presale/codes`: `count` new random codes.
    pub async fn generate_presale_codes(
        &self,
        id: i64,
        count: u32,
    ) -> Result<rushgate_core::api::PresaleCodes> {
        let body = rushgate_core::api::GenerateCodes { generate: count };
        self.post(&format!("/api/admin/events/{id}/presale/codes"), &body)
            .await
    }

    /// `POST /api/admin/events/{id}/presale/codes.csv`: uploads codes as CSV.
    pub async fn upload_presale_codes(
        &self,
        id: i64,
        csv: &str,
    ) -> Result<rushgate_core::api::PresaleCodes> {
        let request = self
            .request(
                Method::POST,
                &format!("/api/admin/events/{id}/presale/codes.csv"),
            )
            .header("content-type", "text/csv")
            .body(csv.to_owned());
        self.call(request).await
    }

    /// `GET /api/admin/events/{id}/presale/codes.csv`: the codes and their
    /// bindings.
    pub async fn presale_codes_csv(&self, id: i64) -> Result<String> {
        let path = format!("/api/admin/events/{id}/presale/codes.csv");
        let answer = self.send(Method::GET, &path, None, &[]).await?;
        if answer.status.is_success() {
            Ok(answer.text)
        } else {
            error::decode(answer.status, &answer.text)
        }
    }

    // Operations.

    /// Whether `/readyz` answers 200.
    pub async fn ready(&self) -> bool {
        matches!(
            self.request(Method::GET, "/readyz").send().await,
            Ok(r) if r.status().is_success()
        )
    }

    /// Requests served on `route` (a router pattern, e.g. `/buy/{event_id}/{token}`),
    /// from the Prometheus counter in `/metrics`.
    pub async fn route_requests(&self, route: &str) -> Result<u64> {
        let text = self
            .request(Method::GET, "/metrics")
            .send()
            .await?
            .text()
            .await?;
        let label = format!("route=\"{route}\"");
        Ok(text
            .lines()
            .filter(|l| l.starts_with("rushgate_http_requests_total{") && l.contains(&label))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64)
    }
}

fn credentials(username: &str, password: &str) -> Credentials {
    Credentials {
        username: username.to_owned(),
        password: password.to_owned(),
        challenge: None,
        nonce: None,
    }
}
