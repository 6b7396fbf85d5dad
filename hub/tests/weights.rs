//! Weighed votes: the worked examples of docs/RULES.md ("Weights"), read
//! from the page itself and run against a hub, row by row; and a ballot
//! counting with the weight that held when it was cast.

mod common;

use common::{Api, InProcess, TOKEN};
use serde_json::{Value, json};

/// One row of the table: members, ballots, the rule, and what the hub
/// must say.
#[derive(Debug)]
struct Example {
    members: Vec<(String, u64, Vec<String>)>,
    ballots: Vec<(String, Value)>,
    rule: Value,
    counts: [u64; 3],
    people: u64,
    result: String,
}

fn examples() -> Vec<Example> {
    let page = include_str!("../../docs/RULES.md");
    let section = page
        .split("## Weights")
        .nth(1)
        .expect("RULES.md has a Weights section");
    let rows: Vec<Example> = section
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| members"))
        .map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            let [members, ballots, rule, counts, people, result] = cells[..] else {
                panic!("a row of six cells: {line}");
            };
            let members = members
                .split_whitespace()
                .map(|m| {
                    let (name, rest) = m.split_once(':').expect("name:weight");
                    let mut parts = rest.split('/');
                    let weight = parts.next().expect("weight").parse().expect("weight");
                    (name.to_owned(), weight, parts.map(str::to_owned).collect())
                })
                .collect();
            let ballots = ballots
                .split_whitespace()
                .map(|b| {
                    let (name, cast) = b.split_once(':').expect("name:ballot");
                    let ballot = match cast.parse::<i64>() {
                        Ok(grade) => json!({ "grade": grade }),
                        Err(_) => json!({ "choice": cast }),
                    };
                    (name.to_owned(), ballot)
                })
                .collect();
            let rule = serde_json::from_str(rule.trim_matches('`')).expect("rule JSON");
            let counts: Vec<u64> = counts
                .split('/')
                .map(|n| n.trim().parse().expect("count"))
                .collect();
            Example {
                members,
                ballots,
                rule,
                counts: [counts[0], counts[1], counts[2]],
                people: people.parse().expect("ballots"),
                result: result.to_owned(),
            }
        })
        .collect();
    assert!(rows.len() >= 10, "the table was read: {} rows", rows.len());
    rows
}

async fn register(api: &Api, members: &[(String, u64, Vec<String>)]) -> Vec<Value> {
    let voters: Vec<Value> = members
        .iter()
        .map(|(name, weight, groups)| json!({"name": name, "weight": weight, "groups": groups}))
        .collect();
    let (status, roll) = api
        .admin("/api/voters", Some(json!({ "voters": voters })))
        .await;
    assert_eq!(status, 201, "{roll}");
    roll.as_array().expect("roll").clone()
}

#[tokio::test]
async fn every_weighed_example_of_rules_md_holds() {
    for example in examples() {
        // A hub per row: inertia's W is the whole roll's weight.
        let hub = InProcess::start(|_| {}).await;
        let api = hub.api();
        let roll = register(&api, &example.members).await;
        let code = |name: &str| {
            roll.iter()
                .find(|v| v["name"] == name)
                .and_then(|v| v["code"].as_str())
                .expect("code")
                .to_owned()
        };
        let nuanced = example
            .ballots
            .iter()
            .any(|(_, b)| b.get("grade").is_some());
        let mut spec = json!({"title": "Example", "electorate": "roll", "rule": example.rule});
        if nuanced {
            spec["scale"] = json!("nuanced");
        }
        let id = api.create(spec).await["id"]
            .as_str()
            .expect("id")
            .to_owned();
        for (name, ballot) in &example.ballots {
            let mut body = ballot.clone();
            body["voter"] = json!(code(name));
            let (status, answer) = api.ballot(&id, body).await;
            assert_eq!(status, 200, "{example:?}: {answer}");
        }
        let (status, closed) = api.admin(&format!("/api/sessions/{id}/close"), None).await;
        assert_eq!(status, 200, "{closed}");
        let t = &closed["tally"];
        assert_eq!(
            [&t["for"], &t["against"], &t["abstain"], &t["ballots"]],
            [
                &json!(example.counts[0]),
                &json!(example.counts[1]),
                &json!(example.counts[2]),
                &json!(example.people)
            ],
            "{example:?}"
        );
        assert_eq!(closed["result"], example.result.as_str(), "{example:?}");
        hub.stop().await;
    }
}

