//! What a call can fail with: the API's refusal (its status and error body),
//! an answer that is not the contract's, or no answer at all.

use reqwest::StatusCode;
use rushgate_core::{ErrorBody, ErrorCode};
use serde::de::DeserializeOwned;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API refused: its status and `{"error", "message", ...}` body
    /// (boxed: errors stay small beside the successes they travel with).
    #[error("{status}: {} ({})", .body.error, .body.message)]
    Api {
        status: StatusCode,
        body: Box<ErrorBody>,
    },
    /// An answer that is neither the expected type nor an error body.
    #[error("{status}: unexpected answer: {text}")]
    Unexpected { status: StatusCode, text: String },
    /// No answer (connection refused, reset, timed out).
    #[error("no answer: {0}")]
    Transport(#[from] reqwest::Error),
}

impl Error {
    /// The error code, if the API refused.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Api { body, .. } => Some(body.error),
            _ => None,
        }
    }

    /// The HTTP status, if there was an answer.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Api { status, .. } | Self::Unexpected { status, .. } => Some(*status),
            Self::Transport(e) => e.status(),
        }
    }

    /// The error body, if the API refused.
    pub fn body(&self) -> Option<&ErrorBody> {
        match self {
            Self::Api { body, .. } => Some(body.as_ref()),
            _ => None,
        }
    }

    /// A short label for tables: `"409 sold_out"`, `"503 not JSON"`, `"no answer"`.
    pub fn outcome(&self) -> String {
        match self {
            Self::Api { status, body } => format!("{} {}", status.as_u16(), body.error),
            Self::Unexpected { status, .. } => format!("{} not JSON", status.as_u16()),
            Self::Transport(_) => "no answer".to_owned(),
        }
    }
}

/// A success as `T`, an error body as [`Error::Api`], anything else as
/// [`Error::Unexpected`].
pub(crate) fn decode<T: DeserializeOwned>(status: StatusCode, text: &str) -> Result<T, Error> {
    if status.is_success()
        && let Ok(value) = serde_json::from_str(text)
    {
        return Ok(value);
    }
    match serde_json::from_str::<ErrorBody>(text) {
        Ok(body) if !status.is_success() => Err(Error::Api {
            status,
            body: Box::new(body),
        }),
        _ => Err(Error::Unexpected {
            status,
            text: text.chars().take(500).collect(),
        }),
    }
}
