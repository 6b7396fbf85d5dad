//! The one place where errors become wire errors: an HTTP status, a human
//! text and a stable machine `code`. Internals (storage failures) are
//! logged here and never sent to clients.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::hub::HubError;
use crate::protocol::ErrorBody;

/// An error as an HTTP client sees it.
#[derive(Debug)]
pub struct WireError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl WireError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> WireError {
        WireError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_body(message: impl Into<String>) -> WireError {
        WireError::new(StatusCode::BAD_REQUEST, "invalid_body", message)
    }

    pub fn unauthorized() -> WireError {
        WireError::new(
            StatusCode::UNAUTHORIZED,
            "admin_token_required",
            "this call needs the admin token: Authorization: Bearer <token>",
        )
    }

    pub fn forbidden() -> WireError {
        WireError::new(
            StatusCode::FORBIDDEN,
            "admin_token_invalid",
            "the admin token is wrong",
        )
    }

    pub fn not_found() -> WireError {
        WireError::new(
            StatusCode::NOT_FOUND,
            "session_not_found",
            "no session with this id",
        )
    }
}

impl From<HubError> for WireError {
    fn from(e: HubError) -> WireError {
        use StatusCode as S;
        let (status, code) = match &e {
            HubError::SessionNotFound => (S::NOT_FOUND, "session_not_found"),
            HubError::SessionClosed => (S::CONFLICT, "session_closed"),
            HubError::NotOnRoll => (S::FORBIDDEN, "voter_not_on_roll"),
            HubError::InvalidBallot(_) => (S::BAD_REQUEST, "invalid_ballot"),
            HubError::InvalidSession(_) => (S::BAD_REQUEST, "invalid_session"),
            HubError::Rule(_) => (S::BAD_REQUEST, "invalid_rule"),
            HubError::InvalidRoll(_) => (S::BAD_REQUEST, "invalid_voters"),
            HubError::Full(_) => (S::CONFLICT, "limit_reached"),
            HubError::ShuttingDown | HubError::Writer(_) => {
                (S::SERVICE_UNAVAILABLE, "shutting_down")
            }
            HubError::Store(inner) => {
                tracing::error!(error = %inner, "storage failure answered as 503");
                return WireError::new(
                    S::SERVICE_UNAVAILABLE,
                    "storage_unavailable",
                    "the hub could not save this change; nothing was recorded, try again",
                );
            }
        };
        WireError::new(status, code, e.to_string())
    }
}

impl IntoResponse for WireError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.message,
            code: self.code.to_owned(),
        };
        (self.status, Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreError;

    #[test]
    fn storage_details_never_reach_the_client() {
        let e = WireError::from(HubError::Store(StoreError::Inconsistent(
            "/home/organiser/secret/path".into(),
        )));
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(!e.message.contains("secret"));
    }

    #[test]
    fn codes_are_stable() {
        assert_eq!(
            WireError::from(HubError::SessionClosed).code,
            "session_closed"
        );
        assert_eq!(
            WireError::from(HubError::NotOnRoll).status,
            StatusCode::FORBIDDEN
        );
    }
}