#[tokio::test]
async fn a_ballot_counts_with_the_weight_it_was_cast_with() {
    let hub = InProcess::start(|_| {}).await;
    let api = hub.api();
    let roll = register(
        &api,
        &[("Ann".into(), 5, vec![]), ("Bob".into(), 2, vec![])],
    )
    .await;
    let ann = roll[0]["code"].as_str().expect("code").to_owned();
    let bob = roll[1]["code"].as_str().expect("code").to_owned();
    let id = api
        .create(json!({"title": "Budget", "electorate": "roll"}))
        .await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(
        api.ballot(&id, json!({"voter": ann, "choice": "for"}))
            .await
            .0,
        200
    );
    // Ann's shares change during the vote: her ballot keeps its weight.
    let (status, edited) = api
        .send(
            "PATCH",
            &format!("/api/voters/{ann}"),
            Some(json!({"weight": 1})),
            Some(TOKEN),
        )
        .await;
    assert_eq!((status, &edited["weight"]), (200, &json!(1)));
    let (_, receipt) = api
        .ballot(&id, json!({"voter": bob, "choice": "against"}))
        .await;
    assert_eq!(
        receipt["tally"],
        json!({"for": 5, "against": 2, "abstain": 0, "total": 7, "ballots": 2})
    );
    // A new ballot of hers counts with her weight now.
    let (_, receipt) = api
        .ballot(&id, json!({"voter": ann, "choice": "abstain"}))
        .await;
    assert_eq!(
        receipt["tally"],
        json!({"for": 0, "against": 2, "abstain": 1, "total": 3, "ballots": 2})
    );
    // And every count on /live is a weight, beside the people.
    let s = api.session(&id).await;
    assert_eq!(
        (&s["tally"]["total"], &s["tally"]["ballots"]),
        (&json!(3), &json!(2))
    );
    hub.stop().await;
}

#[tokio::test]
async fn weights_out_of_bounds_are_refused_and_change_nothing() {
    let hub = InProcess::start(|_| {}).await;
    let api = hub.api();
    let roll = register(&api, &[("Ann".into(), 3, vec![])]).await;
    let ann = roll[0]["code"].as_str().expect("code").to_owned();
    for weight in [
        json!(0),
        json!(-1),
        json!(2.5),
        json!(1_000_001),
        json!("3"),
    ] {
        let (status, answer) = api
            .admin(
                "/api/voters",
                Some(json!({"voters": [{"name": "Bob", "weight": weight}]})),
            )
            .await;
        assert_eq!(
            (status, &answer["code"]),
            (400, &json!("invalid_voters")),
            "{weight}"
        );
        let (status, answer) = api
            .send(
                "PATCH",
                &format!("/api/voters/{ann}"),
                Some(json!({ "weight": weight })),
                Some(TOKEN),
            )
            .await;
        assert_eq!(
            (status, &answer["code"]),
            (400, &json!("invalid_voters")),
            "{weight}"
        );
    }
    // A whole batch with one bad weight: no one of it is registered.
    let (status, _) = api
        .admin(
            "/api/voters",
            Some(json!({"voters": [{"name": "Cy", "weight": 2}, {"name": "Dee", "weight": 0}]})),
        )
        .await;
    assert_eq!(status, 400);
    let (_, now) = api.send("GET", "/api/voters", None, Some(TOKEN)).await;
    assert_eq!(now.as_array().map(Vec::len), Some(1));
    assert_eq!(now[0]["weight"], 3);
    // The largest weight is taken.
    let (status, _) = api
        .admin(
            "/api/voters",
            Some(json!({"voters": [{"name": "Eve", "weight": 1_000_000}]})),
        )
        .await;
    assert_eq!(status, 201);
    hub.stop().await;
}
