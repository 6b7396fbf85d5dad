//! The paths that keep ballots safe when something fails: a store that
//! refuses a commit, and the test helpers that must notice a dead socket.

mod common;

use std::time::Duration;

use common::failing_store::{FailingStore, Switch};
use common::{InProcess, Live};
use serde_json::json;
use votehub::SqliteStore;
use votehub::core::store::Store;

/// Waits until `n` commands wait for the writer (bounded).
async fn until_queued(hub: &votehub::Hub, n: usize) {
    for _ in 0..500 {
        if hub.queued() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("only {} commands queued, expected {n}", hub.queued());
}

#[tokio::test]
async fn a_failed_commit_undoes_the_whole_batch_and_the_hub_recovers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let switch = Switch::default();
    let store = FailingStore::new(
        SqliteStore::open(dir.path()).expect("store"),
        switch.clone(),
    );
    let hub = InProcess::start_on(dir, store, |_| {}).await;
    let api = hub.api();
    let id = api.create_titled("Budget").await;
    let (status, _) = api.vote(&id, "before", "for").await;
    assert_eq!(status, 200);
    let mut live = Live::connect(&hub.live_url()).await;
    live.subscribe(&id).await;
    let state = live.next_json().await;
    assert_eq!(
        (&state["seq"], &state["votes_total"]),
        (&json!(1), &json!(1))
    );
    let before = api.session(&id).await;

    // The store fails; the writer's next transaction is held at its start
    // while 30 more commands queue behind the first, so that they are
    // decided, written and refused as one batch.
    switch.fail(true);
    switch.close_gate();
    let mut calls = tokio::task::JoinSet::new();
    {
        let api = api.clone();
        let id = id.clone();
        calls.spawn(async move { api.vote(&id, "first", "for").await });
    }
    for i in 0..27 {
        let (api, id) = (api.clone(), id.clone());
        calls.spawn(async move { api.vote(&id, &format!("v{i}"), "against").await });
    }
    {
        let api1 = api.clone();
        calls.spawn(async move {
            api1.admin(
                "/api/sessions",
                Some(json!({"title": "Made in a failed batch"})),
            )
            .await
        });
        let api2 = api.clone();
        calls.spawn(async move {
            api2.admin("/api/voters", Some(json!({"names": ["Ann", "Bob"]})))
                .await
        });
        let (api3, id) = (api.clone(), id.clone());
        calls.spawn(async move { api3.admin(&format!("/api/sessions/{id}/close"), None).await });
    }
    until_queued(&hub.hub, 30).await;
    switch.open_gate();
    let mut answered = 0;
    while let Some(call) = calls.join_next().await {
        let (status, body) = call.expect("call");
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["code"], "storage_unavailable", "{body}");
        assert!(
            !body["error"].as_str().unwrap_or("").contains("disk"),
            "the cause stays in the log: {body}"
        );
        answered += 1;
    }
    assert_eq!(answered, 31);
    let refused = switch.refused();
    assert!(
        refused.iter().any(|&writes| writes >= 30),
        "one refused batch held the 30 queued commands' writes: {refused:?}"
    );

    // Nothing was published or kept: not on /live, not in memory.
    live.expect_silence(Duration::from_millis(300)).await;
    let after = api.session(&id).await;
    assert_eq!(after["seq"], before["seq"]);
    assert_eq!(after["tally"], before["tally"]);
    assert_eq!(after["status"], "open");
    let (_, sessions) = api.get("/api/sessions").await;
    assert_eq!(sessions.as_array().map(Vec::len), Some(1));
    assert_eq!(hub.hub.roll_size(), 0);

    // The store works again: so does the hub.
    switch.fail(false);
    let (status, receipt) = api.vote(&id, "after", "for").await;
    assert_eq!(status, 200, "{receipt}");
    assert_eq!(receipt["seq"], 2);
    let update = live.next_json().await;
    assert_eq!(
        (&update["seq"], &update["votes_total"]),
        (&json!(2), &json!(2))
    );
    let memory = api.session(&id).await;

    // Memory equals the disk.
    let dir = hub.stop().await;
    let loaded = SqliteStore::open(dir.path())
        .expect("reopen")
        .load()
        .expect("load");
    assert_eq!(loaded.sessions.len(), 1);
    assert!(loaded.voters.is_empty());
    let stored = &loaded.sessions[0];
    assert_eq!(json!(stored.seq), memory["seq"]);
    let voters: Vec<&str> = stored.ballots.iter().map(|b| b.voter.as_str()).collect();
    assert_eq!(voters.len(), 2);
    assert!(voters.contains(&"before") && voters.contains(&"after"));
    assert!(stored.result.is_none());
}

#[tokio::test]
async fn a_silence_check_fails_on_a_closed_connection() {
    let hub = InProcess::start(|_| {}).await;
    let mut live = Live::connect(&hub.live_url()).await;
    // A message over 4 KiB: the hub closes the connection.
    live.send(&"x".repeat(5000)).await;
    let silent = tokio::spawn(async move {
        live.expect_silence(Duration::from_millis(500)).await;
    });
    assert!(
        silent.await.is_err(),
        "expect_silence passed on a connection the hub closed"
    );
}
