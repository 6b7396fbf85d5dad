//! Sessions over HTTP: list, read, create, edit and delete drafts, open,
//! extend, vote, close, broadcast, export.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use crate::core::limits::MAX_VOTER;
use crate::core::spec::SessionSpec;
use crate::core::tally::{BallotInput, Choice};
use crate::core::{CastRequest, HubError};
use crate::http::HttpDoor;
use crate::http::error::WireError;
use crate::http::extract::{Admin, JsonBody, session_id};

/// `?meeting=<id>`: an earlier meeting's sessions instead of the current.
#[derive(Debug, Deserialize)]
pub struct Which {
    pub meeting: Option<Uuid>,
}

/// `POST /api/sessions/{id}/votes`: `choice` or `grade` for a motion,
/// `options` or `marks` for an election, and an optional `ballot_id`. Kept
/// loose (`Value`) so each mistake gets its own plain-words answer.
#[derive(Debug, Deserialize)]
pub struct BallotBody {
    pub voter: Value,
    #[serde(default)]
    pub choice: Option<Value>,
    #[serde(default)]
    pub grade: Option<Value>,
    #[serde(default)]
    pub options: Option<Value>,
    #[serde(default)]
    pub marks: Option<Marks>,
    #[serde(default)]
    pub ballot_id: Option<Value>,
    /// The member (code or name) whose proxy the voter holds.
    #[serde(default)]
    pub on_behalf_of: Option<Value>,
    /// A secret ballot's tracker, chosen by the voter's device.
    #[serde(default)]
    pub tracker: Option<Value>,
    /// Ignored: pages pad their ballots to one size, so that over HTTPS
    /// the size of a request says nothing of its choice.
    #[serde(default, rename = "pad")]
    pub _pad: Option<serde::de::IgnoredAny>,
}

/// An approval ballot's marks, every key kept as sent: a repeated id must
/// be refused, not silently collapsed as a JSON map would.
#[derive(Debug)]
pub struct Marks(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Marks {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Marks, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Marks;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of option ids to marks")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Marks, A::Error> {
                let mut marks = Vec::new();
                while let Some(entry) = map.next_entry::<String, Value>()? {
                    marks.push(entry);
                }
                Ok(Marks(marks))
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtendBody {
    pub seconds: Value,
}

pub async fn list(State(door): State<HttpDoor>, Query(which): Query<Which>) -> impl IntoResponse {
    Json(door.hub.sessions(which.meeting))
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
    JsonBody(spec): JsonBody<SessionSpec>,
) -> Result<impl IntoResponse, WireError> {
    Ok((
        StatusCode::CREATED,
        Json(door.hub.create_session(spec).await?),
    ))
}

pub async fn edit(
    State(door): State<HttpDoor>,
    _: Admin,
    Path(id): Path<String>,
    JsonBody(spec): JsonBody<SessionSpec>,
) -> Result<impl IntoResponse, WireError> {
    let id = session_id(&id)?;
    Ok(Json(door.hub.edit_session(id, spec).await?))
}

pub async fn delete(
    State(door): State<HttpDoor>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, WireError> {
    let id = session_id(&id)?;
    door.hub.delete_session(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn open(
    State(door): State<HttpDoor>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, WireError> {
    let id = session_id(&id)?;
    Ok(Json(door.hub.open_session(id).await?))
}

pub async fn extend(
    State(door): State<HttpDoor>,
    _: Admin,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ExtendBody>,
) -> Result<impl IntoResponse, WireError> {
    let id = session_id(&id)?;
    let seconds = body
        .seconds
        .as_u64()
        .ok_or_else(|| WireError::bad_body("\"seconds\" must be a whole number of seconds"))?;
    Ok(Json(door.hub.extend(id, seconds).await?))
}

/// Reads a ballot's fields one by one, for an answer that says which is
/// wrong. Whether the ballot fits the session is the core's to say.
fn ballot_from_body(body: BallotBody) -> Result<CastRequest, WireError> {
    let invalid = |m: &str| WireError::from(HubError::InvalidBallot(m.to_owned()));
    let voter = match body.voter {
        Value::String(v) => v,
        _ => {
            return Err(invalid(&format!(
                "\"voter\" must be a non-empty string of at most {MAX_VOTER} characters"
            )));
        }
    };
    let text = |v: Option<Value>, field: &str| match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(invalid(&format!("\"{field}\" must be a string"))),
    };
    let ballot_id = text(body.ballot_id, "ballot_id")?;
    let on_behalf_of = text(body.on_behalf_of, "on_behalf_of")?;
    let tracker = text(body.tracker, "tracker")?;
    let given = [
        body.choice.is_some(),
        body.grade.is_some(),
        body.options.is_some(),
        body.marks.is_some(),
    ];
    if given.iter().filter(|g| **g).count() > 1 {
        return Err(invalid(
            "send one of \"choice\", \"grade\", \"options\" or \"marks\"",
        ));
    }
    let choice = |v: &Value| v.as_str().and_then(Choice::parse);
    let ballot = if let Some(c) = body.choice {
        BallotInput::Choice(
            choice(&c)
                .ok_or_else(|| invalid("\"choice\" must be \"for\", \"against\" or \"abstain\""))?,
        )
    } else if let Some(g) = body.grade {
        BallotInput::Grade(
            g.as_i64()
                .ok_or_else(|| invalid("\"grade\" must be a whole number from -3 to 3"))?,
        )
    } else if let Some(options) = body.options {
        let ids = options
            .as_array()
            .and_then(|ids| ids.iter().map(Value::as_u64).collect::<Option<Vec<u64>>>())
            .ok_or_else(|| invalid("\"options\" must be a list of option ids, like [0, 2]"))?;
        BallotInput::Options(ids)
    } else if let Some(Marks(marks)) = body.marks {
        let mut read = Vec::with_capacity(marks.len());
        for (id, mark) in marks {
            let id = id
                .parse::<u64>()
                .map_err(|_| invalid(&format!("{id:?} is not an option id")))?;
            let mark = choice(&mark)
                .ok_or_else(|| invalid("each mark is \"for\", \"against\" or \"abstain\""))?;
            read.push((id, mark));
        }
        BallotInput::Marks(read)
    } else {
        return Err(invalid(
            "a ballot needs a \"choice\" (or a \"grade\", \"options\" or \"marks\")",
        ));
    };
    Ok(CastRequest {
        voter,
        ballot,
        ballot_id,
        on_behalf_of,
        tracker,
    })
}

pub async fn cast(
    State(door): State<HttpDoor>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<BallotBody>,
) -> Result<Response, WireError> {
    let id = session_id(&id)?;
    let request = ballot_from_body(body)?;
    let answer = door.hub.cast(id, request).await?;
    // The receipt is already JSON: a retry gets these very bytes.
    Ok(([(header::CONTENT_TYPE, "application/json")], answer).into_response())
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
    let body = door.hub.export_csv(id).await?;
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

/// `GET /api/sessions/{id}/voted`: who has voted, by name, sorted.
pub async fn voted(
    State(door): State<HttpDoor>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, WireError> {
    let id = session_id(&id)?;
    Ok(Json(door.hub.voted(id)?))
}
