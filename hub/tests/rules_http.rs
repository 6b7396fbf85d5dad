//! Every kind of rule through the real server: created, voted, closed, with
//! the right result and the right live `needed` figure on the wire.

mod common;

use common::{HubProcess, Live};
use serde_json::{Value, json};

async fn close(api: &common::Api, id: &str) -> Value {
    let (status, closed) = api.admin(&format!("/api/sessions/{id}/close"), None).await;
    assert_eq!(status, 200, "{closed}");
    closed
}

#[tokio::test]
async fn majority_needed_and_tie() {
    let hub = HubProcess::start();
    let api = hub.api();
    let id = api.create_titled("Majority").await;
    let mut live = Live::connect(&hub.live_url()).await;
    live.subscribe(&id).await;
    let first = live.next_json().await;
    assert_eq!(
        (&first["needed"], &first["adopted_if_closed_now"]),
        (&json!(1), &json!(false))
    );
    for (v, c) in [("a", "for"), ("b", "against"), ("c", "abstain")] {
        api.vote(&id, v, c).await;
    }
    let update = live.until_total(3).await;
    // 1 for, 1 against: a tie, 2 approvals needed at this turnout.
    assert_eq!(
        (&update["needed"], &update["adopted_if_closed_now"]),
        (&json!(2), &json!(false))
    );
    let s = api.session(&id).await;
    assert_eq!(
        (&s["needed"], &s["adopted_if_closed_now"]),
        (&json!(2), &json!(false))
    );
    assert_eq!(
        close(&api, &id).await["result"],
        "rejected",
        "a tie is rejected"
    );
}

#[tokio::test]
async fn inertia_worked_example_79_of_100() {
    let hub = HubProcess::start();
    let api = hub.api();
    let s = api
        .create(json!({"title": "Licence change", "rule": {"kind": "inertia", "electorate": 7000}}))
        .await;
    assert_eq!(
        s["rule"],
        json!({"kind": "inertia", "electorate": 7000, "majority": 0.5, "gradient": 0.2, "base": 0.1, "constant": 0.0})
    );
    let id = s["id"].as_str().expect("id").to_owned();
    let other = api
        .create(json!({"title": "Same votes, one approval fewer", "rule": {"kind": "inertia", "electorate": 7000}}))
        .await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    for i in 0..100 {
        let choice = if i < 79 { "for" } else { "against" };
        assert_eq!(api.vote(&id, &format!("v{i}"), choice).await.0, 200);
        let choice = if i < 78 { "for" } else { "against" };
        assert_eq!(api.vote(&other, &format!("v{i}"), choice).await.0, 200);
    }
    let s = api.session(&id).await;
    assert_eq!(
        (&s["needed"], &s["adopted_if_closed_now"]),
        (&json!(79), &json!(true))
    );
    let mut live = Live::connect(&hub.live_url()).await;
    live.subscribe(&other).await;
    let update = live.next_json().await;
    assert_eq!(
        (&update["needed"], &update["adopted_if_closed_now"]),
        (&json!(79), &json!(false))
    );
    assert_eq!(close(&api, &id).await["result"], "adopted");
    assert_eq!(close(&api, &other).await["result"], "rejected");
}

#[tokio::test]
async fn inertia_electorate_defaults_to_the_roll_size() {
    let hub = HubProcess::start();
    let api = hub.api();
    let (status, reply) = api
        .admin(
            "/api/sessions",
            Some(json!({"title": "No roll yet", "rule": {"kind": "inertia"}})),
        )
        .await;
    assert_eq!(
        (status, reply["code"].as_str()),
        (400, Some("invalid_rule"))
    );
    let names: Vec<String> = (0..10).map(|i| format!("Member {i}")).collect();
    api.admin("/api/voters", Some(json!({ "names": names })))
        .await;
    let s = api
        .create(json!({"title": "Roll of ten", "electorate": "roll", "rule": {"kind": "inertia"}}))
        .await;
    assert_eq!(s["rule"]["electorate"], 10);
    // W = 10, nobody voted yet: one approval would be needed.
    assert_eq!(s["needed"], 1);
}

