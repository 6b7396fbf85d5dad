//! PROTOCOL.md §5 over HTTP and /live: elections of people — selection
//! and approval, ties named and never broken, quorums, and every ballot
//! that does not fit refused with the limit it breaks.

mod common;

use common::{HubProcess, Live};
use serde_json::{Value, json};

async fn election(api: &common::Api, body: Value) -> String {
    let mut full = json!({"title": "Board", "kind": "election"});
    for (k, v) in body.as_object().expect("object") {
        full[k] = v.clone();
    }
    let s = api.create(full).await;
    assert_eq!(s["kind"], "election", "{s}");
    s["id"].as_str().expect("id").to_owned()
}

async fn ballot(api: &common::Api, id: &str, body: Value) -> (u16, Value) {
    api.send(
        "POST",
        &format!("/api/sessions/{id}/votes"),
        Some(body),
        None,
    )
    .await
}

async fn close(api: &common::Api, id: &str) -> Value {
    let (status, closed) = api.admin(&format!("/api/sessions/{id}/close"), None).await;
    assert_eq!(status, 200, "{closed}");
    closed
}

#[tokio::test]
async fn three_seats_with_a_tie_at_the_third_live_and_at_the_close() {
    let hub = HubProcess::start();
    let api = hub.api();
    let id = election(
        &api,
        json!({"options": ["Ann", "Bob", "Cy", "Dee", "Eve"], "seats": 3}),
    )
    .await;
    let s = api.session(&id).await;
    assert_eq!(
        (&s["method"], &s["min"], &s["max"]),
        (&json!("selection"), &json!(0), &json!(3))
    );
    assert_eq!(s["options"][4], json!({"id": 4, "name": "Eve"}));
    assert!(s.get("needed").is_none() && s.get("adopted_if_closed_now").is_none());
    let mut live = Live::connect(&hub.live_url()).await;
    live.subscribe(&id).await;
    let first = live.next_json().await;
    assert_eq!(first["options"].as_array().map(Vec::len), Some(5));

    // Votes: Ann 4, Bob 3, Cy 2, Dee 2, Eve 1; one blank ballot.
    for (voter, marks) in [
        ("v1", json!([0, 1, 2])),
        ("v2", json!([1, 0, 3])),
        ("v3", json!([4, 0, 1])),
        ("v4", json!([0, 2, 3])),
        ("v5", json!([])),
    ] {
        let (status, reply) = ballot(&api, &id, json!({"voter": voter, "options": marks})).await;
        assert_eq!(status, 200, "{reply}");
    }
    let update = live.until_total(5).await;
    assert_eq!(
        update["votes_abstain"], 1,
        "blank ballots are the abstentions"
    );
    assert_eq!(
        (&update["votes_for"], &update["votes_against"]),
        (&json!(0), &json!(0))
    );
    assert_eq!(
        update["options"],
        json!([{"id": 0, "votes": 4}, {"id": 1, "votes": 3}, {"id": 2, "votes": 2},
               {"id": 3, "votes": 2}, {"id": 4, "votes": 1}])
    );
    let closed = close(&api, &id).await;
    assert_eq!(closed["result"], "tie");
    assert_eq!(closed["elected"], json!([0, 1]));
    assert_eq!(closed["tied"], json!([2, 3]));
    assert_eq!(closed["tally"]["blank"], 1);
    let event = live.next_json().await;
    assert_eq!(event["event"], "session_closed");
    assert_eq!(event["result"], "tie");
    assert_eq!(
        (&event["elected"], &event["tied"]),
        (&json!([0, 1]), &json!([2, 3]))
    );
    let s = api.session(&id).await;
    assert_eq!(
        (&s["elected"], &s["tied"]),
        (&json!([0, 1]), &json!([2, 3]))
    );

    // The export has one column per option.
    let csv = api.csv(&id).await;
    assert!(csv.contains("elected,Ann; Bob\ntied,Cy; Dee\n"), "{csv}");
    assert!(csv.contains("voter,Ann,Bob,Cy,Dee,Eve,time\n"), "{csv}");
    assert!(csv.contains("v1,x,x,x,,,"), "{csv}");
}

