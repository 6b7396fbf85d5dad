//! The paths that keep ballots safe when something fails: a store that
//! refuses a commit, and the test helpers that must notice a dead socket.

mod common;

use std::time::Duration;

use common::failing_store::{FailingStore, Switch};
use common::{InProcess, Live};
use serde_json::json;
use votehub::SqliteStore;
use votehub::core::store::Store;

/// Waits until the writer waits at the closed gate (bounded).
async fn until_held(switch: &Switch) {
    for _ in 0..500 {
        if switch.held() == 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the writer never reached the gate");
}

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
    // with the first command alone in it (waited for, so that the writer
    // cannot take the others into that batch), while 30 more commands
    // queue behind it, to be decided, written and refused as one batch.
    switch.fail(true);
    switch.close_gate();
    let mut calls = tokio::task::JoinSet::new();
    {
        let api = api.clone();
        let id = id.clone();
        calls.spawn(async move { api.vote(&id, "first", "for").await });
    }
    until_held(&switch).await;
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

/// A failed commit of roll changes — a proxy given, check-ins, a reissued
/// code, an edited weight, registrations, first ballots (which check their
/// voters in and fill the register) — leaves the roll, attendance and the
/// register exactly as they were, and a restart agrees.
#[tokio::test]
async fn a_failed_commit_leaves_the_roll_and_attendance_as_they_were() {
    let dir = tempfile::tempdir().expect("tempdir");
    let switch = Switch::default();
    let store = FailingStore::new(
        SqliteStore::open(dir.path()).expect("store"),
        switch.clone(),
    );
    let hub = InProcess::start_on(dir, store, |_| {}).await;
    let api = hub.api();
    let (_, roll) = api
        .admin(
            "/api/voters",
            Some(
                json!({"voters": [{"name": "Ann", "weight": 3}, {"name": "Bob"}, {"name": "Cy"}]}),
            ),
        )
        .await;
    let code = |i: usize| roll[i]["code"].as_str().expect("code").to_owned();
    let id = api
        .create(json!({"title": "On the roll", "electorate": "roll"}))
        .await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let token = Some(common::TOKEN);
    let voters = || api.send("GET", "/api/voters", None, token);
    let attendance = || api.get("/api/attendance");
    let register_path = format!("/api/sessions/{id}/voted");
    let register = || api.send("GET", &register_path, None, token);
    let before = (voters().await.1, attendance().await.1, register().await.1);

    switch.fail(true);
    switch.close_gate();
    let mut calls = tokio::task::JoinSet::new();
    // The first change holds the writer at the gate; the others queue
    // behind it, to be decided together as the next batch.
    {
        let api = api.clone();
        let body = json!({"code": code(1), "present": true});
        calls.spawn(async move { api.admin("/api/attendance", Some(body)).await });
    }
    until_held(&switch).await;
    let posts = [
        (
            "/api/proxies".to_owned(),
            json!({"from": code(1), "to": code(0)}),
        ),
        (
            "/api/attendance".to_owned(),
            json!({"code": code(2), "present": true}),
        ),
        (format!("/api/voters/{}/reissue", code(2)), json!(null)),
        ("/api/voters".to_owned(), json!({"names": ["Dee"]})),
        (
            format!("/api/sessions/{id}/votes"),
            json!({"voter": code(0), "choice": "for"}),
        ),
    ];
    for (path, body) in posts {
        let api = api.clone();
        calls.spawn(async move {
            let body = (!body.is_null()).then_some(body);
            if path.ends_with("/votes") {
                api.send("POST", &path, body, None).await
            } else {
                api.admin(&path, body).await
            }
        });
    }
    {
        let api = api.clone();
        let ann = code(0);
        calls.spawn(async move {
            api.send(
                "PATCH",
                &format!("/api/voters/{ann}"),
                Some(json!({"weight": 7})),
                Some(common::TOKEN),
            )
            .await
        });
    }
    until_queued(&hub.hub, 6).await;
    switch.open_gate();
    while let Some(answer) = calls.join_next().await {
        let (status, body) = answer.expect("call");
        assert_eq!(status, 503, "{body}");
    }
    let refused = switch.refused();
    assert_eq!(
        refused.len(),
        2,
        "the first change alone, then the six together"
    );
    switch.fail(false);
    let after = (voters().await.1, attendance().await.1, register().await.1);
    assert_eq!(after, before, "memory shows what the disk holds");
    // And the disk holds what memory shows.
    let dir = hub.stop().await;
    let mut again = SqliteStore::open(dir.path()).expect("reopen");
    let loaded = again.load().expect("load");
    assert_eq!(loaded.voters.len(), 3);
    assert!(loaded.present.is_empty() && loaded.checked.is_empty());
    assert!(loaded.voters.iter().all(|m| m.proxy_to.is_none()));
}
