//! The audit door (docs/PROTOCOL.md §7): the signing key, proofs of a
//! ballot's leaf, and a session's audit bundle.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::core::HubError;
use crate::http::HttpDoor;
use crate::http::error::WireError;
use crate::http::extract::{MaybeAdmin, session_id};

/// `GET /api/key`.
pub async fn key(State(door): State<HttpDoor>) -> impl IntoResponse {
    Json(door.hub.key())
}

/// `?index=n&from=size`, kept as text so that each mistake says which.
#[derive(Debug, Deserialize)]
pub struct ProofQuery {
    pub index: Option<String>,
    pub from: Option<String>,
}

fn number(value: &str, field: &str) -> Result<u64, WireError> {
    value.parse().map_err(|_| {
        WireError::from(HubError::InvalidBody(format!(
            "\"{field}\" must be a whole number"
        )))
    })
}

/// `GET /api/sessions/{id}/proof?index=n&from=size`.
pub async fn proof(
    State(door): State<HttpDoor>,
    Path(id): Path<String>,
    Query(q): Query<ProofQuery>,
) -> Result<impl IntoResponse, WireError> {
    let id = session_id(&id)?;
    let index = number(
        q.index
            .as_deref()
            .ok_or_else(|| WireError::from(HubError::InvalidBody("\"index\" is needed".into())))?,
        "index",
    )?;
    let from = q.from.as_deref().map(|f| number(f, "from")).transpose()?;
    Ok(Json(door.hub.proof(id, index, from)?))
}

/// `GET /api/sessions/{id}/audit`: anyone once the vote is closed,
/// moderators before.
pub async fn bundle(
    State(door): State<HttpDoor>,
    MaybeAdmin(admin): MaybeAdmin,
    Path(id): Path<String>,
) -> Result<Response, WireError> {
    let id = session_id(&id)?;
    let body = door.hub.audit_file(id, admin).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/json".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"votehub-audit-{id}.json\""),
            ),
        ],
        body,
    )
        .into_response())
}