#[tokio::test]
async fn approval_under_majority_and_supermajority_and_a_quorum() {
    let hub = HubProcess::start();
    let api = hub.api();
    let marks = [
        json!({"0": "for", "1": "for", "2": "for"}),
        json!({"0": "for", "1": "against", "2": "for"}),
        json!({"0": "for", "1": "for", "2": "against"}),
        json!({"0": "against", "1": "against"}),
    ];
    // Option 0: 3 for / 1 against; option 1: 2 / 2; option 2: 2 / 1 (1 abstains).
    let cast = |id: String| {
        let api = api.clone();
        let marks = marks.clone();
        async move {
            for (i, m) in marks.iter().enumerate() {
                let (status, reply) =
                    ballot(&api, &id, json!({"voter": format!("v{i}"), "marks": m})).await;
                assert_eq!(status, 200, "{reply}");
            }
        }
    };
    let majority = election(
        &api,
        json!({"options": ["Ann", "Bob", "Cy"], "seats": 2, "method": "approval"}),
    )
    .await;
    cast(majority.clone()).await;
    let tally = api.session(&majority).await["tally"].clone();
    assert_eq!(
        tally["options"][2],
        json!({"id": 2, "for": 2, "against": 1, "abstain": 1})
    );
    let closed = close(&api, &majority).await;
    assert_eq!(
        (&closed["result"], &closed["elected"]),
        (&json!("elected"), &json!([0, 2]))
    );

    let three_quarters = election(
        &api,
        json!({"options": ["Ann", "Bob", "Cy"], "seats": 2, "method": "approval",
               "rule": {"kind": "supermajority", "ratio": 0.75}}),
    )
    .await;
    cast(three_quarters.clone()).await;
    let closed = close(&api, &three_quarters).await;
    assert_eq!(
        (&closed["result"], &closed["elected"]),
        (&json!("elected"), &json!([0]))
    );

    let quorum = election(
        &api,
        json!({"options": ["Ann", "Bob", "Cy"], "seats": 2, "method": "approval",
               "rule": {"kind": "majority", "quorum": 5}}),
    )
    .await;
    cast(quorum.clone()).await;
    let closed = close(&api, &quorum).await;
    assert_eq!(closed["result"], "none_elected");
    assert_eq!(
        (&closed["elected"], &closed["tied"]),
        (&json!([]), &json!([]))
    );
}

#[tokio::test]
async fn ballots_that_do_not_fit_are_refused_with_the_limit() {
    let hub = HubProcess::start();
    let api = hub.api();
    let selection = election(
        &api,
        json!({"options": ["Ann", "Bob", "Cy", "Dee"], "seats": 2, "min": 1, "max": 2}),
    )
    .await;
    let cases = [
        (json!({"options": [7]}), "no option 7"),
        (json!({"options": [1, 1]}), "once"),
        (json!({"options": [0, 1, 2]}), "at most 2"),
        (json!({"options": []}), "at least 1"),
        (json!({"options": ["Ann"]}), "list of option ids"),
        (json!({"choice": "for"}), "not a motion's"),
        (json!({"grade": 2}), "not a motion's"),
        (json!({"options": [0], "choice": "for"}), "one of"),
        (json!({"marks": {"0": "for"}}), "takes \"options\""),
    ];
    for (body, says) in cases {
        let mut body = body;
        body["voter"] = json!("v");
        let (status, reply) = ballot(&api, &selection, body.clone()).await;
        assert_eq!(
            (status, reply["code"].as_str()),
            (400, Some("invalid_ballot")),
            "{body}: {reply}"
        );
        assert!(
            reply["error"].as_str().expect("error").contains(says),
            "{body}: {reply} should say {says:?}"
        );
    }
    let approval = election(
        &api,
        json!({"options": ["Ann", "Bob"], "method": "approval"}),
    )
    .await;
    for (body, says) in [
        (json!({"marks": {"2": "for"}}), "no option 2"),
        (json!({"marks": {"x": "for"}}), "not an option id"),
        (
            json!({"marks": {"0": "yes"}}),
            "for\", \"against\" or \"abstain",
        ),
        (json!({"options": [0]}), "takes \"marks\""),
    ] {
        let mut body = body;
        body["voter"] = json!("v");
        let (status, reply) = ballot(&api, &approval, body.clone()).await;
        assert_eq!(
            (status, reply["code"].as_str()),
            (400, Some("invalid_ballot")),
            "{body}: {reply}"
        );
        assert!(
            reply["error"].as_str().expect("error").contains(says),
            "{body}: {reply}"
        );
    }
    // A repeated id, sent raw (a JSON library would fold it).
    let resp = api
        .client
        .post(format!("{}/api/sessions/{approval}/votes", api.base))
        .body(r#"{"voter": "v", "marks": {"0": "for", "0": "against"}}"#)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 400);
    let reply: Value = resp.json().await.expect("json");
    assert!(
        reply["error"].as_str().expect("error").contains("twice"),
        "{reply}"
    );
    // Nothing of it was counted.
    for id in [&selection, &approval] {
        assert_eq!(api.session(id).await["tally"]["ballots"], 0);
    }
    // A blank approval ballot (no for, no against) counts as blank.
    let (status, reply) = ballot(
        &api,
        &approval,
        json!({"voter": "w", "marks": {"0": "abstain"}}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["tally"]["blank"], 1);
}
