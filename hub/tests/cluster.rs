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

/// The admin token a node printed when it made it.
fn printed_token(node: &HubProcess) -> String {
    let log = node.stderr.lock().expect("log").clone();
    log.lines()
        .find_map(|l| l.strip_prefix("votehub: admin token")?.rsplit(": ").next())
        .map(|t| t.trim().to_owned())
        .unwrap_or_else(|| panic!("the node prints the token it made: {log}"))
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

/// Reads `live` until its tally shows `total` ballots; every `seq` it was
/// sent grows strictly. The last update.
async fn converge(live: &mut common::Live, total: u64) -> serde_json::Value {
    let mut last_seq = None;
    loop {
        let v = live.next_json().await;
        if v["event"] != "vote_update" {
            continue;
        }
        let seq = v["seq"].as_u64().expect("seq");
        assert!(last_seq < Some(seq), "seq {seq} after {last_seq:?}: {v}");
        last_seq = Some(seq);
        if v["votes_total"].as_u64().expect("total") >= total {
            return v;
        }
    }
}

#[tokio::test]
async fn three_nodes_one_tally_on_every_screen() {
    let pg = Postgres::start();
    let url = pg.url("votehub");
    let dirs: Vec<_> = (0..3)
        .map(|_| tempfile::tempdir().expect("tempdir"))
        .collect();
    let nodes: Vec<HubProcess> = dirs
        .iter()
        .map(|d| HubProcess::start_with(d.path(), &["--store", &url], "info"))
        .collect();
    // Made on the first node; the others learn of it from the database.
    let id = nodes[0].api().create_titled("Three nodes").await;
    let mut screens = Vec::new();
    for node in &nodes {
        for _ in 0..2 {
            let mut live = common::Live::connect(&node.live_url()).await;
            live.subscribe(&id).await;
            screens.push(live);
        }
    }
    // 3 streams of 60 ballots, one per node, at once.
    let mut streams = Vec::new();
    for (k, node) in nodes.iter().enumerate() {
        let api = node.api();
        let id = id.clone();
        streams.push(tokio::spawn(async move {
            for i in 0..60 {
                let choice = if (i + k) % 3 == 0 { "against" } else { "for" };
                let (status, answer) = api.vote(&id, &format!("n{k}-{i}"), choice).await;
                assert_eq!(status, 200, "{answer}");
            }
        }));
    }
    for s in streams {
        s.await.expect("stream");
    }
    let against = (0..3)
        .flat_map(|k| (0..60).filter(move |i| (i + k) % 3 == 0))
        .count();
    let mut seqs = Vec::new();
    for live in &mut screens {
        let last = tokio::time::timeout(std::time::Duration::from_secs(20), converge(live, 180))
            .await
            .expect("every screen gets the final tally");
        assert_eq!(last["votes_total"], 180, "{last}");
        assert_eq!(last["votes_against"], against, "{last}");
        assert_eq!(last["votes_for"], 180 - against, "{last}");
        seqs.push(last["seq"].clone());
    }
    // One history: the same last seq everywhere, and the nodes' own view
    // agrees once they have caught up.
    assert!(seqs.iter().all(|s| *s == seqs[0]), "{seqs:?}");
    for node in &nodes {
        let session = node.api().session(&id).await;
        assert_eq!(session["seq"], seqs[0], "{session}");
        assert_eq!(session["tally"]["total"], 180, "{session}");
    }
    // One log, its entries and heads from all three nodes: it verifies.
    let (status, closed) = nodes[2]
        .api()
        .admin(&format!("/api/sessions/{id}/close"), None)
        .await;
    assert_eq!(status, 200, "{closed}");
    let (_, bundle) = nodes[1]
        .api()
        .get(&format!("/api/sessions/{id}/audit"))
        .await;
    let file = dirs[0].path().join("bundle.json");
    std::fs::write(&file, bundle.to_string()).expect("write");
    let out = std::process::Command::new(binary())
        .arg("verify")
        .arg(&file)
        .output()
        .expect("verify");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{said} {bundle}");
    assert!(said.contains("180 ballots"), "{said}");
}

/// A close on one node while others stream ballots, many rounds started
/// together: each acknowledged ballot is in the result, each refused one
/// is not.
#[tokio::test]
async fn a_close_racing_ballots_on_other_nodes_keeps_exactly_the_acknowledged() {
    const ROUNDS: usize = 1000;
    let pg = Postgres::start();
    let url = pg.url("votehub");
    let dirs: Vec<_> = (0..3)
        .map(|_| tempfile::tempdir().expect("tempdir"))
        .collect();
    let nodes: Vec<HubProcess> = dirs
        .iter()
        .map(|d| HubProcess::start_with(d.path(), &["--store", &url], "info"))
        .collect();
    let apis: Vec<common::Api> = nodes.iter().map(HubProcess::api).collect();
    // Rounds where the close came before some ballots, and after some.
    let (mut refused_some, mut took_some) = (0, 0);
    for round in 0..ROUNDS {
        let id = apis[0].create_titled(&format!("Round {round}")).await;
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(3));
        let close = {
            let api = apis[0].clone();
            let id = id.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                api.admin(&format!("/api/sessions/{id}/close"), None).await
            })
        };
        let ballots: Vec<_> = (1..3)
            .map(|n| {
                let api = apis[n].clone();
                let id = id.clone();
                let barrier = barrier.clone();
                tokio::spawn(async move {
                    barrier.wait().await;
                    let mut acknowledged = Vec::new();
                    for i in 0..2 {
                        let voter = format!("r{n}-{i}");
                        let (status, answer) = api.vote(&id, &voter, "for").await;
                        match status {
                            200 => acknowledged.push(voter),
                            409 => {}
                            other => panic!("{other}: {answer}"),
                        }
                    }
                    acknowledged
                })
            })
            .collect();
        let (status, closed) = close.await.expect("close");
        assert_eq!(status, 200, "{closed}");
        let mut voters = Vec::new();
        for b in ballots {
            voters.extend(b.await.expect("ballots"));
        }
        let acknowledged = voters.len() as u64;
        // The very ballots acknowledged, not only as many.
        let mut kept: Vec<String> = common::csv_ballots(&apis[0].csv(&id).await)
            .into_keys()
            .collect();
        kept.sort();
        voters.sort();
        assert_eq!(kept, voters, "round {round}");
        if acknowledged < 4 {
            refused_some += 1;
        }
        if acknowledged > 0 {
            took_some += 1;
        }
        assert_eq!(
            closed["tally"]["total"], acknowledged,
            "round {round}: the result counts exactly the acknowledged ballots"
        );
    }
    // The race was run, not avoided: in some rounds ballots came before
    // the close, in some the close came before ballots.
    assert!(
        refused_some > 0 && took_some > 0,
        "{refused_some} rounds refused ballots, {took_some} took some"
    );
}

