//! The day over HTTP: the agenda in order, reordering it, importing it
//! from a file, the meetings, and the minutes.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{Html, IntoResponse};
use serde::Deserialize;
use uuid::Uuid;

use crate::core::agenda::{self, Format};
use crate::core::clock::Time;
use crate::core::minutes::{self, Lang};
use crate::http::HttpDoor;
use crate::http::error::WireError;
use crate::http::extract::{Admin, JsonBody};
use crate::http::sessions::Which;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderBody {
    pub order: Vec<Uuid>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeetingBody {
    pub title: String,
}

#[derive(Debug, Deserialize)]
pub struct MinutesQuery {
    pub meeting: Option<Uuid>,
    pub lang: Option<String>,
}

pub async fn list(State(door): State<HttpDoor>, Query(which): Query<Which>) -> impl IntoResponse {
    Json(door.hub.agenda(which.meeting))
}

pub async fn reorder(
    State(door): State<HttpDoor>,
    _: Admin,
    JsonBody(body): JsonBody<OrderBody>,
) -> Result<impl IntoResponse, WireError> {
    Ok(Json(door.hub.reorder(body.order).await?))
}

/// An agenda file as the body: CSV (`text/csv`) or JSON, guessed from the
/// content type, else from the first character.
pub async fn import(
    State(door): State<HttpDoor>,
    _: Admin,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, WireError> {
    let text = std::str::from_utf8(&body)
        .map_err(|_| WireError::bad_body("the agenda file must be UTF-8 text"))?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let format = if content_type.starts_with("text/csv") {
        Format::Csv
    } else if content_type.starts_with("application/json") {
        Format::Json
    } else {
        Format::sniff(text)
    };
    let specs = agenda::parse(text, format)?;
    let created = door.hub.import_agenda(specs).await?;
    Ok((axum::http::StatusCode::CREATED, Json(created)))
}

pub async fn meetings(State(door): State<HttpDoor>) -> impl IntoResponse {
    Json(door.hub.meetings())
}

pub async fn start_meeting(
    State(door): State<HttpDoor>,
    _: Admin,
    JsonBody(body): JsonBody<MeetingBody>,
) -> Result<impl IntoResponse, WireError> {
    let meeting = door.hub.start_meeting(body.title).await?;
    Ok((axum::http::StatusCode::CREATED, Json(meeting)))
}

/// The minutes of a meeting (the current one by default), print-ready.
pub async fn minutes(
    State(door): State<HttpDoor>,
    _: Admin,
    headers: HeaderMap,
    Query(q): Query<MinutesQuery>,
) -> Result<impl IntoResponse, WireError> {
    let meetings = door.hub.meetings();
    let meeting = match q.meeting {
        Some(id) => meetings.iter().find(|m| m.id == id),
        None => meetings.last(),
    }
    .ok_or_else(WireError::not_found)?;
    let lang = match q.lang.as_deref() {
        Some(l) => Lang::from_accept(l),
        None => Lang::from_accept(
            headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or(""),
        ),
    };
    let sessions = door.hub.agenda(Some(meeting.id));
    let audits = minutes::Audits {
        key_fingerprint: door.hub.key().fingerprint,
        digests: door.hub.audit_digests(&sessions).await,
    };
    Ok(Html(minutes::render(
        meeting,
        &sessions,
        &audits,
        lang,
        Time::now(),
    )))
}
