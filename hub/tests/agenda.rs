//! PROTOCOL.md §4 over HTTP: the agenda prepared in advance — drafts made,
//! edited, reordered, deleted, imported from a file, opened when the room
//! gets there — every bad input refused with nothing changed, the meeting
//! and its minutes.

mod common;

use common::{HubProcess, Live, TOKEN};
use serde_json::{Value, json};

fn assert_error(status: u16, body: &Value, want_status: u16, want_code: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["code"], want_code, "{body}");
    assert!(
        body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{body}"
    );
}

async fn draft(api: &common::Api, body: Value) -> Value {
    let mut body = body;
    body["status"] = json!("draft");
    api.create(body).await
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|s| s["id"].as_str().expect("id").to_owned())
        .collect()
}

#[tokio::test]
async fn a_day_prepared_in_advance_then_run() {
    let hub = HubProcess::start();
    let api = hub.api();
    let mut lobby = Live::connect(&hub.live_url()).await;
    lobby
        .send_json(
            json!({"action": "subscribe", "session_id": "00000000-0000-0000-0000-000000000000"}),
        )
        .await;
    assert_eq!(lobby.next_json().await["event"], "subscribed");
    assert_eq!(lobby.next_json().await["event"], "sessions_changed");

    let a = draft(&api, json!({"title": "Minutes of the last meeting"})).await;
    let b = draft(&api, json!({"title": "Budget", "duration_s": 120})).await;
    let c = draft(
        &api,
        json!({"title": "Board", "kind": "election", "options": ["Ann", "Bob", "Cy"], "seats": 2}),
    )
    .await;
    for s in [&a, &b, &c] {
        assert_eq!(s["status"], "draft");
        assert_eq!(s["seq"], 0);
        assert!(s["opened_at"].is_null() && s["closes_at"].is_null());
        assert_eq!(lobby.next_json().await["event"], "sessions_changed");
    }
    assert_eq!(
        (&a["position"], &b["position"], &c["position"]),
        (&json!(1), &json!(2), &json!(3))
    );
    assert_eq!(b["duration_s"], 120);
    let (a, b, c) = (
        a["id"].as_str().expect("id").to_owned(),
        b["id"].as_str().expect("id").to_owned(),
        c["id"].as_str().expect("id").to_owned(),
    );

    // A draft takes no ballot.
    let (status, reply) = api.vote(&a, "early", "for").await;
    assert_error(status, &reply, 409, "session_not_open");

    // Edit a draft: only what is given changes; seq moves.
    let (status, edited) = api
        .send(
            "PATCH",
            &format!("/api/sessions/{b}"),
            Some(json!({"description": "Adopt the budget", "rule": {"kind": "supermajority", "ratio": 0.66}})),
            Some(TOKEN),
        )
        .await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(edited["title"], "Budget");
    assert_eq!(edited["description"], "Adopt the budget");
    assert_eq!(edited["rule"]["kind"], "supermajority");
    assert_eq!(edited["duration_s"], 120);
    assert_eq!(edited["seq"], 1);
    assert_eq!(lobby.next_json().await["event"], "sessions_changed");

    // Reorder: the election first.
    let (status, agenda) = api
        .admin("/api/agenda", Some(json!({"order": [c, a, b]})))
        .await;
    assert_eq!(status, 200, "{agenda}");
    assert_eq!(ids(&agenda), [c.clone(), a.clone(), b.clone()]);
    let (_, agenda) = api.get("/api/agenda").await;
    assert_eq!(ids(&agenda), [c.clone(), a.clone(), b.clone()]);
    assert_eq!(
        agenda
            .as_array()
            .expect("list")
            .iter()
            .map(|s| s["position"].clone())
            .collect::<Vec<_>>(),
        [json!(1), json!(2), json!(3)]
    );
    assert_eq!(lobby.next_json().await["event"], "sessions_changed");

    // Delete a draft: the rest close ranks.
    let (status, _) = api
        .send("DELETE", &format!("/api/sessions/{a}"), None, Some(TOKEN))
        .await;
    assert_eq!(status, 204);
    let (status, reply) = api.get(&format!("/api/sessions/{a}")).await;
    assert_error(status, &reply, 404, "session_not_found");
    let (_, agenda) = api.get("/api/agenda").await;
    assert_eq!(ids(&agenda), [c.clone(), b.clone()]);
    assert_eq!(agenda[1]["position"], 2);
    assert_eq!(lobby.next_json().await["event"], "sessions_changed");

    // Open the budget: its deadline starts; seq moves; it takes ballots.
    let (status, opened) = api.admin(&format!("/api/sessions/{b}/open"), None).await;
    assert_eq!(status, 200, "{opened}");
    assert_eq!(opened["status"], "open");
    assert_eq!(opened["seq"], 2);
    let opened_at = opened["opened_at"].as_str().expect("opened_at");
    let closes_at = opened["closes_at"].as_str().expect("closes_at");
    assert!(closes_at > opened_at);
    assert_eq!(lobby.next_json().await["event"], "sessions_changed");
    // Opening again changes nothing.
    let (status, again) = api.admin(&format!("/api/sessions/{b}/open"), None).await;
    assert_eq!((status, &again["seq"]), (200, &json!(2)));
    let (status, reply) = api.vote(&b, "ann", "for").await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["seq"], 3);

    // Extend: the deadline moves later by that much; seq moves.
    let (status, extended) = api
        .admin(
            &format!("/api/sessions/{b}/extend"),
            Some(json!({"seconds": 60})),
        )
        .await;
    assert_eq!(status, 200, "{extended}");
    assert_eq!(extended["seq"], 4);
    let moved = extended["closes_at"].as_str().expect("closes_at");
    assert!(moved > closes_at, "{moved} after {closes_at}");

    // An open or closed vote cannot be edited or deleted.
    for verb in ["PATCH", "DELETE"] {
        let (status, reply) = api
            .send(
                verb,
                &format!("/api/sessions/{b}"),
                Some(json!({"title": "x"})),
                Some(TOKEN),
            )
            .await;
        assert_error(status, &reply, 409, "session_not_draft");
    }
    let (status, closed) = api.admin(&format!("/api/sessions/{b}/close"), None).await;
    assert_eq!(status, 200);
    assert_eq!(closed["result"], "adopted");
    let (status, reply) = api.admin(&format!("/api/sessions/{b}/open"), None).await;
    assert_error(status, &reply, 409, "session_closed");
    let (status, reply) = api
        .admin(
            &format!("/api/sessions/{b}/extend"),
            Some(json!({"seconds": 60})),
        )
        .await;
    assert_error(status, &reply, 409, "session_not_open");
    let (status, reply) = api
        .send("DELETE", &format!("/api/sessions/{b}"), None, Some(TOKEN))
        .await;
    assert_error(status, &reply, 409, "session_not_draft");

    // A seed client on a plain motion still sees only the seed's messages.
    let mut seed = Live::connect(&hub.live_url()).await;
    seed.subscribe(&b).await;
    let update = seed.next_json().await;
    assert_eq!(update["event"], "vote_update");
    assert!(update.get("options").is_none());
}

