//! PROTOCOL.md §2 against the real binary: every call, its answers and
//! its errors, and that a refused request changes nothing.

mod common;

use common::{HubProcess, TOKEN, csv_ballots};
use serde_json::{Value, json};

fn assert_error(status: u16, body: &Value, want_status: u16, want_code: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["code"], want_code, "{body}");
    assert!(
        body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{body}"
    );
}

#[tokio::test]
async fn health_and_sessions() {
    let hub = HubProcess::start();
    let api = hub.api();
    let (status, health) = api.get("/health").await;
    assert_eq!(status, 200);
    assert_eq!(health["status"], "ok");
    assert!(health["version"].is_string());

    let (status, list) = api.get("/api/sessions").await;
    assert_eq!((status, list), (200, json!([])));

    let first = api
        .create(json!({"title": "Budget 2027", "description": "Vote the budget"}))
        .await;
    assert_eq!(first["title"], "Budget 2027");
    assert_eq!(first["description"], "Vote the budget");
    assert_eq!(first["status"], "open");
    assert_eq!(first["rule"], json!({"kind": "majority"}));
    assert_eq!(first["electorate"], "open");
    assert_eq!(
        first["tally"],
        json!({"for": 0, "against": 0, "abstain": 0, "total": 0, "ballots": 0})
    );
    assert_eq!(first["seq"], 0);
    assert_eq!(first["subscribers"], 0);
    assert_eq!(first["result"], Value::Null);
    assert_eq!(first["closed_at"], Value::Null);
    assert!(
        first["created_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    let second = api.create(json!({"title": "Statutes"})).await;

    let (_, list) = api.get("/api/sessions").await;
    let titles: Vec<&str> = list
        .as_array()
        .expect("list")
        .iter()
        .map(|s| s["title"].as_str().expect("title"))
        .collect();
    assert_eq!(titles, ["Statutes", "Budget 2027"], "newest first");

    let id = second["id"].as_str().expect("id");
    assert_eq!(api.session(id).await["title"], "Statutes");
    let (status, body) = api
        .get("/api/sessions/6f1c1f5e-8a43-4c4e-9a51-3d0f5f9f2a10")
        .await;
    assert_error(status, &body, 404, "session_not_found");
    let (status, body) = api.get("/api/sessions/not-a-uuid").await;
    assert_error(status, &body, 404, "session_not_found");
}

#[tokio::test]
async fn admin_calls_need_the_token() {
    let hub = HubProcess::start();
    let api = hub.api();
    let id = api.create_titled("Guarded").await;
    let calls = [
        (
            "POST",
            "/api/sessions".to_owned(),
            Some(json!({"title": "x"})),
        ),
        ("POST", format!("/api/sessions/{id}/close"), None),
        ("POST", format!("/api/sessions/{id}/broadcast"), None),
        (
            "POST",
            "/api/voters".to_owned(),
            Some(json!({"names": ["Ann"]})),
        ),
        ("GET", "/api/voters".to_owned(), None),
        ("GET", format!("/api/sessions/{id}/export.csv"), None),
    ];
    for (method, path, body) in calls {
        let (status, reply) = api.send(method, &path, body.clone(), None).await;
        assert_error(status, &reply, 401, "admin_token_required");
        let (status, reply) = api.send(method, &path, body.clone(), Some("wrong")).await;
        assert_error(status, &reply, 403, "admin_token_invalid");
    }
    // Nothing of it happened.
    let (_, list) = api.get("/api/sessions").await;
    assert_eq!(list.as_array().expect("list").len(), 1);
    assert_eq!(api.session(&id).await["status"], "open");
    let (_, roll) = api.send("GET", "/api/voters", None, Some(TOKEN)).await;
    assert_eq!(roll, json!([]));
}

#[tokio::test]
async fn bad_session_bodies_are_refused_plainly() {
    let hub = HubProcess::start();
    let api = hub.api();
    let bad = [
        (json!({}), "invalid_body"),
        (json!({"title": ""}), "invalid_session"),
        (json!({"title": "   "}), "invalid_session"),
        (json!({"title": "x".repeat(201)}), "invalid_session"),
        (json!({"title": 5}), "invalid_body"),
        (json!({"title": "t", "electorat": "roll"}), "invalid_body"),
        (
            json!({"title": "t", "electorate": "everyone"}),
            "invalid_body",
        ),
        (
            json!({"title": "t", "rule": {"kind": "dictator"}}),
            "invalid_rule",
        ),
        (
            json!({"title": "t", "rule": {"kind": "supermajority", "ratio": 0.4}}),
            "invalid_rule",
        ),
        (
            json!({"title": "t", "rule": {"kind": "majority", "ration": 0.7}}),
            "invalid_body",
        ),
        (
            json!({"title": "t", "rule": {"kind": "inertia"}}),
            "invalid_rule",
        ),
    ];
    for (body, code) in bad {
        let (status, reply) = api.admin("/api/sessions", Some(body.clone())).await;
        assert_error(status, &reply, 400, code);
    }
    let (status, reply) = api.send("POST", "/api/sessions", None, Some(TOKEN)).await;
    assert_error(status, &reply, 400, "invalid_body");
    let huge = json!({"title": "t", "description": "d".repeat(100_000)});
    let (status, reply) = api.admin("/api/sessions", Some(huge)).await;
    assert_error(status, &reply, 413, "body_too_large");
    let (_, list) = api.get("/api/sessions").await;
    assert_eq!(list, json!([]), "no refused request created anything");
}

#[tokio::test]
async fn ballots_one_per_voter_and_every_refusal() {
    let hub = HubProcess::start();
    let api = hub.api();
    let id = api.create_titled("Ballots").await;

    let (status, receipt) = api.vote(&id, "ann", "for").await;
    assert_eq!(status, 200);
    assert_eq!(
        (&receipt["tally"], &receipt["seq"]),
        (
            &json!({"for": 1, "against": 0, "abstain": 0, "total": 1, "ballots": 1}),
            &json!(1)
        )
    );
    // Its leaf in the log (after the session's creation and opening), and
    // the head signed in the commit that recorded it (§7).
    assert_eq!(
        (
            &receipt["receipt"]["index"],
            &receipt["receipt"]["head"]["size"]
        ),
        (&json!(2), &json!(3))
    );
    let (_, receipt) = api.vote(&id, "bob", "abstain").await;
    assert_eq!(receipt["tally"]["total"], 2);
    // Ann changes her mind: replaced, not added.
    let (_, receipt) = api.vote(&id, "ann", "against").await;
    assert_eq!(
        (&receipt["tally"], &receipt["seq"]),
        (
            &json!({"for": 0, "against": 1, "abstain": 1, "total": 2, "ballots": 2}),
            &json!(3)
        )
    );
    // A re-vote is a new leaf: the log keeps every ballot.
    assert_eq!(receipt["receipt"]["index"], 4);

    let path = format!("/api/sessions/{id}/votes");
    let bad = [
        json!({"voter": "cat", "choice": "maybe"}),
        json!({"voter": "cat", "choice": 1}),
        json!({"voter": "cat"}),
        json!({"voter": "", "choice": "for"}),
        json!({"voter": "x".repeat(129), "choice": "for"}),
        json!({"voter": 7, "choice": "for"}),
        json!({"choice": "for"}),
        json!({"voter": "cat", "choice": "for", "grade": 2}),
        json!({"voter": "cat", "grade": 2}),
        json!([1, 2]),
    ];
    for body in bad {
        let (status, reply) = api.send("POST", &path, Some(body.clone()), None).await;
        assert_eq!(status, 400, "{body} → {reply}");
        assert!(
            ["invalid_ballot", "invalid_body"].contains(&reply["code"].as_str().expect("code"))
        );
    }
    let (status, reply) = api.send("POST", &path, None, None).await;
    assert_error(status, &reply, 400, "invalid_body");
    let (status, reply) = api
        .vote("6f1c1f5e-8a43-4c4e-9a51-3d0f5f9f2a10", "ann", "for")
        .await;
    assert_error(status, &reply, 404, "session_not_found");

    // None of the refusals changed anything.
    let session = api.session(&id).await;
    assert_eq!(
        session["tally"],
        json!({"for": 0, "against": 1, "abstain": 1, "total": 2, "ballots": 2})
    );
    assert_eq!(session["seq"], 3);

    let (status, closed) = api.admin(&format!("/api/sessions/{id}/close"), None).await;
    assert_eq!(status, 200);
    assert_eq!(closed["result"], "rejected");
    assert_eq!(closed["tally"]["total"], 2);
    let (status, reply) = api.vote(&id, "cat", "for").await;
    assert_error(status, &reply, 409, "session_closed");
    let (status, reply) = api.vote(&id, "ann", "for").await;
    assert_error(status, &reply, 409, "session_closed");

    let session = api.session(&id).await;
    assert_eq!(session["status"], "closed");
    assert_eq!(session["result"], "rejected");
    assert!(session["closed_at"].is_string());
    assert_eq!(session["seq"], 4);

    // Closing again: the stored result, no new change.
    let (status, again) = api.admin(&format!("/api/sessions/{id}/close"), None).await;
    assert_eq!(status, 200);
    assert_eq!(again["result"], closed["result"]);
    assert_eq!(again["tally"], closed["tally"]);
    assert_eq!(api.session(&id).await["seq"], 4);

    let csv = api.csv(&id).await;
    assert!(csv.starts_with(&format!("session,{id}\ntitle,Ballots\nstatus,closed\nresult,rejected\nfor,0\nagainst,1\nabstain,1\ntotal,2\nballots,2\n\nvoter,choice,time\n")), "{csv}");
    let rows = csv_ballots(&csv);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows["ann"], "against");
    assert_eq!(rows["bob"], "abstain");
}

#[tokio::test]
async fn supermajority_and_quorum_decide_at_close() {
    let hub = HubProcess::start();
    let api = hub.api();
    let s = api
        .create(json!({"title": "Statutes", "rule": {"kind": "supermajority", "ratio": 0.6666666666666666, "quorum": 4}}))
        .await;
    let id = s["id"].as_str().expect("id");
    assert_eq!(s["rule"]["kind"], "supermajority");
    for (voter, choice) in [("a", "for"), ("b", "for"), ("c", "against")] {
        assert_eq!(api.vote(id, voter, choice).await.0, 200);
    }
    // 2 of 3 reach two thirds, but 3 ballots miss the quorum of 4.
    let s = api.session(id).await;
    assert_eq!(s["needed"], 2);
    assert_eq!(s["adopted_if_closed_now"], false);
    api.vote(id, "d", "abstain").await;
    assert_eq!(api.session(id).await["adopted_if_closed_now"], true);
    let (_, closed) = api.admin(&format!("/api/sessions/{id}/close"), None).await;
    assert_eq!(closed["result"], "adopted");
}

#[tokio::test]
async fn the_roll_issues_codes_and_only_they_vote() {
    let hub = HubProcess::start();
    let api = hub.api();
    let (status, issued) = api
        .admin(
            "/api/voters",
            Some(json!({"names": ["Ann Martin", "Bob Durand"]})),
        )
        .await;
    assert_eq!(status, 201);
    let issued = issued.as_array().expect("list").clone();
    assert_eq!(issued.len(), 2);
    assert_eq!(issued[0]["name"], "Ann Martin");
    let ann = issued[0]["code"].as_str().expect("code").to_owned();
    let bob = issued[1]["code"].as_str().expect("code").to_owned();
    assert_ne!(ann, bob);
    assert_eq!(ann.len(), 9);

    // Registering a name again returns its code, not a second one.
    let (_, again) = api
        .admin("/api/voters", Some(json!({"names": ["Ann Martin"]})))
        .await;
    assert_eq!(again[0]["code"], ann.as_str());
    let (_, roll) = api.send("GET", "/api/voters", None, Some(TOKEN)).await;
    assert_eq!(roll.as_array().expect("roll").len(), 2);

    for body in [
        json!({"names": []}),
        json!({"names": [""]}),
        json!({"names": "Ann"}),
        json!({}),
    ] {
        let (status, reply) = api.admin("/api/voters", Some(body)).await;
        assert_eq!(status, 400, "{reply}");
    }

    let id = api
        .create(json!({"title": "Members only", "electorate": "roll"}))
        .await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let (status, reply) = api.vote(&id, "random-browser-id", "for").await;
    assert_error(status, &reply, 403, "voter_not_on_roll");
    let (status, reply) = api.vote(&id, "AAAA-AAAA", "for").await;
    assert_error(status, &reply, 403, "voter_not_on_roll");
    assert_eq!(api.vote(&id, &ann, "for").await.0, 200);
    // Typed loosely: lower case, no dash — the same voter, replaced.
    let loose = bob.replace('-', " ").to_lowercase();
    assert_eq!(api.vote(&id, &loose, "against").await.0, 200);
    let (status, receipt) = api.vote(&id, &bob, "for").await;
    assert_eq!(status, 200);
    assert_eq!(
        receipt["tally"],
        json!({"for": 2, "against": 0, "abstain": 0, "total": 2, "ballots": 2})
    );
    let csv = api.csv(&id).await;
    let rows = csv_ballots(&csv);
    assert_eq!(rows.len(), 2);
    // The export names members; a code is a credential and never leaves.
    assert_eq!(rows["Bob Durand"], "for");
    assert!(!csv.contains(&bob) && !csv.contains(&ann), "{csv}");
}

#[tokio::test]
async fn csv_cells_cannot_become_spreadsheet_formulas() {
    let hub = HubProcess::start();
    let api = hub.api();
    let id = api.create_titled("=cmd|' /C calc'!A0").await;
    api.vote(&id, "=HYPERLINK(\"http://x\")", "for").await;
    let csv = api.csv(&id).await;
    assert!(csv.contains("title,'=cmd"), "{csv}");
    assert!(csv.contains("\"'=HYPERLINK("), "{csv}");
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let hub = HubProcess::start();
    let api = hub.api();
    let (status, body) = api.get("/api/nothing").await;
    assert_error(status, &body, 404, "not_found");
    let (status, body) = api.send("DELETE", "/api/sessions", None, Some(TOKEN)).await;
    assert_error(status, &body, 405, "method_not_allowed");
}

#[tokio::test]
async fn pages_join_info_and_codes() {
    let hub = HubProcess::start();
    let api = hub.api();
    for (path, kind) in [
        ("/", "text/html"),
        ("/screen", "text/html"),
        ("/assets/participant.js", "text/javascript"),
        ("/assets/style.css", "text/css"),
    ] {
        let resp = api
            .client
            .get(format!("{}{path}", api.base))
            .send()
            .await
            .expect("get");
        assert_eq!(resp.status(), 200, "{path}");
        let ct = resp.headers()["content-type"]
            .to_str()
            .expect("ct")
            .to_owned();
        assert!(ct.starts_with(kind), "{path}: {ct}");
        assert!(!resp.text().await.expect("body").is_empty());
    }
    let (status, body) = api.get("/assets/../Cargo.toml").await;
    assert_eq!(status, 404, "{body}");

    let (status, info) = api.get("/api/info").await;
    assert_eq!(status, 200);
    assert_eq!(info["join_urls"], json!([format!("http://{}/", hub.addr)]));
    assert_eq!(info["roll_size"], 0);

    let resp = api
        .client
        .get(format!("{}/qr.svg?data=http://192.0.2.1:8765/", api.base))
        .send()
        .await
        .expect("qr");
    assert_eq!(resp.headers()["content-type"], "image/svg+xml");
    assert!(resp.text().await.expect("svg").starts_with("<?xml"));
    let (status, body) = api.get(&format!("/qr.svg?data={}", "x".repeat(300))).await;
    assert_error(status, &body, 400, "invalid_qr");

    let (_, roll) = api
        .admin("/api/voters", Some(json!({"names": ["Ann"]})))
        .await;
    let code = roll[0]["code"].as_str().expect("code");
    let (status, entry) = api
        .get(&format!("/api/voters/{}", code.to_lowercase()))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        (entry["name"].as_str(), entry["code"].as_str()),
        (Some("Ann"), Some(code))
    );
    let (status, body) = api.get("/api/voters/ZZZZ-ZZZZ").await;
    assert_error(status, &body, 404, "voter_not_on_roll");
    let (_, info) = api.get("/api/info").await;
    assert_eq!(info["roll_size"], 1);
}

/// Changes of mind are not ballots of their own, but each is a log entry
/// kept for good: a voter changing their mind without end meets a limit
/// (the log at twice the ballots a session takes), refused plainly; what
/// was recorded stays, and others' first ballots still count.
#[tokio::test]
async fn endless_changes_of_mind_meet_the_log_limit() {
    let limits = votehub::Limits {
        max_ballots_per_session: 2,
        ..votehub::Limits::default()
    };
    let hub = common::InProcess::start_limited(limits).await;
    let api = hub.api();
    let id = api.create_titled("Budget").await;
    // The log holds its creation and opening: two changes of mind fit.
    assert_eq!(api.vote(&id, "ann", "for").await.0, 200);
    assert_eq!(api.vote(&id, "ann", "against").await.0, 200);
    let (status, body) = api.vote(&id, "ann", "for").await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["code"], "limit_reached");
    // Her changes of mind never lock anyone else out.
    assert_eq!(api.vote(&id, "bob", "for").await.0, 200);
    let s = api.session(&id).await;
    assert_eq!(
        (s["tally"]["for"].as_u64(), s["tally"]["against"].as_u64()),
        (Some(1), Some(1))
    );
}
