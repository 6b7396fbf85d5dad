//! The HTTP door: docs/PROTOCOL.md §2 as axum routes, each a thin call onto
//! the hub. Admin checks, body parsing and body sizes live here; decisions
//! and every other limit are the core's.

mod agenda;
mod audit;
pub mod error;
mod extract;
pub mod pages;
mod sessions;
mod voters;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Serialize;

use crate::core::{Code, Hub};
use crate::http::error::WireError;

/// Bodies of ordinary calls; a session with a long description fits.
const BODY_LIMIT: usize = 64 * 1024;
/// The voter roll may be pasted in one go (1 MiB is ~10 000 names), and an
/// agenda sent whole.
const LARGE_BODY_LIMIT: usize = 1024 * 1024;

/// What every HTTP handler gets.
#[derive(Clone)]
pub struct HttpDoor {
    pub hub: Hub,
    pub admin_token: Arc<str>,
    /// Where the server listens, for the join addresses.
    pub local_addr: SocketAddr,
    /// The certificate, when serving HTTPS (join addresses follow it).
    pub tls: Option<crate::tls::Certificate>,
}

pub fn routes(door: HttpDoor) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/api/sessions", get(sessions::list).post(sessions::create))
        .route(
            "/api/sessions/{id}",
            get(sessions::get)
                .patch(sessions::edit)
                .delete(sessions::delete),
        )
        .route("/api/sessions/{id}/open", post(sessions::open))
        .route("/api/sessions/{id}/extend", post(sessions::extend))
        .route("/api/sessions/{id}/votes", post(sessions::cast))
        .route("/api/sessions/{id}/close", post(sessions::close))
        .route("/api/sessions/{id}/broadcast", post(sessions::broadcast))
        .route("/api/sessions/{id}/export.csv", get(sessions::export_csv))
        .route("/api/sessions/{id}/voted", get(sessions::voted))
        .route("/api/sessions/{id}/proof", get(audit::proof))
        .route("/api/sessions/{id}/audit", get(audit::bundle))
        .route("/api/key", get(audit::key))
        .route(
            "/api/voters",
            get(voters::roll)
                .post(voters::register)
                .layer(DefaultBodyLimit::max(LARGE_BODY_LIMIT)),
        )
        .route(
            "/api/voters/{code}",
            get(voters::check_code).patch(voters::edit),
        )
        .route("/api/voters/{code}/reissue", post(voters::reissue))
        .route(
            "/api/voters/import",
            post(voters::import).layer(DefaultBodyLimit::max(LARGE_BODY_LIMIT)),
        )
        .route("/cards", get(voters::cards))
        .route(
            "/api/proxies",
            get(voters::proxies).post(voters::give_proxy),
        )
        .route("/api/proxies/{from}", delete(voters::revoke_proxy))
        .route(
            "/api/attendance",
            get(voters::attendance).post(voters::set_presence),
        )
        .route(
            "/api/agenda",
            get(agenda::list)
                .post(agenda::reorder)
                .layer(DefaultBodyLimit::max(LARGE_BODY_LIMIT)),
        )
        .route(
            "/api/agenda/import",
            post(agenda::import).layer(DefaultBodyLimit::max(LARGE_BODY_LIMIT)),
        )
        .route(
            "/api/meetings",
            get(agenda::meetings).post(agenda::start_meeting),
        )
        .route("/minutes", get(agenda::minutes))
        .merge(pages::routes())
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .fallback(|| async { WireError::not_found() })
        .method_not_allowed_fallback(|| async {
            WireError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                Code::MethodNotAllowed,
                "this method is not allowed here",
            )
        })
        .with_state(door)
}

#[derive(Debug, Serialize)]
pub struct Health {
    pub status: &'static str,
    pub version: &'static str,
}

/// `200 ok`; `503 catching_up` while a node of a cluster does not see what
/// the others commit (PROTOCOL.md §8): a load balancer sends no one to it.
async fn health(State(door): State<HttpDoor>) -> (StatusCode, Json<Health>) {
    let (code, status) = if door.hub.following() {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "catching_up")
    };
    (
        code,
        Json(Health {
            status,
            version: crate::VERSION,
        }),
    )
}
