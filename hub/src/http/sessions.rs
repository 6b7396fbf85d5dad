//! Sessions over HTTP: list, read, create, vote, close, broadcast, export.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;

use crate::core::export::session_csv;
use crate::core::limits::MAX_VOTER;
use crate::core::session::NewSession;
use crate::core::tally::{Ballot, Choice};
use crate::core::{Code, HubError};
use crate::http::HttpDoor;
use crate::http::error::WireError;
use crate::http::extract::{Admin, JsonBody, session_id};

/// `POST /api/sessions/{id}/votes`: `choice` on the plain scale, `grade` on
/// the nuanced one. Kept loose (`Value`) so each mistake gets its own
/// plain-words answer.
#[derive(Debug, Clone, Deserialize)]
pub struct BallotBody {
    pub voter: Value,
    #[serde(default)]
    pub choice: Option<Value>,
    #[serde(default)]
    pub grade: Option<Value>,
}

pub async fn list(State(door): State<HttpDoor>) -> impl IntoResponse {
    Json(door.hub.sessions())
}

pub async fn get(
    State(door): State<HttpDoor>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, WireError> {
    let id = session_id(&id)?;
    door.hub
        .session(id)
        .map(Json)
        .ok_or_else(WireError::session_not_found)
}

pub async fn create(
    State(door): State<HttpDoor>,
    _: Admin,
    JsonBody(new): JsonBody<NewSession>,
) -> Result<impl IntoResponse, WireError> {
    let view = door.hub.create_session(new).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Checks a ballot's fields one by one, for an answer that says which is
/// wrong. The voter's length and everything about the session are the
/// core's to check.
fn ballot_from_body(body: BallotBody) -> Result<(String, Ballot), WireError> {
    let invalid = |m: &str| WireError::from(HubError::InvalidBallot(m.to_owned()));
    let voter = match body.voter {
        Value::String(v) => v,
        _ => {
            return Err(invalid(&format!(
                "\"voter\" must be a non-empty string of at most {MAX_VOTER} characters"
            )));
        }
    };
    let ballot = match (body.choice, body.grade) {
        (Some(_), Some(_)) => return Err(invalid("send either \"choice\" or \"grade\", not both")),
        (Some(choice), None) => match choice.as_str().and_then(Choice::parse) {
            Some(c) => Ballot::Choice(c),
            None => {
                return Err(invalid(
                    "\"choice\" must be \"for\", \"against\" or \"abstain\"",
                ));
            }
        },
        (None, Some(grade)) => match grade.as_i64().and_then(Ballot::grade) {
            Some(ballot) => ballot,
            None => return Err(invalid("\"grade\" must be a whole number from -3 to 3")),
        },
        (None, None) => {
            return Err(invalid(
                "a ballot needs a \"choice\" (or a \"grade\" on a nuanced scale)",
            ));
        }
    };
    Ok((voter, ballot))
}

pub async fn cast(
    State(door): State<HttpDoor>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<BallotBody>,
) -> Result<impl IntoResponse, WireError> {
    let id = session_id(&id)?;
    let (voter, ballot) = ballot_from_body(body)?;
    Ok(Json(door.hub.cast(id, voter, ballot).await?))
}

pub async fn close(
    State(door): State<HttpDoor>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, WireError> {
    let id = session_id(&id)?;
    Ok(Json(door.hub.close(id).await?))
}

pub async fn broadcast(
    State(door): State<HttpDoor>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, WireError> {
    let id = session_id(&id)?;
    Ok(Json(door.hub.broadcast(id)?))
}

pub async fn export_csv(
    State(door): State<HttpDoor>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<Response, WireError> {
    let id = session_id(&id)?;
    let session = door
        .hub
        .session(id)
        .ok_or_else(WireError::session_not_found)?;
    let ballots = door.hub.ballots(id).await?;
    let body = session_csv(&session, &ballots).map_err(|e| {
        tracing::error!(error = %e, "csv export failed");
        WireError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            Code::ExportFailed,
            "the export could not be written",
        )
    })?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"votehub-{id}.csv\""),
            ),
        ],
        body,
    )
        .into_response())
}