/// Casts ballots `prefix-0`, `prefix-1`… on `apis` in turn until `stop`
/// (or `limit`), never failing on an error: the voters whose ballot was
/// acknowledged, and the statuses of the others.
async fn stream(
    apis: Vec<common::Api>,
    id: String,
    prefix: &'static str,
    limit: usize,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> (Vec<String>, Vec<u16>) {
    let mut acknowledged = Vec::new();
    let mut failed = Vec::new();
    for i in 0..limit {
        if stop.load(std::sync::atomic::Ordering::SeqCst) {
            break;
        }
        let voter = format!("{prefix}-{i}");
        let api = &apis[i % apis.len()];
        match api.try_vote(&id, &voter, "for").await {
            200 => acknowledged.push(voter),
            other => failed.push(other),
        }
    }
    (acknowledged, failed)
}

/// Polls `api`'s `/health` until it answers `want` (bounded).
async fn health_becomes(api: &common::Api, want: u16) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (status, _) = api.get("/health").await;
        if status == want {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "/health stayed {status}, not {want}"
        );
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn a_node_killed_mid_stream_loses_nothing_and_its_screens_move_to_another() {
    let pg = Postgres::start();
    let url = pg.url("votehub");
    let dirs: Vec<_> = (0..2)
        .map(|_| tempfile::tempdir().expect("tempdir"))
        .collect();
    let mut a = HubProcess::start_with(dirs[0].path(), &["--store", &url], "info");
    let b = HubProcess::start_with(dirs[1].path(), &["--store", &url], "info");
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
    let dirs: Vec<_> = (0..2)
        .map(|_| tempfile::tempdir().expect("tempdir"))
        .collect();
    let a = HubProcess::start_with(dirs[0].path(), &["--store", &url], "info");
    let b = HubProcess::start_with(dirs[1].path(), &["--store", &url], "info");
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
async fn the_roll_registered_on_one_node_votes_on_the_other() {
    let pg = Postgres::start();
    let url = pg.url("votehub");
    let dirs: Vec<_> = (0..2)
        .map(|_| tempfile::tempdir().expect("tempdir"))
        .collect();
    let a = HubProcess::start_with(dirs[0].path(), &["--store", &url], "info");
    let b = HubProcess::start_with(dirs[1].path(), &["--store", &url], "info");
    let (api_a, api_b) = (a.api(), b.api());
    let codes = api_a
        .register(json!([{"name": "Ann", "weight": 3}, {"name": "Bob"}, {"name": "Cy"}]))
        .await;
    // A proxy given on B, from the roll A registered.
    let (status, answer) = api_b
        .admin(
            "/api/proxies",
            Some(json!({"from": codes["Cy"], "to": codes["Bob"]})),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    let id = api_a
        .create(json!({"title": "Roll", "electorate": "roll"}))
        .await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    // Members registered on A vote on B, with their weights; Bob also
    // for Cy, by the proxy given on B.
    let (status, answer) = api_b
        .ballot(&id, json!({"voter": codes["Ann"], "choice": "for"}))
        .await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = api_a
        .ballot(
            &id,
            json!({"voter": codes["Bob"], "choice": "against", "on_behalf_of": "Cy"}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = api_b
        .ballot(&id, json!({"voter": codes["Bob"], "choice": "against"}))
        .await;
    assert_eq!(status, 200, "{answer}");
    // A code never registered is refused on both.
    let (status, _) = api_b
        .ballot(&id, json!({"voter": "NOPE-NOPE", "choice": "for"}))
        .await;
    assert_eq!(status, 403);
    let (status, closed) = api_b
        .admin(&format!("/api/sessions/{id}/close"), None)
        .await;
    assert_eq!(status, 200, "{closed}");
    assert_eq!(closed["tally"]["for"], 3, "{closed}");
    assert_eq!(closed["tally"]["against"], 2, "{closed}");
    // Both nodes list the same roll, with the proxy.
    for api in [&api_a, &api_b] {
        let (_, roll) = api
            .send("GET", "/api/voters", None, Some(common::TOKEN))
            .await;
        let text = roll.to_string();
        assert!(
            text.contains("Ann") && text.contains("Bob") && text.contains("Cy"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn a_timed_vote_closes_once_whichever_nodes_are_up() {
    let pg = Postgres::start();
    let url = pg.url("votehub");
    let dirs: Vec<_> = (0..3)
        .map(|_| tempfile::tempdir().expect("tempdir"))
        .collect();
    let mut nodes: Vec<HubProcess> = dirs
        .iter()
        .map(|d| HubProcess::start_with(d.path(), &["--store", &url], "info"))
        .collect();
    let id = nodes[0]
        .api()
        .create(json!({"title": "Timed", "duration_s": 2}))
        .await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let mut screens = Vec::new();
    for node in &nodes {
        let mut live = common::Live::connect(&node.live_url()).await;
        live.subscribe(&id).await;
        screens.push(live);
    }
    assert_eq!(nodes[1].api().vote(&id, "v1", "for").await.0, 200);
    // The node that made it goes away; the others close it, once.
    nodes[0].kill9();
    for live in screens.iter_mut().skip(1) {
        loop {
            let msg = live.next_json().await;
            if msg["event"] == "session_closed" {
                assert_eq!(msg["result"], "adopted", "{msg}");
                break;
            }
        }
    }
    let (status, bundle) = nodes[2]
        .api()
        .get(&format!("/api/sessions/{id}/audit"))
        .await;
    assert_eq!(status, 200, "{bundle}");
    let closes = bundle["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["type"] == "closed")
        .count();
    assert_eq!(closes, 1, "closed once in the log: {bundle}");
    for node in &nodes[1..] {
        let session = node.api().session(&id).await;
        assert_eq!(session["status"], "closed", "{session}");
        assert_eq!(session["seq"], nodes[2].api().session(&id).await["seq"]);
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

#[tokio::test]
async fn a_quorum_of_those_present_counts_check_ins_by_ballots_on_other_nodes() {
    let pg = Postgres::start();
    let url = pg.url("votehub");
    let dirs: Vec<_> = (0..2)
        .map(|_| tempfile::tempdir().expect("tempdir"))
        .collect();
    let a = HubProcess::start_with(dirs[0].path(), &["--store", &url], "info");
    let b = HubProcess::start_with(dirs[1].path(), &["--store", &url], "info");
    let codes = a
        .api()
        .register(json!([{"name": "Ann"}, {"name": "Bob"}, {"name": "Cy"}, {"name": "Di"}]))
        .await;
    let id = a
        .api()
        .create(json!({"title": "Quorum", "electorate": "roll",
                       "rule": {"kind": "majority", "quorum_present": 0.75}}))
        .await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    // Three of four vote on A: their ballots check them in there.
    for who in ["Ann", "Bob", "Cy"] {
        let (status, answer) = a
            .api()
            .ballot(&id, json!({"voter": codes[who], "choice": "for"}))
            .await;
        assert_eq!(status, 200, "{answer}");
    }
    // Closed on B: three quarters present, as the database counts them.
    let (status, closed) = b
        .api()
        .admin(&format!("/api/sessions/{id}/close"), None)
        .await;
    assert_eq!(status, 200, "{closed}");
    assert_eq!(closed["result"], "adopted", "{closed}");
}

#[tokio::test]
async fn a_draft_deleted_on_one_node_is_gone_from_the_others_and_places_follow() {
    let pg = Postgres::start();
    let url = pg.url("votehub");
    let dirs: Vec<_> = (0..2)
        .map(|_| tempfile::tempdir().expect("tempdir"))
        .collect();
    let a = HubProcess::start_with(dirs[0].path(), &["--store", &url], "info");
    let b = HubProcess::start_with(dirs[1].path(), &["--store", &url], "info");
    let (api_a, api_b) = (a.api(), b.api());
    let first = api_a.create_titled("First").await;
    let draft = api_a
        .create(json!({"title": "Draft", "status": "draft"}))
        .await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let last = api_a.create_titled("Last").await;
    // B takes ballots in the first and last votes: it knows them all.
    assert_eq!(api_b.vote(&first, "v1", "for").await.0, 200);
    assert_eq!(api_b.vote(&last, "v1", "against").await.0, 200);
    let (status, _) = api_a
        .send(
            "DELETE",
            &format!("/api/sessions/{draft}"),
            None,
            Some(common::TOKEN),
        )
        .await;
    assert!(status == 200 || status == 204, "{status}");
    // B hears of it: the draft leaves its agenda, the last vote moves up.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (_, agenda) = api_b.get("/api/sessions").await;
        let items = agenda.as_array().cloned().unwrap_or_default();
        let gone = !items.iter().any(|s| s["id"] == draft.as_str());
        let moved = items
            .iter()
            .any(|s| s["id"] == last.as_str() && s["position"] == 2);
        if gone && moved {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "B still shows: {agenda}"
        );
        tokio::task::yield_now().await;
    }
    // A ballot there is refused on B as on A; the other votes keep their
    // ballots whichever node is asked.
    assert_eq!(api_b.vote(&draft, "v2", "for").await.0, 404);
    for api in [&api_a, &api_b] {
        assert_eq!(api.session(&first).await["tally"]["for"], 1);
        assert_eq!(api.session(&last).await["tally"]["against"], 1);
    }
}