#[tokio::test]
async fn group_minimum_on_the_roll() {
    let hub = HubProcess::start();
    let api = hub.api();
    let mut voters = vec![];
    for i in 0..3 {
        voters.push(json!({"name": format!("Smith {i}"), "groups": ["smith"]}));
    }
    for i in 0..5 {
        voters.push(json!({"name": format!("Member {i}")}));
    }
    let (status, roll) = api
        .admin("/api/voters", Some(json!({ "voters": voters })))
        .await;
    assert_eq!(status, 201);
    let roll = roll.as_array().expect("roll").clone();
    assert_eq!(roll[0]["groups"], json!(["smith"]));
    let code = |i: usize| roll[i]["code"].as_str().expect("code").to_owned();
    // ceil(8^(1/3)) = 2 smiths must approve.
    let s = api
        .create(json!({"title": "Smith licence", "electorate": "roll",
                       "rule": {"kind": "majority", "groups": [{"group": "smith", "size": 8, "exponent": 0.3333333333333333}]}}))
        .await;
    let id = s["id"].as_str().expect("id").to_owned();
    assert_eq!(
        s["groups"],
        json!([{"group": "smith", "approvals": 0, "needed": 2}])
    );
    for i in 3..8 {
        api.vote(&id, &code(i), "for").await;
    }
    api.vote(&id, &code(0), "for").await;
    let s = api.session(&id).await;
    assert_eq!(
        s["groups"],
        json!([{"group": "smith", "approvals": 1, "needed": 2}])
    );
    assert_eq!(s["adopted_if_closed_now"], false, "one smith is not enough");
    // A second smith approves: exactly the minimum.
    let mut live = Live::connect(&hub.live_url()).await;
    live.subscribe(&id).await;
    live.next_json().await;
    api.vote(&id, &code(1), "for").await;
    let update = live.until_total(7).await;
    assert_eq!(
        update["groups"],
        json!([{"group": "smith", "approvals": 2, "needed": 2}])
    );
    assert_eq!(update["adopted_if_closed_now"], true);
    // A smith changing their mind takes the approval back.
    api.vote(&id, &code(1), "against").await;
    assert_eq!(api.session(&id).await["groups"][0]["approvals"], 1);
    assert_eq!(close(&api, &id).await["result"], "rejected");
}

#[tokio::test]
async fn nuanced_ballots() {
    let hub = HubProcess::start();
    let api = hub.api();
    let s = api
        .create(json!({"title": "Graded", "scale": "nuanced"}))
        .await;
    let id = s["id"].as_str().expect("id").to_owned();
    assert_eq!(s["scale"], "nuanced");
    assert_eq!(s["tally"]["grades"], json!([0, 0, 0, 0, 0, 0, 0]));
    assert_eq!(s["tally"]["median"], Value::Null);
    let path = format!("/api/sessions/{id}/votes");
    for body in [
        json!({"voter": "a", "choice": "for"}),
        json!({"voter": "a", "grade": 4}),
        json!({"voter": "a", "grade": -4}),
        json!({"voter": "a", "grade": 1.5}),
        json!({"voter": "a", "grade": "3"}),
    ] {
        let (status, reply) = api.send("POST", &path, Some(body.clone()), None).await;
        assert_eq!(
            (status, reply["code"].as_str()),
            (400, Some("invalid_ballot")),
            "{body}"
        );
    }
    let mut live = Live::connect(&hub.live_url()).await;
    live.subscribe(&id).await;
    live.next_json().await;
    for (voter, grade) in [("a", 3), ("b", 1), ("c", 0), ("d", 0), ("e", -2)] {
        let (status, _) = api
            .send(
                "POST",
                &path,
                Some(json!({"voter": voter, "grade": grade})),
                None,
            )
            .await;
        assert_eq!(status, 200);
    }
    let update = live.until_total(5).await;
    // Seed fields: positive, negative, zero grades.
    assert_eq!(
        (
            &update["votes_for"],
            &update["votes_against"],
            &update["votes_abstain"]
        ),
        (&json!(2), &json!(1), &json!(2))
    );
    assert_eq!(update["grades"], json!([0, 1, 0, 2, 1, 0, 1]));
    let s = api.session(&id).await;
    assert_eq!(s["tally"]["median"], 0.0);
    // For = 2 + 2/2 = 3, against = 1 + 2/2 = 2 of 5: adopted by majority.
    assert_eq!(s["adopted_if_closed_now"], true);
    assert_eq!(s["needed"], 3);
    assert_eq!(close(&api, &id).await["result"], "adopted");
    let csv = api.csv(&id).await;
    assert!(csv.contains("\ne,-2,"), "{csv}");

    // A plain session refuses grades.
    let plain = api.create_titled("Plain").await;
    let (status, reply) = api
        .send(
            "POST",
            &format!("/api/sessions/{plain}/votes"),
            Some(json!({"voter": "a", "grade": 1})),
            None,
        )
        .await;
    assert_eq!(
        (status, reply["code"].as_str()),
        (400, Some("invalid_ballot"))
    );
}