#[tokio::test]
async fn bad_agenda_input_is_refused_and_changes_nothing() {
    let hub = HubProcess::start();
    let api = hub.api();
    let in_the_past = "2020-01-01T00:00:00Z";
    let election = |extra: Value| {
        let mut body =
            json!({"title": "Board", "kind": "election", "options": ["Ann", "Bob", "Cy"]});
        for (k, v) in extra.as_object().expect("object") {
            body[k] = v.clone();
        }
        body
    };
    let bad = [
        election(json!({"options": ["Ann", "Ann", "Bob"]})),
        election(json!({"options": ["Ann", " ", "Bob"]})),
        election(json!({"options": ["Ann"]})),
        election(json!({"seats": 4})),
        election(json!({"seats": 0})),
        election(json!({"min": 3, "max": 2})),
        election(json!({"max": 4})),
        election(json!({"method": "approval", "max": 2})),
        election(json!({"scale": "nuanced"})),
        json!({"title": "Budget", "options": ["A", "B"]}),
        json!({"title": "Budget", "closes_at": in_the_past}),
        json!({"title": "Budget", "closes_at": "tomorrow"}),
        json!({"title": "Budget", "duration_s": 0}),
        json!({"title": "Budget", "duration_s": 86_401}),
        json!({"title": "Budget", "duration_s": 60, "closes_at": "2099-01-01T00:00:00Z"}),
        json!({"title": "Budget", "status": "closed"}),
    ];
    for body in bad {
        let (status, reply) = api.admin("/api/sessions", Some(body.clone())).await;
        assert_eq!(status, 400, "{body} → {reply}");
        assert_eq!(reply["code"], "invalid_session", "{body} → {reply}");
    }
    let (status, reply) = api
        .admin(
            "/api/sessions",
            Some(election(
                json!({"rule": {"kind": "inertia", "electorate": 10}}),
            )),
        )
        .await;
    assert_error(status, &reply, 400, "invalid_rule");
    let (status, reply) = api
        .admin(
            "/api/sessions",
            Some(election(
                json!({"rule": {"kind": "supermajority", "ratio": 0.66}}),
            )),
        )
        .await;
    assert_error(status, &reply, 400, "invalid_rule");
    let (_, list) = api.get("/api/sessions").await;
    assert_eq!(list, json!([]), "no refused request created anything");

    // Orders that miss or repeat a session.
    let a = draft(&api, json!({"title": "A"})).await["id"].clone();
    let b = draft(&api, json!({"title": "B"})).await["id"].clone();
    for order in [
        json!([a]),
        json!([a, a]),
        json!([a, b, a]),
        json!([a, "6f1c1f5e-8a43-4c4e-9a51-3d0f5f9f2a10"]),
    ] {
        let (status, reply) = api
            .admin("/api/agenda", Some(json!({"order": order})))
            .await;
        assert_error(status, &reply, 400, "invalid_body");
    }
    let (_, agenda) = api.get("/api/agenda").await;
    assert_eq!(agenda[0]["id"], a);
    // Edits that do not hold together, and extending a draft.
    let (status, reply) = api
        .send(
            "PATCH",
            &format!("/api/sessions/{}", a.as_str().expect("id")),
            Some(json!({"kind": "election", "options": ["X"]})),
            Some(TOKEN),
        )
        .await;
    assert_error(status, &reply, 400, "invalid_session");
    let (status, reply) = api
        .admin(
            &format!("/api/sessions/{}/extend", a.as_str().expect("id")),
            Some(json!({"seconds": 30})),
        )
        .await;
    assert_error(status, &reply, 409, "session_not_open");
    // A draft whose deadline passed cannot open.
    let soon = draft(&api, json!({"title": "Soon", "closes_at": rfc3339_in(1)})).await;
    let id = soon["id"].as_str().expect("id").to_owned();
    wait_past(soon["closes_at"].as_str().expect("closes_at"));
    let (status, reply) = api.admin(&format!("/api/sessions/{id}/open"), None).await;
    assert_error(status, &reply, 409, "deadline_passed");
}

