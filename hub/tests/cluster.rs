//! Hubs on PostgreSQL (PROTOCOL.md §8): a node's rules hold on the shared
//! store, and nodes sharing one database decide as one hub.

mod common;

use common::cluster::*;
use common::postgres::Postgres;
use common::{HubProcess, binary};
use serde_json::json;

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

/// Changes of mind spread over two nodes: each batch reads the voters'
/// earlier ballots at once (after what the other node committed), and a
/// voter's second ballot in the same batch sees their first.
#[tokio::test]
async fn changes_of_mind_on_both_nodes_leave_one_ballot_per_voter() {
    let pg = Postgres::start();
    let url = pg.url("votehub");
    let (nodes, _dirs) = nodes_on(&url, 2);
    let id = nodes[0].api().create_titled("Changes of mind").await;
    // Each voter alternates nodes and choices, one ballot after another:
    // the last one counts, whatever node took the ones before.
    let mut voters = Vec::new();
    for v in 0..16 {
        let apis = [nodes[0].api(), nodes[1].api()];
        let id = id.clone();
        voters.push(tokio::spawn(async move {
            for k in 0..6 {
                let choice = if (v + k) % 2 == 0 { "for" } else { "against" };
                let (status, answer) = apis[k % 2].vote(&id, &format!("v{v}"), choice).await;
                assert_eq!(status, 200, "{answer}");
            }
        }));
    }
    for v in voters {
        v.await.expect("voter");
    }
    // The last of 6 is k = 5: "for" when v is odd.
    let session = nodes[1].api().session(&id).await;
    assert_eq!(session["tally"]["for"], 8, "{session}");
    assert_eq!(session["tally"]["against"], 8, "{session}");
    // Four ballots of each voter at once on one node: some share a batch.
    let mut sent = Vec::new();
    for v in 0..16 {
        for k in 0..4 {
            let api = nodes[v % 2].api();
            let id = id.clone();
            sent.push(tokio::spawn(async move {
                let choice = if k % 2 == 0 { "for" } else { "against" };
                api.vote(&id, &format!("v{v}"), choice).await
            }));
        }
    }
    for s in sent {
        let (status, answer) = s.await.expect("ballot");
        assert_eq!(status, 200, "{answer}");
    }
    // Voters new to the session, once both nodes know who voted before: a
    // first ballot on one node, a change of mind on the other, which must
    // learn of the first (another node's new voter) before taking it.
    let mut sent = Vec::new();
    for w in 0..16 {
        let apis = [nodes[w % 2].api(), nodes[(w + 1) % 2].api()];
        let id = id.clone();
        sent.push(tokio::spawn(async move {
            for (api, choice) in apis.iter().zip(["against", "for"]) {
                let (status, answer) = api.vote(&id, &format!("w{w}"), choice).await;
                assert_eq!(status, 200, "{answer}");
            }
        }));
    }
    for s in sent {
        s.await.expect("voter");
    }
    // The same, one step at a time: node 0 records a ballot (and knows
    // everyone who voted), node 1 a new voter's first, then node 0 that
    // voter's change of mind.
    let mut screen = common::Live::connect(&nodes[1].live_url()).await;
    screen.subscribe(&id).await;
    let mut last = 0;
    for x in 0..4 {
        for (node, voter, choice) in [
            (0, format!("x{x}"), "for"),
            (1, format!("y{x}"), "against"),
            (0, format!("y{x}"), "for"),
        ] {
            let (status, answer) = nodes[node].api().vote(&id, &voter, choice).await;
            assert_eq!(status, 200, "{answer}");
            last = answer["seq"].as_u64().expect("seq");
        }
    }
    // Counted once each, before the close recounts: the tally each node
    // keeps and serves (node 0 wrote it; node 1 read it once node 0 told
    // it, which its screen shows).
    loop {
        let update = screen.next_json().await;
        if update["event"] == "vote_update" && update["seq"].as_u64() >= Some(last) {
            break;
        }
    }
    for node in &nodes {
        let tally = &node.api().session(&id).await["tally"];
        assert_eq!(tally["ballots"], 40, "{tally}");
        assert_eq!(
            tally["for"].as_u64().unwrap_or(0) + tally["against"].as_u64().unwrap_or(0),
            40,
            "{tally}"
        );
    }
    let (status, closed) = nodes[0]
        .api()
        .admin(&format!("/api/sessions/{id}/close"), None)
        .await;
    assert_eq!(status, 200, "{closed}");
    let counted = closed["tally"]["for"].as_u64().unwrap_or(0)
        + closed["tally"]["against"].as_u64().unwrap_or(0);
    assert_eq!(counted, 40, "{closed}");
    assert_eq!(closed["tally"]["ballots"], 40, "{closed}");
    // One row per voter in the export (rows, not a map that would merge
    // two of one voter).
    let csv = nodes[1].api().csv(&id).await;
    let rows = csv.split("\n\n").nth(1).map_or(0, |b| b.lines().count());
    assert_eq!(rows, 41, "a header and 40 ballots: {csv}");
}

#[tokio::test]
async fn three_nodes_one_tally_on_every_screen() {
    let pg = Postgres::start();
    let url = pg.url("votehub");
    let (nodes, dirs) = nodes_on(&url, 3);
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
    let (nodes, _dirs) = nodes_on(&url, 3);
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

#[tokio::test]
async fn the_roll_registered_on_one_node_votes_on_the_other() {
    let pg = Postgres::start();
    let url = pg.url("votehub");
    let (a, b, _dirs) = two_nodes(&url);
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
    let (mut nodes, _dirs) = nodes_on(&url, 3);
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
async fn a_quorum_of_those_present_counts_check_ins_by_ballots_on_other_nodes() {
    let pg = Postgres::start();
    let url = pg.url("votehub");
    let (a, b, _dirs) = two_nodes(&url);
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
    let (a, b, _dirs) = two_nodes(&url);
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
