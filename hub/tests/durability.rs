//! Never lose or double-count a ballot: concurrent re-votes, votes racing
//! a close, `kill -9` in the middle of a stream, SIGTERM, and restarts.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::{HubProcess, Live, TOKEN, csv_ballots};
use serde_json::json;
use tokio::sync::Mutex;

#[tokio::test]
async fn one_ballot_per_voter_under_concurrent_revotes() {
    let hub = HubProcess::start();
    let api = hub.api();
    let id = api.create_titled("Re-votes").await;
    let voters = 20;
    let rounds = 15;
    let choices = ["for", "against", "abstain"];
    // For each voter, the choice acknowledged with the highest seq.
    let last: Arc<Mutex<HashMap<String, (u64, String)>>> = Arc::default();
    let mut tasks = Vec::new();
    // Two clients per voter, racing each other.
    for v in 0..voters {
        for client in 0..2 {
            let api = api.clone();
            let id = id.clone();
            let last = last.clone();
            tasks.push(tokio::spawn(async move {
                let voter = format!("voter-{v}");
                for r in 0..rounds {
                    let choice = choices[(v + r + client) % 3];
                    let (status, receipt) = api.vote(&id, &voter, choice).await;
                    assert_eq!(status, 200, "{receipt}");
                    let seq = receipt["seq"].as_u64().expect("seq");
                    let mut last = last.lock().await;
                    let entry = last.entry(voter.clone()).or_insert((0, String::new()));
                    if seq > entry.0 {
                        *entry = (seq, choice.to_owned());
                    }
                }
            }));
        }
    }
    for t in tasks {
        t.await.expect("client");
    }
    let session = api.session(&id).await;
    assert_eq!(
        session["tally"]["total"], voters as u64,
        "one ballot per voter"
    );
    assert_eq!(
        session["seq"],
        (voters * rounds * 2) as u64,
        "every ballot was one change"
    );
    let rows = csv_ballots(&api.csv(&id).await);
    let last = last.lock().await;
    assert_eq!(rows.len(), voters);
    let mut counts: HashMap<&str, u64> = HashMap::new();
    for (voter, (_, choice)) in last.iter() {
        assert_eq!(
            &rows[voter], choice,
            "{voter}: the last acknowledged ballot counts"
        );
        *counts.entry(choice.as_str()).or_default() += 1;
    }
    for choice in choices {
        assert_eq!(
            session["tally"][choice],
            counts.get(choice).copied().unwrap_or(0),
            "{choice}"
        );
    }
}

#[tokio::test]
async fn a_vote_racing_a_close_is_either_counted_or_refused() {
    let hub = HubProcess::start();
    let api = hub.api();
    let id = api.create_titled("Race").await;
    let mut live = Live::connect(&hub.live_url()).await;
    live.subscribe(&id).await;
    live.next_json().await;

    // The close goes out once 200 ballots were acknowledged: ballots are
    // still streaming from every client then, whatever the machine's speed.
    let acknowledged = Arc::new(AtomicU64::new(0));
    let enough = Arc::new(tokio::sync::Notify::new());
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for client in 0..8 {
        let api = api.clone();
        let id = id.clone();
        let (stop, acknowledged, enough) = (stop.clone(), acknowledged.clone(), enough.clone());
        tasks.push(tokio::spawn(async move {
            let mut accepted = Vec::new();
            let mut refused = 0;
            for i in 0..400 {
                if stop.load(Ordering::Relaxed) && refused > 0 {
                    break;
                }
                let voter = format!("c{client}-{i}");
                let (status, reply) = api.vote(&id, &voter, "for").await;
                match status {
                    200 => {
                        accepted.push(voter);
                        if acknowledged.fetch_add(1, Ordering::Relaxed) + 1 == 200 {
                            enough.notify_one();
                        }
                    }
                    409 => refused += 1,
                    other => panic!("unexpected {other}: {reply}"),
                }
            }
            (accepted, refused)
        }));
    }
    enough.notified().await;
    let (status, closed) = api.admin(&format!("/api/sessions/{id}/close"), None).await;
    assert_eq!(status, 200);
    stop.store(true, Ordering::Relaxed);
    let mut accepted = Vec::new();
    let mut refused = 0;
    for t in tasks {
        let (a, r) = t.await.expect("client");
        accepted.extend(a);
        refused += r;
    }
    assert!(refused > 0, "some votes came after the close");
    assert!(!accepted.is_empty(), "some votes came before the close");
    // Every accepted ballot is in the result, and nothing else is.
    assert_eq!(closed["tally"]["total"], accepted.len() as u64);
    let rows = csv_ballots(&api.csv(&id).await);
    assert_eq!(rows.len(), accepted.len());
    for voter in &accepted {
        assert!(
            rows.contains_key(voter),
            "{voter} was acknowledged but not counted"
        );
    }
    // Subscribers see the same final tally with the result.
    let closed_event = loop {
        let e = live.next_json().await;
        if e["event"] == "session_closed" {
            break e;
        }
    };
    assert_eq!(closed_event["votes_total"], accepted.len() as u64);
    assert_eq!(closed_event["seq"], closed["seq"]);
}

