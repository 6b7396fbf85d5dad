//! The HTTP door: PROTOCOL.md §2 as axum routes, each a thin call onto the
//! hub. Admin checks, body parsing and limits live here; decisions do not.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Path, Request, State};
use axum::http::{StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde_json::Value;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::error::WireError;
use crate::hub::MAX_VOTER;
use crate::protocol::{BallotBody, Health, NewSession, NewVoter, VotersBody, parse_uuid};
use crate::server::AppState;
use crate::tally::{Ballot, Choice};

/// Bodies of ordinary calls; a session with a long description fits.
const BODY_LIMIT: usize = 64 * 1024;
/// The voter roll may be pasted in one go: 1 MiB is ~10 000 names.
const ROLL_BODY_LIMIT: usize = 1024 * 1024;
pub const MAX_ROLL_PER_REQUEST: usize = 10_000;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/api/sessions", get(list_sessions).post(create_session))
        .route("/api/sessions/{id}", get(get_session))
        .route("/api/sessions/{id}/votes", post(cast))
        .route("/api/sessions/{id}/close", post(close))
        .route("/api/sessions/{id}/broadcast", post(broadcast))
        .route("/api/sessions/{id}/export.csv", get(export_csv))
        .route(
            "/api/voters",
            get(roll)
                .post(register_voters)
                .layer(DefaultBodyLimit::max(ROLL_BODY_LIMIT)),
        )
        .route("/api/voters/{code}", get(check_code))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .fallback(|| async {
            WireError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such page or API call",
            )
        })
        .method_not_allowed_fallback(|| async {
            WireError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this method is not allowed here",
            )
        })
}

/// Proof that the request carries the admin token.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = WireError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Admin, WireError> {
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
        if bool::from(
            token
                .trim()
                .as_bytes()
                .ct_eq(state.config.admin_token.as_bytes()),
        ) {
            Ok(Admin)
        } else {
            Err(WireError::forbidden())
        }
    }
}

/// A JSON body whose every failure is a JSON error with a code (axum's own
/// `Json` answers in plain text). The content type is not checked, so
/// `curl -d` works as is.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = WireError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, WireError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                WireError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
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

/// Any id that is not a UUID names no session.
fn session_id(raw: &str) -> Result<Uuid, WireError> {
    parse_uuid(raw).ok_or_else(WireError::not_found)
}

async fn health() -> Json<Health> {
    Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
    })
}

async fn list_sessions(State(state): State<AppState>) -> impl IntoResponse {
    Json(state.hub.sessions())
}

async fn get_session(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, WireError> {
    let id = session_id(&id)?;
    state
        .hub
        .session(id)
        .map(Json)
        .ok_or_else(WireError::not_found)
}

async fn create_session(
    State(state): State<AppState>,
    _: Admin,
    JsonBody(new): JsonBody<NewSession>,
) -> Result<impl IntoResponse, WireError> {
    let view = state.hub.create_session(new).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Checks a ballot's fields one by one, for an answer that says which is wrong.
fn ballot_from_body(body: BallotBody) -> Result<(String, Ballot), WireError> {
    let invalid = |m: &str| WireError::new(StatusCode::BAD_REQUEST, "invalid_ballot", m);
    let voter = match body.voter {
        Value::String(v) if !v.trim().is_empty() && v.chars().count() <= MAX_VOTER => v,
        _ => {
            return Err(invalid(
                "\"voter\" must be a non-empty string of at most 128 characters",
            ));
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

async fn cast(
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<BallotBody>,
) -> Result<impl IntoResponse, WireError> {
    let id = session_id(&id)?;
    let (voter, ballot) = ballot_from_body(body)?;
    Ok(Json(state.hub.cast(id, voter, ballot).await?))
}

async fn close(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, WireError> {
    let id = session_id(&id)?;
    Ok(Json(state.hub.close(id).await?))
}

async fn broadcast(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, WireError> {
    let id = session_id(&id)?;
    Ok(Json(state.hub.broadcast(id)?))
}

async fn register_voters(
    State(state): State<AppState>,
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
    if voters.is_empty() {
        return Err(WireError::new(
            StatusCode::BAD_REQUEST,
            "invalid_voters",
            "send {\"names\": [...]} or {\"voters\": [{\"name\", \"groups\"}]} with at least one name",
        ));
    }
    if voters.len() > MAX_ROLL_PER_REQUEST {
        return Err(WireError::new(
            StatusCode::BAD_REQUEST,
            "invalid_voters",
            format!("at most {MAX_ROLL_PER_REQUEST} names per request"),
        ));
    }
    let entries = state.hub.register_voters(voters).await?;
    Ok((StatusCode::CREATED, Json(entries)))
}

/// Lets the participant page check a voting code when it is typed, and greet
/// its holder by name. The code is the credential: whoever has it may know
/// whose it is.
async fn check_code(
    State(state): State<AppState>,
    Path(code): Path<String>,
) -> Result<impl IntoResponse, WireError> {
    let entry = state.hub.roll_entry(&code).ok_or_else(|| {
        WireError::new(
            StatusCode::NOT_FOUND,
            "voter_not_on_roll",
            "this code is not on the voter roll",
        )
    })?;
    Ok(Json(entry))
}

async fn roll(State(state): State<AppState>, _: Admin) -> impl IntoResponse {
    Json(state.hub.roll())
}

async fn export_csv(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<Response, WireError> {
    let id = session_id(&id)?;
    let session = state.hub.session(id).ok_or_else(WireError::not_found)?;
    let ballots = state.hub.ballots(id).await?;
    let body = crate::export::session_csv(&session, &ballots);
    let body = body.map_err(|e| {
        tracing::error!(error = %e, "csv export failed");
        WireError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "export_failed",
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
