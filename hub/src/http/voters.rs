//! The voter roll over HTTP: register, list, and check a typed code.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;

use crate::core::roll::NewVoter;
use crate::http::HttpDoor;
use crate::http::error::WireError;
use crate::http::extract::{Admin, JsonBody};

/// `POST /api/voters`: `{"names": [...]}` or `{"voters": [{"name", "groups"}]}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VotersBody {
    #[serde(default)]
    pub names: Vec<String>,
    #[serde(default)]
    pub voters: Vec<NewVoter>,
}

pub async fn register(
    State(door): State<HttpDoor>,
    _: Admin,
    JsonBody(body): JsonBody<VotersBody>,
) -> Result<impl IntoResponse, WireError> {
    let mut voters: Vec<NewVoter> = body
        .names
        .into_iter()
        .map(|name| NewVoter {
            name,
            groups: Vec::new(),
        })
        .collect();
    voters.extend(body.voters);
    let entries = door.hub.register_voters(voters).await?;
    Ok((StatusCode::CREATED, Json(entries)))
}

/// Lets the participant page check a voting code when it is typed, and greet
/// its holder by name. The code is the credential: whoever has it may know
/// whose it is.
pub async fn check_code(
    State(door): State<HttpDoor>,
    Path(code): Path<String>,
) -> Result<impl IntoResponse, WireError> {
    Ok(Json(door.hub.roll_entry(&code)?))
}

pub async fn roll(State(door): State<HttpDoor>, _: Admin) -> impl IntoResponse {
    Json(door.hub.roll())
}
