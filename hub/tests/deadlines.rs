//! Timed votes and safe retries (PROTOCOL.md §4): the hub closes a vote at
//! its deadline by the wall clock, once, even across a `kill -9`; a ballot
//! sent again with its `ballot_id` gets the first answer and changes
//! nothing.

mod common;

use std::time::Duration;

use common::{HubProcess, Live, csv_ballots};
use serde_json::{Value, json};
use votehub::core::clock::Time;

/// Waits, by the wall clock, until `at` has passed.
fn wait_past(at: &str) {
    let at = Time::parse(at).expect("time");
    while Time::now() <= at {
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn a_timed_vote_closes_itself_once_for_every_subscriber() {
    let hub = HubProcess::start();
    let api = hub.api();
    let s = api.create(json!({"title": "Quick", "duration_s": 2})).await;
    let id = s["id"].as_str().expect("id").to_owned();
    let closes_at = s["closes_at"].as_str().expect("closes_at").to_owned();
    let mut screens = Vec::new();
    for _ in 0..3 {
        let mut live = Live::connect(&hub.live_url()).await;
        live.subscribe(&id).await;
        let first = live.next_json().await;
        assert_eq!(
            first["closes_at"], closes_at,
            "the countdown's end, by the hub's clock"
        );
        screens.push(live);
    }
    let (status, _) = api.vote(&id, "ann", "for").await;
    assert_eq!(status, 200);

    for live in &mut screens {
        let closed = loop {
            let e = live.next_json().await;
            if e["event"] == "session_closed" {
                break e;
            }
        };
        assert_eq!(closed["result"], "adopted");
        assert_eq!(closed["votes_for"], 1);
        live.expect_silence(Duration::from_millis(400)).await;
    }
    let s = api.session(&id).await;
    assert_eq!(s["status"], "closed");
    assert_eq!(s["closed_at"], closes_at, "closed at its deadline");
    let (status, reply) = api.vote(&id, "bob", "against").await;
    assert_eq!(status, 409, "{reply}");
    assert_eq!(reply["code"], "session_closed");
}

#[tokio::test]
async fn a_deadline_passed_while_the_hub_was_down_is_applied_at_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut hub = HubProcess::start_in(dir.path());
    let api = hub.api();
    let s = api
        .create(json!({"title": "Overnight", "duration_s": 3}))
        .await;
    let id = s["id"].as_str().expect("id").to_owned();
    let closes_at = s["closes_at"].as_str().expect("closes_at").to_owned();
    let mut acknowledged = Vec::new();
    for i in 0..20 {
        let voter = format!("v{i}");
        let (status, _) = api
            .vote(&id, &voter, if i % 4 == 0 { "against" } else { "for" })
            .await;
        if status == 200 {
            acknowledged.push(voter);
        }
    }
    assert_eq!(acknowledged.len(), 20);
    hub.kill9();
    wait_past(&closes_at);

    let hub = HubProcess::start_in(dir.path());
    let api = hub.api();
    let s = api.session(&id).await;
    assert_eq!(
        s["status"], "closed",
        "closed as soon as the hub runs again"
    );
    assert_eq!(s["closed_at"], closes_at);
    assert_eq!(s["result"], "adopted");
    assert_eq!(s["tally"]["total"], 20);
    let rows = csv_ballots(&api.csv(&id).await);
    assert_eq!(rows.len(), acknowledged.len());
    for voter in &acknowledged {
        assert!(rows.contains_key(voter), "{voter} was acknowledged");
    }
    let (status, _) = api.vote(&id, "late", "for").await;
    assert_eq!(status, 409);
}

async fn post(api: &common::Api, id: &str, body: Value) -> (u16, String) {
    let resp = api
        .client
        .post(format!("{}/api/sessions/{id}/votes", api.base))
        .body(body.to_string())
        .send()
        .await
        .expect("send");
    let status = resp.status().as_u16();
    (status, resp.text().await.expect("body"))
}

#[tokio::test]
async fn a_retried_ballot_gets_its_first_answer_and_changes_nothing() {
    let hub = HubProcess::start();
    let api = hub.api();
    let id = api.create_titled("Retries").await;
    let first = json!({"voter": "ann", "choice": "for", "ballot_id": "ann-1"});
    let (status, answer) = post(&api, &id, first.clone()).await;
    assert_eq!(status, 200);
    let (status, again) = post(&api, &id, first.clone()).await;
    assert_eq!((status, &again), (200, &answer), "the same bytes again");
    // Even with another choice, the same id is the same ballot.
    let (_, again) = post(
        &api,
        &id,
        json!({"voter": "ann", "choice": "against", "ballot_id": "ann-1"}),
    )
    .await;
    assert_eq!(again, answer);
    let s = api.session(&id).await;
    assert_eq!(
        (&s["seq"], &s["tally"]["for"], &s["tally"]["total"]),
        (&json!(1), &json!(1), &json!(1))
    );

    // A later ballot of the same voter stands; the old id never overrides it.
    let (status, later) = post(
        &api,
        &id,
        json!({"voter": "ann", "choice": "against", "ballot_id": "ann-2"}),
    )
    .await;
    assert_eq!(status, 200);
    let (_, stale) = post(&api, &id, first.clone()).await;
    assert_eq!(stale, answer, "the first answer, seq 1");
    let s = api.session(&id).await;
    assert_eq!(
        (&s["tally"]["for"], &s["tally"]["against"]),
        (&json!(0), &json!(1))
    );
    assert_eq!(
        s["seq"],
        serde_json::from_str::<Value>(&later).expect("json")["seq"]
    );

    // Ten copies at once: one ballot, ten identical answers.
    let mut copies = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let (api, id) = (api.clone(), id.clone());
        copies.spawn(async move {
            post(
                &api,
                &id,
                json!({"voter": "bob", "choice": "for", "ballot_id": "bob-1"}),
            )
            .await
        });
    }
    let mut answers = Vec::new();
    while let Some(a) = copies.join_next().await {
        let (status, body) = a.expect("copy");
        assert_eq!(status, 200);
        answers.push(body);
    }
    answers.dedup();
    assert_eq!(answers.len(), 1, "{answers:?}");
    let s = api.session(&id).await;
    assert_eq!(
        (&s["tally"]["total"], &s["tally"]["for"]),
        (&json!(2), &json!(1))
    );
    assert_eq!(s["seq"], 3);

    // Another voter may use the same id: it is theirs.
    let (status, _) = post(
        &api,
        &id,
        json!({"voter": "cy", "choice": "abstain", "ballot_id": "ann-1"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(api.session(&id).await["tally"]["total"], 3);

    // A retry after the close still gets its answer; a new ballot does not.
    api.admin(&format!("/api/sessions/{id}/close"), None).await;
    let (status, after) = post(&api, &id, first).await;
    assert_eq!((status, after), (200, answer));
    let (status, _) = post(
        &api,
        &id,
        json!({"voter": "dee", "choice": "for", "ballot_id": "d"}),
    )
    .await;
    assert_eq!(status, 409);
    // Bad ids are refused.
    for bad in [json!(""), json!("x".repeat(65)), json!(5)] {
        let (status, reply) = post(
            &api,
            &id,
            json!({"voter": "eve", "choice": "for", "ballot_id": bad}),
        )
        .await;
        assert_eq!(status, 400, "{reply}");
    }
}
