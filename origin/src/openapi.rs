//! The OpenAPI 3.1 description of the HTTP API, generated from the handlers'
//! annotations and the core API types (utoipa): served at
//! `GET /api/openapi.json` (the edge passes it through), printed by
//! `rushgate-origin openapi`, and kept in `docs/openapi.json`, which a test
//! compares with what the code generates.

use utoipa::openapi::path::{HttpMethod, OperationBuilder, PathItem};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, ObjectBuilder, ResponseBuilder};
use utoipa::{Modify, OpenApi};

/// Where the description is served.
pub const PATH: &str = "/api/openapi.json";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "rushgate",
        description = "Flash sales without overselling: accounts, events, purchases, orders \
            and the console. Errors are always `{\"error\": code, \"message\": text, ...}` \
            (ErrorBody) with the status of the code. Through the edge, `POST /buy/...` also \
            answers 409 `sold_out`, 429 `duplicate_request` and 429 `not_admitted` itself.",
        license(name = "Apache-2.0")
    ),
    modifiers(&Sessions),
    tags(
        (name = "accounts", description = "Register, log in, log out"),
        (name = "events", description = "Public sales and purchase URLs"),
        (name = "buying", description = "The purchase itself"),
        (name = "orders", description = "A buyer's orders"),
        (name = "console", description = "Operators and admins"),
        (name = "operations", description = "Health, readiness, metrics, this description"),
    )
)]
pub struct ApiDoc;

/// The two ways to carry a session: a Bearer token or the cookie.
struct Sessions;

impl Modify for Sessions {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(
                rushgate_core::session::SESSION_COOKIE,
            ))),
        );
    }
}

/// Answers any operation may give.
#[derive(utoipa::IntoResponses)]
pub enum Common {
    /// `invalid_input`: a malformed body or id, a value out of range or text
    /// holding NUL; `field` names it when known.
    #[response(status = 400)]
    InvalidInput(#[to_schema] rushgate_core::ErrorBody),
    /// `payload_too_large`: a body above the limit.
    #[response(status = 413)]
    PayloadTooLarge(#[to_schema] rushgate_core::ErrorBody),
    /// `unsupported_media_type`: a body without `Content-Type: application/json`.
    #[response(status = 415)]
    UnsupportedMediaType(#[to_schema] rushgate_core::ErrorBody),
    /// `internal`: a bug; details are only in the logs.
    #[response(status = 500)]
    Internal(#[to_schema] rushgate_core::ErrorBody),
    /// `overloaded`: shedding load, or Redis or PostgreSQL unavailable;
    /// `retry_after_s` (and `Retry-After`).
    #[response(status = 503)]
    Overloaded(#[to_schema] rushgate_core::ErrorBody),
}

/// Answers of operations that need a session.
#[derive(utoipa::IntoResponses)]
pub enum Signed {
    /// `unauthenticated`: no session, or a forged, expired or logged-out one.
    #[response(status = 401)]
    Unauthenticated(#[to_schema] rushgate_core::ErrorBody),
}

/// Answers of the console's operations on one event.
#[derive(utoipa::IntoResponses)]
pub enum Managed {
    /// `unauthenticated`: no session, or a forged, expired or logged-out one.
    #[response(status = 401)]
    Unauthenticated(#[to_schema] rushgate_core::ErrorBody),
    /// `forbidden`: the role, or ownership of the event, does not allow it.
    #[response(status = 403)]
    Forbidden(#[to_schema] rushgate_core::ErrorBody),
    /// `not_found`: no such event.
    #[response(status = 404)]
    NotFound(#[to_schema] rushgate_core::ErrorBody),
}

/// Adds the description's own route to it.
pub fn describe_itself(document: &mut utoipa::openapi::OpenApi) {
    let answer = ResponseBuilder::new()
        .description("this description")
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(ObjectBuilder::new()))
                .build(),
        )
        .build();
    let operation = OperationBuilder::new()
        .tag("operations")
        .response("200", answer)
        .build();
    document
        .paths
        .paths
        .insert(PATH.to_owned(), PathItem::new(HttpMethod::Get, operation));
}
