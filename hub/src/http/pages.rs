//! The pages the hub serves to every browser on the LAN — the participant
//! page (`/`), the projector view (`/screen`) and their assets, compiled
//! into the binary so nothing needs to sit beside it — plus the join
//! information they show: addresses and their QR codes.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::core::Code;
use crate::core::clock::Time;
use crate::core::meeting::Meeting;
use crate::http::HttpDoor;
use crate::http::error::WireError;

struct Asset {
    name: &'static str,
    mime: &'static str,
    body: &'static str,
}

macro_rules! asset {
    ($name:literal, $mime:literal) => {
        Asset {
            name: $name,
            mime: $mime,
            body: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../ui/", $name)),
        }
    };
}

const ASSETS: &[Asset] = &[
    asset!("participant.html", "text/html; charset=utf-8"),
    asset!("screen.html", "text/html; charset=utf-8"),
    asset!("participant.js", "text/javascript; charset=utf-8"),
    asset!("screen.js", "text/javascript; charset=utf-8"),
    asset!("live.js", "text/javascript; charset=utf-8"),
    asset!("i18n.js", "text/javascript; charset=utf-8"),
    asset!("tally.js", "text/javascript; charset=utf-8"),
    asset!("clock.js", "text/javascript; charset=utf-8"),
    asset!("audit.js", "text/javascript; charset=utf-8"),
    asset!("receipts.js", "text/javascript; charset=utf-8"),
    asset!("vendor/noble.js", "text/javascript; charset=utf-8"),
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("icon.svg", "image/svg+xml"),
];

/// Every asset changes only with the binary: its version is the ETag.
const ETAG: &str = concat!("\"votehub-", env!("CARGO_PKG_VERSION"), "\"");

pub fn routes() -> Router<HttpDoor> {
    Router::new()
        .route(
            "/",
            get(|h: HeaderMap| async move { serve("participant.html", &h) }),
        )
        .route(
            "/screen",
            get(|h: HeaderMap| async move { serve("screen.html", &h) }),
        )
        .route(
            "/assets/{name}",
            get(|Path(name): Path<String>, h: HeaderMap| async move { serve(&name, &h) }),
        )
        .route(
            "/assets/vendor/{name}",
            get(|Path(name): Path<String>, h: HeaderMap| async move {
                serve(&format!("vendor/{name}"), &h)
            }),
        )
        .route("/api/info", get(info))
        .route("/qr.svg", get(qr))
}

fn serve(name: &str, headers: &HeaderMap) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.name == name) else {
        return WireError::not_found().into_response();
    };
    // In debug builds the version does not change with every edit.
    let cacheable = !cfg!(debug_assertions);
    if cacheable
        && headers
            .get(header::IF_NONE_MATCH)
            .is_some_and(|v| v == ETAG)
    {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    let mut resp = (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(asset.mime)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        asset.body,
    )
        .into_response();
    if cacheable {
        resp.headers_mut()
            .insert(header::ETAG, HeaderValue::from_static(ETAG));
    }
    resp
}

/// What the pages show besides sessions.
#[derive(Debug, Serialize)]
pub struct Info {
    pub version: &'static str,
    /// The addresses participants should open, LAN first.
    pub join_urls: Vec<String>,
    /// Voters on the roll, for turnout in roll sessions.
    pub roll_size: usize,
    /// The hub's clock, for countdowns shown by devices whose own clock is
    /// off (a page measures the offset from this and the round trip).
    pub now: Time,
    /// The current meeting.
    pub meeting: Option<Meeting>,
}

async fn info(State(door): State<HttpDoor>) -> Json<Info> {
    Json(Info {
        version: crate::VERSION,
        join_urls: crate::net::join_urls(door.local_addr, door.tls.as_ref()),
        roll_size: door.hub.roll_size(),
        now: Time::now(),
        meeting: door.hub.meetings().pop(),
    })
}

#[derive(Deserialize)]
struct QrQuery {
    data: String,
}

/// A QR code as SVG, for join addresses (256 characters at most).
async fn qr(Query(q): Query<QrQuery>) -> Result<Response, WireError> {
    let svg = qr_svg(&q.data).ok_or_else(|| {
        WireError::new(
            StatusCode::BAD_REQUEST,
            Code::InvalidQr,
            "give ?data= with 1 to 256 characters",
        )
    })?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        svg,
    )
        .into_response())
}

pub fn qr_svg(data: &str) -> Option<String> {
    crate::core::cards::qr_svg(data)
}
