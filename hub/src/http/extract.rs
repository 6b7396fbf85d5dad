//! What handlers take from a request besides their path: proof of the
//! admin token, and JSON bodies whose every failure is a coded error.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{StatusCode, header, request::Parts};
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::core::Code;
use crate::http::HttpDoor;
use crate::http::error::WireError;

/// Proof that the request carries the admin token.
pub struct Admin;

impl FromRequestParts<HttpDoor> for Admin {
    type Rejection = WireError;

    async fn from_request_parts(parts: &mut Parts, door: &HttpDoor) -> Result<Admin, WireError> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(WireError::unauthorized)?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .ok_or_else(WireError::unauthorized)?;
        // Constant time, so the token cannot be guessed byte by byte.
        if bool::from(token.trim().as_bytes().ct_eq(door.admin_token.as_bytes())) {
            Ok(Admin)
        } else {
            Err(WireError::forbidden())
        }
    }
}

/// Whether the caller is a moderator: `true` with the admin token, `false`
/// without an `Authorization` header (a wrong token is refused as for
/// [`Admin`]).
pub struct MaybeAdmin(pub bool);

impl FromRequestParts<HttpDoor> for MaybeAdmin {
    type Rejection = WireError;

    async fn from_request_parts(
        parts: &mut Parts,
        door: &HttpDoor,
    ) -> Result<MaybeAdmin, WireError> {
        if parts.headers.get(header::AUTHORIZATION).is_none() {
            return Ok(MaybeAdmin(false));
        }
        Admin::from_request_parts(parts, door)
            .await
            .map(|Admin| MaybeAdmin(true))
    }
}

/// A JSON body whose every failure is a JSON error with a code (axum's own
/// `Json` answers in plain text). The content type is not checked, so
/// `curl -d` works as is.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<HttpDoor> for JsonBody<T> {
    type Rejection = WireError;

    async fn from_request(req: Request, door: &HttpDoor) -> Result<Self, WireError> {
        let bytes = Bytes::from_request(req, door).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                WireError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    Code::BodyTooLarge,
                    "the request body is too large",
                )
            } else {
                WireError::bad_body("the request body could not be read")
            }
        })?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| WireError::bad_body(format!("invalid JSON body: {e}")))
    }
}

/// Any id that is not a UUID names no session. Python's spellings of a
/// UUID are accepted, as on `/live`.
pub fn session_id(raw: &str) -> Result<Uuid, WireError> {
    Uuid::try_parse(raw).map_err(|_| WireError::session_not_found())
}
