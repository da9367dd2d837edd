//! The error-code table: every stable error code with its HTTP status, and the one
//! JSON shape the edge and the origin both answer with.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

macro_rules! codes {
    ($($variant:ident => ($code:literal, $status:literal, $message:literal),)*) => {
        /// A stable, machine-readable error code. Clients branch on these.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(rename_all = "snake_case")]
        pub enum ErrorCode { $($variant,)* }

        impl ErrorCode {
            /// Every code, for documentation and tests.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The code as it appears in the `error` field.
            pub const fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $code,)* }
            }

            /// The HTTP status that goes with the code.
            pub const fn status(self) -> u16 {
                match self { $(ErrorCode::$variant => $status,)* }
            }

            /// The message for people when nothing more specific is said.
            pub const fn message(self) -> &'static str {
                match self { $(ErrorCode::$variant => $message,)* }
            }
        }
    };
}

codes! {
    InvalidInput => ("invalid_input", 400, "the request is not valid"),
    PaymentDeclined => ("payment_declined", 402, "the payment was declined"),
    Unauthenticated => ("unauthenticated", 401, "sign in first"),
    BadCredentials => ("bad_credentials", 401, "wrong username or password"),
    Forbidden => ("forbidden", 403, "your role may not do this"),
    NotOpen => ("not_open", 403, "the sale has not opened yet"),
    LimitExceeded => ("limit_exceeded", 403, "that would pass the per-person limit"),
    BadSignature => ("bad_signature", 403, "this purchase URL is not valid"),
    UrlExpired => ("url_expired", 403, "this purchase URL has expired; ask for a new one"),
    WrongUser => ("wrong_user", 403, "this purchase URL belongs to someone else"),
    NotAdmittedByEdge => ("not_admitted_by_edge", 403, "buy through the site, not the origin directly"),
    ChallengeRequired => ("challenge_required", 403, "solve the sale's challenge first: ask for one"),
    ChallengeFailed => ("challenge_failed", 403, "that answer does not solve the challenge"),
    PresaleCodeRequired => ("presale_code_required", 403, "the presale is for holders of a presale code: enter yours"),
    PresaleCodeTaken => ("presale_code_taken", 403, "this presale code belongs to another account"),
    NotFound => ("not_found", 404, "not found"),
    MethodNotAllowed => ("method_not_allowed", 405, "method not allowed"),
    UsernameTaken => ("username_taken", 409, "that username is taken"),
    SoldOut => ("sold_out", 409, "sold out"),
    QueueRequired => ("queue_required", 409, "this sale admits through its queue: join it"),
    InvalidState => ("invalid_state", 409, "this cannot be done now"),
    Closed => ("closed", 410, "the sale is closed"),
    Expired => ("expired", 410, "the payment window has passed"),
    PayloadTooLarge => ("payload_too_large", 413, "request body is too large"),
    UnsupportedMediaType => ("unsupported_media_type", 415, "send JSON with Content-Type: application/json"),
    DuplicateRequest => ("duplicate_request", 429, "you just tried; wait a moment"),
    NotAdmitted => ("not_admitted", 429, "the sale is busy: you are in the next round"),
    SlowDown => ("slow_down", 429, "too many tries: slow down"),
    Internal => ("internal", 500, "internal error"),
    Overloaded => ("overloaded", 503, "busy or temporarily unavailable, try again shortly"),
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The body of every error answer:
/// `{"error": code, "message": text, ...extra}`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorCode,
    pub message: String,
    /// The input field at fault (`invalid_input`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// When to try again (`overloaded`, `duplicate_request`, `not_admitted`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_s: Option<u64>,
    /// The instant to try again, to the millisecond (`not_admitted` in an
    /// opening draw, where turns are milliseconds apart).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub retry_at: Option<OffsetDateTime>,
    /// Enters the next admission round (`not_admitted`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_token: Option<String>,
    /// When the sale opens (`not_open`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub opens_at: Option<OffsetDateTime>,
}

impl From<ErrorCode> for ErrorBody {
    /// The code with its default message.
    fn from(code: ErrorCode) -> Self {
        Self::new(code, code.message())
    }
}

impl ErrorBody {
    pub fn new(error: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            error,
            message: message.into(),
            field: None,
            retry_after_s: None,
            retry_token: None,
            retry_at: None,
            opens_at: None,
        }
    }

    pub fn status(&self) -> u16 {
        self.error.status()
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after_s = Some(seconds);
        self
    }

    pub fn with_retry_token(mut self, token: String) -> Self {
        self.retry_token = Some(token);
        self
    }

    pub fn with_retry_at(mut self, at: OffsetDateTime) -> Self {
        self.retry_at = Some(at);
        self
    }

    pub fn with_opens_at(mut self, opens_at: OffsetDateTime) -> Self {
        self.opens_at = Some(opens_at);
        self
    }

    /// The body as JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self)
            .unwrap_or_else(|_| format!(r#"{{"error":"{}","message":"error"}}"#, self.error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_a_client_or_server_error_and_serializes_as_its_name() {
        for code in ErrorCode::ALL {
            assert!((400..600).contains(&code.status()), "{code}");
            assert!(!code.message().is_empty(), "{code}");
            assert_eq!(ErrorBody::from(*code).message, code.message());
            let json = serde_json::to_string(code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }

    #[test]
    fn body_omits_absent_extras() {
        let body = ErrorBody::new(ErrorCode::SoldOut, "gone");
        assert_eq!(body.to_json(), r#"{"error":"sold_out","message":"gone"}"#);
        let body = ErrorBody::new(ErrorCode::Overloaded, "busy").with_retry_after(2);
        assert_eq!(
            body.to_json(),
            r#"{"error":"overloaded","message":"busy","retry_after_s":2}"#
        );
        let back: ErrorBody = serde_json::from_str(&body.to_json()).unwrap();
        assert_eq!(back, body);
    }

    #[test]
    fn spec_statuses() {
        use ErrorCode::*;
        let expected = [
            (UsernameTaken, 409),
            (InvalidInput, 400),
            (BadCredentials, 401),
            (NotFound, 404),
            (NotOpen, 403),
            (SoldOut, 409),
            (Closed, 410),
            (LimitExceeded, 403),
            (BadSignature, 403),
            (UrlExpired, 403),
            (WrongUser, 403),
            (Unauthenticated, 401),
            (DuplicateRequest, 429),
            (NotAdmitted, 429),
            (Overloaded, 503),
            (Expired, 410),
            (Forbidden, 403),
            (NotAdmittedByEdge, 403),
        ];
        for (code, status) in expected {
            assert_eq!(code.status(), status, "{code}");
        }
    }
}
