//! The one place where errors become HTTP answers: a status, a human text
//! and the stable code of `core::Code`. Internals (storage failures) are
//! logged here and never sent to clients.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::core::{Code, HubError};

/// An error as an HTTP client sees it.
#[derive(Debug)]
pub struct WireError {
    pub status: StatusCode,
    pub code: Code,
    pub message: String,
}

/// Every HTTP error body.
#[derive(Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
    pub code: String,
}

impl WireError {
    pub fn new(status: StatusCode, code: Code, message: impl Into<String>) -> WireError {
        WireError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_body(message: impl Into<String>) -> WireError {
        WireError::new(StatusCode::BAD_REQUEST, Code::InvalidBody, message)
    }

    pub fn unauthorized() -> WireError {
        WireError::new(
            StatusCode::UNAUTHORIZED,
            Code::AdminTokenRequired,
            "this call needs the admin token: Authorization: Bearer <token>",
        )
    }

    pub fn forbidden() -> WireError {
        WireError::new(
            StatusCode::FORBIDDEN,
            Code::AdminTokenInvalid,
            "the admin token is wrong",
        )
    }

    pub fn session_not_found() -> WireError {
        WireError::from(HubError::SessionNotFound)
    }

    pub fn not_found() -> WireError {
        WireError::new(
            StatusCode::NOT_FOUND,
            Code::NotFound,
            "no such page or API call",
        )
    }
}

impl From<HubError> for WireError {
    fn from(e: HubError) -> WireError {
        use StatusCode as S;
        let status = match &e {
            HubError::SessionNotFound | HubError::UnknownCode | HubError::NotInLog(_) => {
                S::NOT_FOUND
            }
            HubError::AdminOnly(_) => S::UNAUTHORIZED,
            HubError::SessionClosed
            | HubError::NotDraft
            | HubError::NotOpen
            | HubError::DeadlinePassed
            | HubError::VotesStillOpen
            | HubError::ProxyRefused(_)
            | HubError::AlreadyVoted
            | HubError::Full(_) => S::CONFLICT,
            HubError::NotOnRoll | HubError::Represented | HubError::NotAProxy => S::FORBIDDEN,
            HubError::InvalidBallot(_)
            | HubError::InvalidBody(_)
            | HubError::InvalidSession(_)
            | HubError::Rule(_)
            | HubError::InvalidRoll(_) => S::BAD_REQUEST,
            HubError::ShuttingDown | HubError::Writer(_) | HubError::Store(_) => {
                S::SERVICE_UNAVAILABLE
            }
            HubError::Export(_) => S::INTERNAL_SERVER_ERROR,
        };
        if let HubError::Store(inner) = &e {
            tracing::error!(error = %inner, "storage failure answered as 503");
        }
        WireError::new(status, e.code(), e.public_message())
    }
}

impl IntoResponse for WireError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.message,
            code: self.code.as_str().to_owned(),
        };
        (self.status, Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::store::StoreError;

    #[test]
    fn storage_details_never_reach_the_client() {
        let e = WireError::from(HubError::from(StoreError::Inconsistent(
            "/home/organiser/secret/path".into(),
        )));
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(e.code, Code::StorageUnavailable);
        assert!(!e.message.contains("secret"));
    }

    #[test]
    fn statuses_follow_the_contract() {
        assert_eq!(
            WireError::from(HubError::SessionClosed).status,
            StatusCode::CONFLICT
        );
        assert_eq!(
            WireError::from(HubError::NotOnRoll).status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            WireError::from(HubError::UnknownCode).status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            WireError::from(HubError::UnknownCode).code,
            Code::VoterNotOnRoll
        );
    }
}