#[tokio::test]
async fn kill_9_mid_stream_loses_no_acknowledged_ballot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut hub = HubProcess::start_in(dir.path());
    let api = hub.api();
    let id = api.create_titled("Crash").await;

    let acked: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let mut tasks = Vec::new();
    for client in 0..16 {
        let api = api.clone();
        let id = id.clone();
        let acked = acked.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..100_000 {
                let voter = format!("c{client}-{i}");
                let choice = if i % 3 == 0 { "against" } else { "for" };
                let resp = api
                    .client
                    .post(format!("{}/api/sessions/{id}/votes", api.base))
                    .body(json!({"voter": voter, "choice": choice}).to_string())
                    .send()
                    .await;
                // Once the hub is gone, requests fail: that client stops.
                let Ok(resp) = resp else { return };
                if resp.status() != 200 {
                    return;
                }
                if resp.text().await.is_err() {
                    return;
                }
                acked.lock().await.push((voter, choice.to_owned()));
            }
        }));
    }
    // Let a stream build up, then pull the plug without warning.
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(25)).await;
        if acked.lock().await.len() >= 500 {
            break;
        }
    }
    hub.kill9();
    for t in tasks {
        t.await.expect("client");
    }
    let acked = acked.lock().await.clone();
    assert!(
        acked.len() >= 500,
        "only {} ballots before the kill",
        acked.len()
    );

    let hub = HubProcess::start_in(dir.path());
    let api = hub.api();
    let rows = csv_ballots(&api.csv(&id).await);
    for (voter, choice) in &acked {
        assert_eq!(
            rows.get(voter),
            Some(choice),
            "acknowledged ballot of {voter} lost"
        );
    }
    // Ballots written but not yet answered may be there too; the tally
    // matches what is on disk exactly.
    let session = api.session(&id).await;
    assert_eq!(session["tally"]["total"], rows.len() as u64);
    let against = rows.values().filter(|c| *c == "against").count() as u64;
    assert_eq!(session["tally"]["against"], against);
    assert!(session["seq"].as_u64().expect("seq") >= rows.len() as u64);
}

#[tokio::test]
async fn sigterm_finishes_writes_and_a_restart_restores_everything() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut hub = HubProcess::start_in(dir.path());
    let api = hub.api();
    let (_, roll) = api
        .admin(
            "/api/voters",
            Some(json!({"voters": [{"name": "Ann", "groups": ["smith"]}, {"name": "Bob"}]})),
        )
        .await;
    let ann = roll[0]["code"].as_str().expect("code").to_owned();
    let open_id = api
        .create(json!({"title": "Open one", "description": "still open"}))
        .await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let roll_id = api
        .create(json!({"title": "Roll one", "electorate": "roll", "rule": {"kind": "supermajority", "ratio": 0.75}}))
        .await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    for (v, c) in [("a", "for"), ("b", "against"), ("a", "abstain")] {
        assert_eq!(api.vote(&open_id, v, c).await.0, 200);
    }
    assert_eq!(api.vote(&roll_id, &ann, "for").await.0, 200);
    let (_, closed) = api
        .admin(&format!("/api/sessions/{roll_id}/close"), None)
        .await;
    let before = (api.session(&open_id).await, api.session(&roll_id).await);
    let exports = (api.csv(&open_id).await, api.csv(&roll_id).await);

    assert_eq!(hub.terminate().code(), Some(0));
    let hub = HubProcess::start_in(dir.path());
    let api = hub.api();
    let after = (api.session(&open_id).await, api.session(&roll_id).await);
    assert_eq!(
        after, before,
        "sessions, tallies, seqs and results survive a restart"
    );
    assert_eq!(after.1["result"], closed["result"]);
    assert_eq!((api.csv(&open_id).await, api.csv(&roll_id).await), exports);
    let (_, roll_after) = api.send("GET", "/api/voters", None, Some(TOKEN)).await;
    let mut expected = roll.clone();
    // Her ballot checked her in, and that too was kept.
    expected[0]["present"] = json!(true);
    assert_eq!(roll_after, expected);
    // The restored session goes on where it stopped.
    let (_, receipt) = api.vote(&open_id, "c", "for").await;
    assert_eq!(receipt["seq"], before.0["seq"].as_u64().expect("seq") + 1);
    let (status, _) = api.vote(&roll_id, &ann, "against").await;
    assert_eq!(status, 409, "still closed after the restart");
}
