//! Hubs on PostgreSQL (PROTOCOL.md §8): a node's rules hold on the shared
//! store, and nodes sharing one database decide as one hub.

mod common;

use common::postgres::Postgres;
use common::{HubProcess, binary};
use serde_json::json;

/// `votehub serve --store URL` on a data directory of its own, with the
/// admin token the database keeps.
fn node(url: &str) -> (HubProcess, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let hub = HubProcess::start_without_token(dir.path(), &["--store", url], "info");
    (hub, dir)
}

#[tokio::test]
async fn one_node_on_postgres_counts_closes_and_signs_a_log_that_verifies() {
    let pg = Postgres::start();
    let url = pg.url("votehub");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut hub = HubProcess::start_with(dir.path(), &["--store", &url], "info");
    let api = hub.api();
    let id = api.create_titled("On PostgreSQL").await;
    for i in 0..40 {
        let choice = ["for", "against", "for", "abstain"][i % 4];
        let (status, answer) = api.vote(&id, &format!("p-{i}"), choice).await;
        assert_eq!(status, 200, "{answer}");
        assert!(
            answer["receipt"]["head"]["signature"].is_string(),
            "{answer}"
        );
    }
    // A change of mind replaces the earlier ballot.
    assert_eq!(api.vote(&id, "p-1", "for").await.0, 200);
    // Killed and started again on the same database: nothing lost.
    hub.kill9();
    let hub = HubProcess::start_with(dir.path(), &["--store", &url], "info");
    let api = hub.api();
    let session = api.session(&id).await;
    assert_eq!(session["tally"]["for"], 21, "{session}");
    assert_eq!(session["tally"]["against"], 9, "{session}");
    assert_eq!(session["tally"]["abstain"], 10, "{session}");
    let (status, closed) = api.admin(&format!("/api/sessions/{id}/close"), None).await;
    assert_eq!(status, 200, "{closed}");
    assert_eq!(closed["result"], "adopted");
    let (status, bundle) = api.get(&format!("/api/sessions/{id}/audit")).await;
    assert_eq!(status, 200);
    let (_, key) = api.get("/api/key").await;
    let file = dir.path().join("bundle.json");
    std::fs::write(&file, bundle.to_string()).expect("write");
    let out = std::process::Command::new(binary())
        .arg("verify")
        .arg(&file)
        .args(["--key", key["public_key"].as_str().expect("key")])
        .output()
        .expect("verify");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[tokio::test]
async fn nodes_share_the_admin_token_and_the_signing_key() {
    let pg = Postgres::start();
    let url = pg.url("votehub");
    let (a, _da) = node(&url);
    let (b, _db) = node(&url);
    let (_, key_a) = a.api().get("/api/key").await;
    let (_, key_b) = b.api().get("/api/key").await;
    assert!(key_a["public_key"].is_string(), "{key_a}");
    assert_eq!(key_a, key_b);
    // The first node made the token and printed it; the other uses it.
    let token = {
        let log = a.stderr.lock().expect("log").clone();
        log.lines()
            .find_map(|l| l.strip_prefix("votehub: admin token")?.rsplit(": ").next())
            .map(|t| t.trim().to_owned())
            .unwrap_or_else(|| panic!("the first node prints the token it made: {log}"))
    };
    let created = b
        .api()
        .send(
            "POST",
            "/api/sessions",
            Some(json!({"title": "Shared"})),
            Some(&token),
        )
        .await;
    assert_eq!(created.0, 201, "{}", created.1);
    // The tests' usual token is not the database's: refused.
    let (status, _) = a
        .api()
        .admin("/api/sessions", Some(json!({"title": "x"})))
        .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn a_ballot_on_one_node_counts_on_the_other_and_a_retry_anywhere_is_one_ballot() {
    let pg = Postgres::start();
    let url = pg.url("votehub");
    let dir_a = tempfile::tempdir().expect("tempdir");
    let dir_b = tempfile::tempdir().expect("tempdir");
    let a = HubProcess::start_with(dir_a.path(), &["--store", &url], "info");
    let b = HubProcess::start_with(dir_b.path(), &["--store", &url], "info");
    let id = a.api().create_titled("Two nodes").await;
    // Alternating nodes: each batch finds the session changed by the other.
    for i in 0..30 {
        let api = if i % 2 == 0 { a.api() } else { b.api() };
        let (status, answer) = api.vote(&id, &format!("v-{i}"), "for").await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["tally"]["for"], i + 1, "{answer}");
    }
    // The same ballot_id sent to both nodes at once: one ballot, and the
    // same answer.
    let body = json!({"voter": "v-late", "choice": "against", "ballot_id": "b-late"});
    let (api_a, api_b) = (a.api(), b.api());
    let (one, two) = tokio::join!(api_a.ballot(&id, body.clone()), api_b.ballot(&id, body));
    assert_eq!(one.0, 200, "{}", one.1);
    assert_eq!(two.0, 200, "{}", two.1);
    assert_eq!(one.1, two.1);
    let (status, closed) = b
        .api()
        .admin(&format!("/api/sessions/{id}/close"), None)
        .await;
    assert_eq!(status, 200, "{closed}");
    assert_eq!(closed["tally"]["for"], 30, "{closed}");
    assert_eq!(closed["tally"]["against"], 1, "{closed}");
    let ballots = common::csv_ballots(&a.api().csv(&id).await);
    assert_eq!(ballots.len(), 31, "{ballots:?}");
}