/// RFC 3339 `seconds` from now.
pub fn rfc3339_in(seconds: u64) -> String {
    let at = std::time::SystemTime::now() + std::time::Duration::from_secs(seconds);
    let ms = at
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_millis() as i64;
    votehub::core::clock::Time::from_millis(ms).to_rfc3339()
}

/// Waits, by the wall clock, until `at` has passed.
pub fn wait_past(at: &str) {
    let at = votehub::core::clock::Time::parse(at).expect("time");
    while votehub::core::clock::Time::now() <= at {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[tokio::test]
async fn an_agenda_file_is_taken_whole_or_not_at_all() {
    let hub = HubProcess::start();
    let api = hub.api();
    let import = |body: &str, content_type: &str| {
        let api = api.clone();
        let body = body.to_owned();
        let content_type = content_type.to_owned();
        async move {
            let resp = api
                .client
                .post(format!("{}/api/agenda/import", api.base))
                .bearer_auth(TOKEN)
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .expect("import");
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.expect("json"))
        }
    };
    // One bad line: nothing imported, the line and field named.
    let bad = "title,description,kind,options,seats,rule\n\
               Budget,Adopt it,motion,,,majority\n\
               Board,,election,Ann;Bob;Cy,two,\n\
               Treasurer,,election,Dee;Eve,1,\n";
    let (status, reply) = import(bad, "text/csv").await;
    assert_error(status, &reply, 400, "invalid_session");
    assert!(
        reply["error"]
            .as_str()
            .expect("error")
            .starts_with("line 3, field \"seats\""),
        "{reply}"
    );
    let bad_seats = "title,kind,options,seats\nBoard,election,Ann;Bob,3\n";
    let (status, reply) = import(bad_seats, "text/csv").await;
    assert_error(status, &reply, 400, "invalid_session");
    assert!(
        reply["error"]
            .as_str()
            .expect("error")
            .starts_with("line 2: "),
        "{reply}"
    );
    let (_, list) = api.get("/api/agenda").await;
    assert_eq!(list, json!([]));

    // A good one: every vote a draft, in the file's order, after what is there.
    let first = api.create(json!({"title": "Opening"})).await;
    let good = bad.replace(",two,", ",2,");
    let (status, created) = import(&good, "text/csv").await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created.as_array().map(Vec::len), Some(3));
    let (_, agenda) = api.get("/api/agenda").await;
    let titles: Vec<&str> = agenda
        .as_array()
        .expect("list")
        .iter()
        .map(|s| s["title"].as_str().expect("title"))
        .collect();
    assert_eq!(titles, ["Opening", "Budget", "Board", "Treasurer"]);
    assert_eq!(agenda[0]["id"], first["id"]);
    assert!(
        agenda.as_array().expect("list")[1..]
            .iter()
            .all(|s| s["status"] == "draft")
    );
    assert_eq!(agenda[2]["seats"], 2);
    assert_eq!(agenda[2]["options"][1], json!({"id": 1, "name": "Bob"}));

    // JSON works too, and names the line of a bad item.
    let json_file = "[\n {\"title\": \"Statutes\", \"rule\": {\"kind\": \"supermajority\", \"ratio\": 0.75}},\n {\"title\": \"\"}\n]";
    let (status, reply) = import(json_file, "application/json").await;
    assert_error(status, &reply, 400, "invalid_session");
    assert!(
        reply["error"]
            .as_str()
            .expect("error")
            .starts_with("line 3: "),
        "{reply}"
    );
    let (status, _) = import(&json_file.replace("\"\"", "\"Dues\""), "application/json").await;
    assert_eq!(status, 201);
    assert_eq!(
        api.get("/api/agenda").await.1.as_array().map(Vec::len),
        Some(6)
    );
}

