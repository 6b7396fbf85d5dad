//! Proxies, attendance and lost cards through the real binary: the cap and
//! the refusals (each changing nothing), a holder voting for three people
//! at once, each mandate its own durable ballot with the giver's weight,
//! `kill -9` in the middle of a stream of proxy ballots, check-in counts,
//! the quorum of those present met and missed, the register of who voted,
//! and a reissued code.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use common::{Api, HubProcess, Live, TOKEN, csv_rows};
use serde_json::{Value, json};
use tokio::sync::Mutex;

async fn roll(api: &Api) -> Value {
    api.send("GET", "/api/voters", None, Some(TOKEN)).await.1
}

async fn roll_session(api: &Api, rule: Value) -> String {
    api.create(json!({"title": "On the roll", "electorate": "roll", "rule": rule}))
        .await["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

fn assert_code(answer: &(u16, Value), status: u16, code: &str) {
    assert_eq!(
        (answer.0, answer.1["code"].as_str()),
        (status, Some(code)),
        "{}",
        answer.1
    );
    assert!(
        answer.1["error"].as_str().is_some_and(|e| !e.is_empty()),
        "a refusal says why: {}",
        answer.1
    );
}

#[tokio::test]
async fn proxies_are_capped_never_chained_and_revocable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hub = HubProcess::start_with(dir.path(), &["--max-proxies", "2"], "info");
    let api = hub.api();
    let c = api.register(
        json!([{"name": "Ann"}, {"name": "Bob"}, {"name": "Cy"}, {"name": "Dee"}, {"name": "Eve"}]),
    )
    .await;
    let give = |from: &str, to: &str| {
        let api = api.clone();
        let body = json!({"from": c[from], "to": c[to]});
        async move { api.admin("/api/proxies", Some(body)).await }
    };
    let (status, giver) = give("Bob", "Ann").await;
    assert_eq!((status, &giver["proxy_to"]), (201, &json!(c["Ann"])));
    assert_eq!(give("Cy", "Ann").await.0, 201);
    let before = roll(&api).await;
    // Every refusal says why, and changes nothing.
    assert_code(&give("Dee", "Ann").await, 409, "proxy_refused"); // over the cap
    assert_code(&give("Ann", "Eve").await, 409, "proxy_refused"); // the giver holds proxies
    assert_code(&give("Eve", "Bob").await, 409, "proxy_refused"); // the holder gave theirs
    assert_code(&give("Eve", "Eve").await, 409, "proxy_refused"); // to oneself
    let unknown = api
        .admin(
            "/api/proxies",
            Some(json!({"from": c["Eve"], "to": "ZZZZ-ZZZZ"})),
        )
        .await;
    assert_code(&unknown, 404, "voter_not_on_roll");
    let bad = api
        .admin("/api/proxies", Some(json!({"from": c["Eve"]})))
        .await;
    assert_eq!(bad.0, 400);
    assert_eq!(roll(&api).await, before);
    let (_, listed) = api.send("GET", "/api/proxies", None, Some(TOKEN)).await;
    let mut pairs: Vec<(String, String)> = listed
        .as_array()
        .expect("list")
        .iter()
        .map(|p| {
            (
                p["from_name"].as_str().unwrap_or("").into(),
                p["to_name"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    pairs.sort();
    assert_eq!(
        pairs,
        [("Bob".into(), "Ann".into()), ("Cy".into(), "Ann".into())]
    );
    let ann = before
        .as_array()
        .and_then(|r| r.iter().find(|v| v["name"] == "Ann"))
        .expect("Ann")
        .clone();
    let mut held: Vec<&str> = ann["proxies"]
        .as_array()
        .expect("proxies")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    held.sort_unstable();
    let mut expected = [c["Bob"].as_str(), c["Cy"].as_str()];
    expected.sort_unstable();
    assert_eq!(held, expected);
    // Taken back: Dee may now give hers to Ann.
    let (status, _) = api
        .send(
            "DELETE",
            &format!("/api/proxies/{}", c["Cy"]),
            None,
            Some(TOKEN),
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(give("Dee", "Ann").await.0, 201);
}

#[tokio::test]
async fn a_holder_votes_for_three_at_once_each_with_its_weight() {
    let hub = HubProcess::start();
    let api = hub.api();
    let c = api
        .register(
            json!([{"name": "Ann", "weight": 2}, {"name": "Bob", "weight": 3},
               {"name": "Cy", "weight": 5}, {"name": "Dee"}]),
        )
        .await;
    for giver in ["Bob", "Cy"] {
        let (status, _) = api
            .admin(
                "/api/proxies",
                Some(json!({"from": c[giver], "to": c["Ann"]})),
            )
            .await;
        assert_eq!(status, 201);
    }
    // The holder's page learns whom she votes for, by name only.
    let (_, me) = api.get(&format!("/api/voters/{}", c["Ann"])).await;
    assert_eq!(
        me["mandates"],
        json!([{"name": "Bob", "weight": 3}, {"name": "Cy", "weight": 5}])
    );
    let (_, bob) = api.get(&format!("/api/voters/{}", c["Bob"])).await;
    assert_eq!(bob["represented_by"], "Ann");
    let id = roll_session(&api, json!({"kind": "majority"})).await;
    // One tap: three ballots at once.
    let sends = [None, Some("Bob"), Some("Cy")].map(|giver| {
        let api = api.clone();
        let mut body = json!({"voter": c["Ann"], "choice": "for"});
        if let Some(g) = giver {
            body["on_behalf_of"] = json!(g);
            body["ballot_id"] = json!(format!("ann-for-{g}"));
        }
        let id = id.clone();
        tokio::spawn(async move { api.ballot(&id, body).await })
    });
    let mut answers = Vec::new();
    for send in sends {
        let (status, answer) = send.await.expect("send");
        assert_eq!(status, 200, "{answer}");
        answers.push(answer);
    }
    let s = api.session(&id).await;
    assert_eq!(
        s["tally"],
        json!({"for": 10, "against": 0, "abstain": 0, "total": 10, "ballots": 3})
    );
    // Bob's proxy is given: he cannot vote himself; Dee holds no proxy.
    assert_code(
        &api.ballot(&id, json!({"voter": c["Bob"], "choice": "against"}))
            .await,
        403,
        "voter_represented",
    );
    assert_code(
        &api.ballot(
            &id,
            json!({"voter": c["Dee"], "choice": "against", "on_behalf_of": c["Bob"]}),
        )
        .await,
        403,
        "not_a_proxy",
    );
    // Each mandate is its own ballot, named, with who cast it.
    let csv = api.csv(&id).await;
    let rows = csv_rows(&csv);
    assert_eq!(rows.len(), 3);
    assert_eq!(
        (
            rows["Bob"]["weight"].as_str(),
            rows["Bob"]["by_proxy"].as_str()
        ),
        ("3", "Ann")
    );
    assert_eq!(
        (
            rows["Ann"]["weight"].as_str(),
            rows["Ann"]["by_proxy"].as_str()
        ),
        ("2", "")
    );
    assert!(
        !c.values().any(|code| csv.contains(code.as_str())),
        "no code in an export: {csv}"
    );
    // Revoking a proxy changes no ballot already cast.
    let (status, _) = api
        .send(
            "DELETE",
            &format!("/api/proxies/{}", c["Cy"]),
            None,
            Some(TOKEN),
        )
        .await;
    assert_eq!(status, 204);
    // A retry of the ballot Ann cast for Cy is still answered as the first.
    let retry = json!({"voter": c["Ann"], "choice": "for", "on_behalf_of": "Cy", "ballot_id": "ann-for-Cy"});
    let (status, again) = api.ballot(&id, retry).await;
    assert_eq!((status, &again), (200, &answers[2]));
    assert_eq!(api.session(&id).await["tally"]["for"], 10);
    // Cy votes himself now; his ballot replaces the one Ann cast for him.
    let (status, answer) = api
        .ballot(&id, json!({"voter": c["Cy"], "choice": "against"}))
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["tally"]["for"], 5);
    assert_eq!(answer["tally"]["against"], 5);
    // The register: who voted, sorted by name, never what.
    let (status, voted) = api
        .send(
            "GET",
            &format!("/api/sessions/{id}/voted"),
            None,
            Some(TOKEN),
        )
        .await;
    assert_eq!((status, voted), (200, json!(["Ann", "Bob", "Cy"])));
    let (status, _) = api.get(&format!("/api/sessions/{id}/voted")).await;
    assert_eq!(status, 401, "the register is for moderators");
}

#[tokio::test]
async fn kill_9_mid_stream_loses_no_acknowledged_proxy_ballot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut hub = HubProcess::start_in(dir.path());
    let api = hub.api();
    let holders = 24;
    let mut voters = Vec::new();
    for h in 0..holders {
        voters.push(json!({"name": format!("h{h}"), "weight": 1}));
        voters.push(json!({"name": format!("h{h}-a"), "weight": 2}));
        voters.push(json!({"name": format!("h{h}-b"), "weight": 3}));
    }
    let c = api.register(json!(voters)).await;
    for h in 0..holders {
        for m in ["a", "b"] {
            let body = json!({"from": c[&format!("h{h}-{m}")], "to": c[&format!("h{h}")]});
            assert_eq!(api.admin("/api/proxies", Some(body)).await.0, 201);
        }
    }
    let mut sessions = Vec::new();
    for _ in 0..40 {
        sessions.push(roll_session(&api, json!({"kind": "majority"})).await);
    }
    // (session, member) → choice, for every ballot answered 200.
    let acked: Arc<Mutex<Vec<(String, String, String)>>> = Arc::default();
    let mut tasks = Vec::new();
    for h in 0..holders {
        let (api, sessions, acked) = (api.clone(), sessions.clone(), acked.clone());
        let holder = c[&format!("h{h}")].clone();
        tasks.push(tokio::spawn(async move {
            for (i, id) in sessions.iter().enumerate() {
                for giver in [None, Some(format!("h{h}-a")), Some(format!("h{h}-b"))] {
                    let choice = if (i + h) % 3 == 0 { "against" } else { "for" };
                    let mut body = json!({"voter": holder, "choice": choice});
                    if let Some(g) = &giver {
                        body["on_behalf_of"] = json!(g);
                    }
                    let sent = api
                        .client
                        .post(format!("{}/api/sessions/{id}/votes", api.base))
                        .body(body.to_string())
                        .send()
                        .await;
                    let Ok(resp) = sent else { return };
                    if resp.status() != 200 || resp.text().await.is_err() {
                        return;
                    }
                    let member = giver.unwrap_or_else(|| format!("h{h}"));
                    acked
                        .lock()
                        .await
                        .push((id.clone(), member, choice.to_owned()));
                }
            }
        }));
    }
    for _ in 0..400 {
        tokio::time::sleep(Duration::from_millis(25)).await;
        if acked.lock().await.len() >= 600 {
            break;
        }
    }
    hub.kill9();
    for t in tasks {
        t.await.expect("holder");
    }
    let acked = acked.lock().await.clone();
    assert!(
        acked.len() >= 600,
        "only {} ballots before the kill",
        acked.len()
    );

    let hub = HubProcess::start_in(dir.path());
    let api = hub.api();
    let mut exports = HashMap::new();
    for id in &sessions {
        exports.insert(id.clone(), csv_rows(&api.csv(id).await));
    }
    for (id, member, choice) in &acked {
        let row = exports[id]
            .get(member)
            .unwrap_or_else(|| panic!("acknowledged ballot of {member} in {id} lost"));
        assert_eq!(row["choice"], *choice);
        let by_proxy = if member.contains('-') {
            member.split('-').next().unwrap_or_default()
        } else {
            ""
        };
        assert_eq!(row["by_proxy"], by_proxy, "{member}");
        let weight = if member.ends_with("-a") {
            "2"
        } else if member.ends_with("-b") {
            "3"
        } else {
            "1"
        };
        assert_eq!(row["weight"], weight, "{member}: the giver's weight");
    }
    // Every holder whose ballot was acknowledged is present after the
    // restart (a ballot checks its caster in), and no giver is.
    let (_, now) = api.send("GET", "/api/voters", None, Some(TOKEN)).await;
    let present: HashMap<String, bool> = now
        .as_array()
        .expect("roll")
        .iter()
        .map(|v| {
            (
                v["name"].as_str().unwrap_or("").to_owned(),
                v["present"] == true,
            )
        })
        .collect();
    for (_, member, _) in &acked {
        let holder = member.split('-').next().unwrap_or_default();
        assert!(present[holder], "{holder} voted and is not present");
    }
    assert!(
        present
            .iter()
            .all(|(name, here)| !here || !name.contains('-')),
        "a giver is not present: their holder voted for them"
    );
    // The tally matches what is on disk exactly.
    for id in &sessions {
        let s = api.session(id).await;
        let rows = &exports[id];
        let weight: u64 = rows
            .values()
            .map(|r| r["weight"].parse::<u64>().expect("weight"))
            .sum();
        assert_eq!(s["tally"]["total"], weight);
        assert_eq!(s["tally"]["ballots"], rows.len() as u64);
    }
}

#[tokio::test]
async fn attendance_counts_people_and_weight_and_decides_the_quorum_of_those_present() {
    let hub = HubProcess::start();
    let api = hub.api();
    let c = api
        .register(
            json!([{"name": "Ann", "weight": 4}, {"name": "Bob", "weight": 3},
               {"name": "Cy", "weight": 2}, {"name": "Dee"}]),
        )
        .await;
    let attendance = |api: Api| async move { api.get("/api/attendance").await.1 };
    assert_eq!(
        attendance(api.clone()).await,
        json!({"present": 0, "represented": 0, "absent": 4, "weight_present": 0,
               "weight_represented": 0, "weight_total": 10})
    );
    let check = |code: &str, present: Value| {
        let api = api.clone();
        let body = json!({"code": code, "present": present});
        async move { api.admin("/api/attendance", Some(body)).await }
    };
    let (status, counts) = check(&c["Ann"], json!(true)).await;
    assert_eq!((status, &counts["present"]), (200, &json!(1)));
    assert_code(
        &check("ZZZZ-ZZZZ", json!(true)).await,
        404,
        "voter_not_on_roll",
    );
    assert_eq!(check(&c["Bob"], json!("yes")).await.0, 400);
    assert_eq!(
        api.admin("/api/attendance", Some(json!({"present": true})))
            .await
            .0,
        400
    );
    // Cy gives her proxy to Ann, who is present: Cy is represented.
    api.admin(
        "/api/proxies",
        Some(json!({"from": c["Cy"], "to": c["Ann"]})),
    )
    .await;
    let a = attendance(api.clone()).await;
    assert_eq!(
        (
            &a["present"],
            &a["represented"],
            &a["absent"],
            &a["weight_present"],
            &a["weight_represented"]
        ),
        (&json!(1), &json!(1), &json!(2), &json!(4), &json!(2))
    );
    // 60 % of the weight must be there at the close: 6 of 10 is.
    let id = roll_session(&api, json!({"kind": "majority", "quorum_present": 0.6})).await;
    let mut live = Live::connect(&hub.live_url()).await;
    live.subscribe(&id).await;
    let first = live.next_json().await;
    assert_eq!(first["adopted_if_closed_now"], false, "no ballot yet");
    assert_eq!(
        api.ballot(&id, json!({"voter": c["Ann"], "choice": "for"}))
            .await
            .0,
        200
    );
    let update = live.next_json().await;
    assert_eq!(update["adopted_if_closed_now"], true, "{update}");
    // Ann leaves: 0 of 10 there (Cy's holder gone too); the standing follows.
    assert_eq!(check(&c["Ann"], json!(false)).await.0, 200);
    let update = live.next_json().await;
    assert_eq!(
        (&update["adopted_if_closed_now"], &update["seq"]),
        (&json!(false), &first["seq"].as_u64().map(|s| s + 1).into()),
        "the same seq, sent again as the room changed: {update}"
    );
    let (_, closed) = api.admin(&format!("/api/sessions/{id}/close"), None).await;
    assert_eq!(
        closed["result"], "rejected",
        "quorum of those present missed"
    );
    // A ballot checks its voter in: Bob votes, and with Ann back 9 of 10
    // are there.
    let id = roll_session(&api, json!({"kind": "majority", "quorum_present": 0.6})).await;
    assert_eq!(check(&c["Ann"], json!(true)).await.0, 200);
    assert_eq!(
        api.ballot(&id, json!({"voter": c["Bob"], "choice": "for"}))
            .await
            .0,
        200
    );
    let a = attendance(api.clone()).await;
    assert_eq!(
        (&a["present"], &a["weight_present"]),
        (&json!(2), &json!(7))
    );
    let (_, closed) = api.admin(&format!("/api/sessions/{id}/close"), None).await;
    assert_eq!(closed["result"], "adopted", "quorum of those present met");
    // A new meeting begins with no one present.
    let (status, _) = api
        .admin("/api/meetings", Some(json!({"title": "Day two"})))
        .await;
    assert_eq!(status, 201);
    assert_eq!(attendance(api.clone()).await["present"], 0);
}

#[tokio::test]
async fn a_lost_card_is_reissued_and_the_old_code_stops_at_once() {
    let hub = HubProcess::start();
    let api = hub.api();
    let c = api
        .register(json!([{"name": "Ann", "weight": 2}, {"name": "Bob"}]))
        .await;
    let old = c["Ann"].clone();
    let id = roll_session(&api, json!({"kind": "majority"})).await;
    assert_eq!(
        api.ballot(&id, json!({"voter": old, "choice": "for"}))
            .await
            .0,
        200
    );
    let (status, reissued) = api.admin(&format!("/api/voters/{old}/reissue"), None).await;
    assert_eq!(status, 200, "{reissued}");
    let new = reissued["code"].as_str().expect("code").to_owned();
    assert_ne!(new, old);
    assert_eq!(
        (&reissued["name"], &reissued["weight"]),
        (&json!("Ann"), &json!(2))
    );
    assert_code(
        &api.get(&format!("/api/voters/{old}")).await,
        404,
        "voter_not_on_roll",
    );
    assert_code(
        &api.ballot(&id, json!({"voter": old, "choice": "against"}))
            .await,
        403,
        "voter_not_on_roll",
    );
    // Her ballot stays counted, and the new card is hers: it replaces it.
    assert_eq!(api.session(&id).await["tally"]["for"], 2);
    let (status, answer) = api
        .ballot(&id, json!({"voter": new, "choice": "against"}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        answer["tally"],
        json!({"for": 0, "against": 2, "abstain": 0, "total": 2, "ballots": 1})
    );
    // Edits: a name already on the roll is refused, and changes nothing.
    let (status, _) = api
        .send(
            "PATCH",
            &format!("/api/voters/{new}"),
            Some(json!({"name": "Bob"})),
            Some(TOKEN),
        )
        .await;
    assert_eq!(status, 400);
    let (status, edited) = api
        .send(
            "PATCH",
            &format!("/api/voters/{new}"),
            Some(json!({"name": "Ann Martin", "groups": ["smith"]})),
            Some(TOKEN),
        )
        .await;
    assert_eq!(
        (status, &edited["name"], &edited["groups"]),
        (200, &json!("Ann Martin"), &json!(["smith"]))
    );
    assert_code(
        &api.send(
            "PATCH",
            "/api/voters/ZZZZ-ZZZZ",
            Some(json!({"weight": 2})),
            Some(TOKEN),
        )
        .await,
        404,
        "voter_not_on_roll",
    );
}

#[tokio::test]
async fn a_roll_file_is_taken_whole_or_not_at_all() {
    let hub = HubProcess::start();
    let api = hub.api();
    let send = |text: &'static str| {
        let api = api.clone();
        async move {
            let resp = api
                .client
                .post(format!("{}/api/voters/import", api.base))
                .bearer_auth(TOKEN)
                .header("content-type", "text/csv")
                .body(text)
                .send()
                .await
                .expect("import");
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.expect("json"))
        }
    };
    let (status, refused) = send("name,groups,weight\nAnn,smith,3\nBob,,2\nCy,,zero\n").await;
    assert_eq!(status, 400);
    assert!(
        refused["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("line 4, field \"weight\"")),
        "{refused}"
    );
    assert_eq!(roll(&api).await, json!([]), "nothing of it was registered");
    let (status, taken) = send("name,groups,weight\nAnn,smith;council,3\nBob,,2\nCy,,\n").await;
    assert_eq!(status, 201, "{taken}");
    let weights: Vec<&Value> = taken
        .as_array()
        .expect("roll")
        .iter()
        .map(|v| &v["weight"])
        .collect();
    assert_eq!(weights, [&json!(3), &json!(2), &json!(1)]);
    assert_eq!(taken[0]["groups"], json!(["council", "smith"]));
}
