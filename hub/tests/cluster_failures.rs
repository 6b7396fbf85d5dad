//! Hubs on PostgreSQL when things go wrong or change hands: one node
//! killed, the database stopped, a laptop's data moved in, the secrets the
//! nodes share (PROTOCOL.md §8).

mod common;

use common::cluster::*;
use common::postgres::Postgres;
use common::{HubProcess, binary};
use serde_json::json;

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
    let token = printed_token(&a);
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
async fn a_node_killed_mid_stream_loses_nothing_and_its_screens_move_to_another() {
    let pg = Postgres::start();
    let url = pg.url("votehub");
    let (mut a, b, _dirs) = two_nodes(&url);
    let id = b.api().create_titled("Killed").await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // A phone on node A streams; another on node B.
    let on_a = tokio::spawn(stream(vec![a.api()], id.clone(), "a", 400, stop.clone()));
    let on_b = tokio::spawn(stream(vec![b.api()], id.clone(), "b", 400, stop.clone()));
    // Mid-stream, once node A has ballots in: kill -9.
    let mut screen = common::Live::connect(&a.live_url()).await;
    screen.subscribe(&id).await;
    screen.until_total(50).await;
    a.kill9();
    let (acked_a, _) = on_a.await.expect("stream a");
    let (acked_b, failed_b) = on_b.await.expect("stream b");
    assert!(failed_b.is_empty(), "node B kept serving: {failed_b:?}");
    // A's screen reconnects through B and converges on what B holds.
    let mut screen = common::Live::connect(&b.live_url()).await;
    screen.subscribe(&id).await;
    let session = b.api().session(&id).await;
    let total = session["tally"]["total"].as_u64().expect("total");
    let last = screen.until_total(total).await;
    assert_eq!(last["votes_total"], total);
    // Every acknowledged ballot is in: A's, until it died, and all of B's.
    let kept = common::csv_ballots(&b.api().csv(&id).await);
    for voter in acked_a.iter().chain(&acked_b) {
        assert!(kept.contains_key(voter), "{voter} acknowledged, then lost");
    }
    assert_eq!(acked_b.len(), 400);
    assert!(
        !acked_a.is_empty() && acked_a.len() < 400,
        "killed mid-stream"
    );
}

#[tokio::test]
async fn postgres_stopped_and_started_mid_stream_acknowledges_nothing_it_lost() {
    let mut pg = Postgres::start();
    let url = pg.url("votehub");
    let (a, b, _dirs) = two_nodes(&url);
    let (api_a, api_b) = (a.api(), b.api());
    health_becomes(&api_a, 200).await;
    health_becomes(&api_b, 200).await;
    let id = api_a.create_titled("Outage").await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let streaming = tokio::spawn(stream(
        vec![api_a.clone(), api_b.clone()],
        id.clone(),
        "s",
        100_000,
        stop.clone(),
    ));
    let mut screen = common::Live::connect(&a.live_url()).await;
    screen.subscribe(&id).await;
    screen.until_total(30).await;
    pg.stop();
    // While the database is away: recording calls answer 503, and both
    // nodes say they are not following.
    let (status, answer) = api_b.vote(&id, "during", "for").await;
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["code"], "storage_unavailable", "{answer}");
    health_becomes(&api_a, 503).await;
    health_becomes(&api_b, 503).await;
    pg.start_again();
    health_becomes(&api_a, 200).await;
    health_becomes(&api_b, 200).await;
    // The stream goes on through both nodes once the database is back.
    let (status, answer) = api_b.vote(&id, "after", "for").await;
    assert_eq!(status, 200, "{answer}");
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (acked, failed) = streaming.await.expect("stream");
    assert!(
        failed.iter().all(|s| *s == 503),
        "only storage_unavailable while it was away: {failed:?}"
    );
    let kept = common::csv_ballots(&api_a.csv(&id).await);
    for voter in acked.iter().chain(std::iter::once(&"after".to_owned())) {
        assert!(kept.contains_key(voter), "{voter} acknowledged, then lost");
    }
    assert!(
        !kept.contains_key("during"),
        "a ballot refused, then counted"
    );
    // Both nodes, and a screen on each, converge on what is stored.
    let total = kept.len() as u64;
    for api in [&api_a, &api_b] {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while api.session(&id).await["tally"]["total"] != total {
            assert!(
                std::time::Instant::now() < deadline,
                "a node never caught up"
            );
            tokio::task::yield_now().await;
        }
    }
    for node in [&a, &b] {
        let mut screen = common::Live::connect(&node.live_url()).await;
        screen.subscribe(&id).await;
        assert_eq!(screen.until_total(total).await["votes_total"], total);
    }
}