#[tokio::test]
async fn a_new_meeting_leaves_the_earlier_one_readable_and_off_the_page() {
    let hub = HubProcess::start();
    let api = hub.api();
    let (_, meetings) = api.get("/api/meetings").await;
    assert_eq!(meetings.as_array().map(Vec::len), Some(1));
    let first = meetings[0]["id"].clone();
    let open = api.create(json!({"title": "Budget <2027>"})).await;
    let id = open["id"].as_str().expect("id").to_owned();
    api.vote(&id, "ann", "for").await;

    // Not while a vote is open.
    let (status, reply) = api
        .admin("/api/meetings", Some(json!({"title": "Day 2"})))
        .await;
    assert_error(status, &reply, 409, "votes_still_open");
    api.admin(&format!("/api/sessions/{id}/close"), None).await;
    let (status, day2) = api
        .admin("/api/meetings", Some(json!({"title": "Day 2"})))
        .await;
    assert_eq!(status, 201, "{day2}");
    assert_eq!(day2["title"], "Day 2");

    // The participant page's list is the new day's: empty.
    let (_, list) = api.get("/api/sessions").await;
    assert_eq!(list, json!([]));
    let (_, info) = api.get("/api/info").await;
    assert_eq!(info["meeting"]["id"], day2["id"]);
    // The earlier day stays readable, with its minutes.
    let (_, earlier) = api
        .get(&format!(
            "/api/sessions?meeting={}",
            first.as_str().expect("id")
        ))
        .await;
    assert_eq!(ids(&earlier), [id]);
    let (_, meetings) = api.get("/api/meetings").await;
    assert!(meetings[0]["ended_at"].is_string());
    let minutes = api
        .client
        .get(format!(
            "{}/minutes?meeting={}&lang=fr",
            api.base,
            first.as_str().expect("id")
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("minutes");
    assert_eq!(minutes.status(), 200);
    let html = minutes.text().await.expect("html");
    assert!(html.contains("Procès-verbal"), "French on request");
    assert!(html.contains("Budget &lt;2027&gt;"), "titles are escaped");
    assert!(html.contains("data-result=\"adopted\""));
    assert!(html.contains("@page { size: A4"));
    let (status, reply) = api.get("/minutes").await;
    assert_error(status, &reply, 401, "admin_token_required");
}
