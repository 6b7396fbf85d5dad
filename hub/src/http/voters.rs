//! The voter roll over HTTP (docs/PROTOCOL.md §2, §6): register, list,
//! edit, reissue a lost card, check a typed code; proxies; attendance.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::core::HubError;
use crate::core::cards;
use crate::core::minutes::Lang;
use crate::core::roll::{MemberEdit, NewVoter};
use crate::core::roll_file;
use crate::http::HttpDoor;
use crate::http::error::WireError;
use crate::http::extract::{Admin, JsonBody};

/// `POST /api/voters`: `{"names": [...]}` or `{"voters": [{"name",
/// "groups"?, "weight"?}]}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VotersBody {
    #[serde(default)]
    pub names: Vec<String>,
    #[serde(default)]
    pub voters: Vec<NewVoter>,
}

/// `POST /api/proxies`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyBody {
    pub from: String,
    pub to: String,
}

/// A proxy as `GET /api/proxies` lists it.
#[derive(Debug, Serialize)]
pub struct Proxy {
    pub from: String,
    pub from_name: String,
    pub to: String,
    pub to_name: String,
}

/// `POST /api/attendance`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresenceBody {
    pub code: String,
    pub present: Value,
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
            weight: None,
        })
        .collect();
    voters.extend(body.voters);
    let entries = door.hub.register_voters(voters).await?;
    Ok((StatusCode::CREATED, Json(entries)))
}

/// `POST /api/voters/import`: a roll file (CSV with a header row: name,
/// groups, weight), taken whole or not at all.
pub async fn import(
    State(door): State<HttpDoor>,
    _: Admin,
    body: String,
) -> Result<impl IntoResponse, WireError> {
    let voters = roll_file::parse(&body)?;
    let entries = door.hub.import_roll(voters).await?;
    Ok((StatusCode::CREATED, Json(entries)))
}

#[derive(Debug, Deserialize)]
pub struct CardsQuery {
    pub lang: Option<String>,
}

/// `GET /cards[?lang=fr|en]`: one voting card per member, to print.
pub async fn cards(
    State(door): State<HttpDoor>,
    _: Admin,
    headers: HeaderMap,
    Query(q): Query<CardsQuery>,
) -> impl IntoResponse {
    let lang = Lang::from_accept(q.lang.as_deref().unwrap_or_else(|| {
        headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }));
    let urls = crate::net::join_urls(door.local_addr, door.tls.as_ref());
    let url = urls.first().map(String::as_str).unwrap_or("/");
    Html(cards::render(&door.hub.roll(), url, lang))
}

/// Lets the participant page check a voting code when it is typed, and greet
/// its holder by name. The code is the credential: whoever has it may know
/// whose it is, and whom they vote for by proxy.
pub async fn check_code(
    State(door): State<HttpDoor>,
    Path(code): Path<String>,
) -> Result<impl IntoResponse, WireError> {
    Ok(Json(door.hub.roll_entry(&code)?))
}

pub async fn roll(State(door): State<HttpDoor>, _: Admin) -> impl IntoResponse {
    Json(door.hub.roll())
}

/// `PATCH /api/voters/{code}`: name, groups or weight.
pub async fn edit(
    State(door): State<HttpDoor>,
    _: Admin,
    Path(code): Path<String>,
    JsonBody(edit): JsonBody<MemberEdit>,
) -> Result<impl IntoResponse, WireError> {
    Ok(Json(door.hub.edit_voter(code, edit).await?))
}

/// `POST /api/voters/{code}/reissue`: a lost card gets a new code.
pub async fn reissue(
    State(door): State<HttpDoor>,
    _: Admin,
    Path(code): Path<String>,
) -> Result<impl IntoResponse, WireError> {
    Ok(Json(door.hub.reissue(code).await?))
}

pub async fn proxies(State(door): State<HttpDoor>, _: Admin) -> impl IntoResponse {
    let roll = door.hub.roll();
    let by_code: std::collections::HashMap<&str, &str> = roll
        .iter()
        .map(|v| (v.code.as_str(), v.name.as_str()))
        .collect();
    let list: Vec<Proxy> = roll
        .iter()
        .filter_map(|v| {
            let to = v.proxy_to.as_deref()?;
            Some(Proxy {
                from: v.code.clone(),
                from_name: v.name.clone(),
                to: to.to_owned(),
                to_name: by_code.get(to).copied().unwrap_or_default().to_owned(),
            })
        })
        .collect();
    Json(list)
}

/// `POST /api/proxies`: `from` gives their proxy to `to`.
pub async fn give_proxy(
    State(door): State<HttpDoor>,
    _: Admin,
    JsonBody(body): JsonBody<ProxyBody>,
) -> Result<impl IntoResponse, WireError> {
    let giver = door.hub.give_proxy(body.from, body.to).await?;
    Ok((StatusCode::CREATED, Json(giver)))
}

/// `DELETE /api/proxies/{from}`.
pub async fn revoke_proxy(
    State(door): State<HttpDoor>,
    _: Admin,
    Path(from): Path<String>,
) -> Result<impl IntoResponse, WireError> {
    door.hub.revoke_proxy(from).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/attendance`: anyone (the projector shows it).
pub async fn attendance(State(door): State<HttpDoor>) -> impl IntoResponse {
    Json(door.hub.attendance())
}

/// `POST /api/attendance`: checks a member in or out.
pub async fn set_presence(
    State(door): State<HttpDoor>,
    _: Admin,
    JsonBody(body): JsonBody<PresenceBody>,
) -> Result<impl IntoResponse, WireError> {
    let present = body.present.as_bool().ok_or_else(|| {
        WireError::from(HubError::InvalidBody(
            "\"present\" must be true or false".into(),
        ))
    })?;
    Ok(Json(door.hub.set_presence(body.code, present).await?))
}