#[tokio::test]
async fn a_laptops_data_moves_into_postgres_and_carries_on() {
    // A day on the laptop: a roll, a proxy, a closed vote with its log, an
    // open one, a retried ballot.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut laptop = HubProcess::start_in(dir.path());
    let api = laptop.api();
    let codes = api
        .register(json!([{"name": "Ann", "weight": 2}, {"name": "Bob"}, {"name": "Cy"}]))
        .await;
    let closed = api
        .create(json!({"title": "Closed", "electorate": "roll"}))
        .await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    for (who, choice) in [("Ann", "for"), ("Bob", "against"), ("Cy", "for")] {
        let (status, _) = api
            .ballot(&closed, json!({"voter": codes[who], "choice": choice}))
            .await;
        assert_eq!(status, 200);
    }
    api.admin(&format!("/api/sessions/{closed}/close"), None)
        .await;
    let open = api.create_titled("Still open").await;
    let retried = json!({"voter": "p-1", "choice": "for", "ballot_id": "b-1"});
    let (_, first_answer) = api.ballot(&open, retried.clone()).await;
    let bundle_before = api.get(&format!("/api/sessions/{closed}/audit")).await.1;
    let key_before = api.get("/api/key").await.1;
    let agenda_before = api.get("/api/sessions").await.1;
    assert_eq!(laptop.terminate().code(), Some(0));

    // The token the laptop keeps (its hub was given the tests' one).
    std::fs::write(dir.path().join("admin-token"), "laptop-token-7\n").expect("token");
    let pg = Postgres::start();
    let url = pg.url("votehub");
    let out = std::process::Command::new(binary())
        .args(["migrate", "--from"])
        .arg(format!("sqlite:{}", dir.path().display()))
        .args(["--to", &url])
        .output()
        .expect("migrate");
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("2 sessions") && said.contains("3 voters"),
        "{said}"
    );
    // Into a database that is no longer empty: refused, nothing changed.
    let again = std::process::Command::new(binary())
        .args(["migrate", "--from"])
        .arg(dir.path())
        .args(["--to", &url])
        .output()
        .expect("migrate");
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));

    // A node on the database carries on where the laptop stopped.
    let node_dir = tempfile::tempdir().expect("tempdir");
    let node = HubProcess::start_without_token(node_dir.path(), &["--store", &url], "info");
    let api = node.api();
    assert_eq!(
        api.get("/api/key").await.1,
        key_before,
        "the same signing key"
    );
    assert_eq!(
        api.get("/api/sessions").await.1,
        agenda_before,
        "the same agenda"
    );
    assert_eq!(
        api.get(&format!("/api/sessions/{closed}/audit")).await.1,
        bundle_before,
        "the same audit file"
    );
    // A retry answered as before, and the laptop's admin token.
    let (_, again_answer) = api.ballot(&open, retried).await;
    assert_eq!(again_answer, first_answer);
    let (status, answer) = api
        .send(
            "POST",
            &format!("/api/sessions/{open}/close"),
            None,
            Some("laptop-token-7"),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["tally"]["for"], 1);
}
