//! Results anyone can check: bundles that `votehub verify` accepts, each
//! kind of tampering caught with its own line, a rewritten log caught by
//! an earlier receipt, `kill -9` in the middle of a stream, and secret
//! votes whose bundle names no one beside the list of who voted.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::{Api, HubProcess, TOKEN, binary};
use serde_json::{Value, json};
use tokio::sync::Mutex;

async fn bundle(api: &Api, id: &str) -> Value {
    let (status, bundle) = api.get(&format!("/api/sessions/{id}/audit")).await;
    assert_eq!(status, 200, "{bundle}");
    bundle
}

/// `votehub verify` on `bundle` (written to `dir`): exit code and output.
fn verify(dir: &Path, bundle: &Value, extra: &[&str]) -> (i32, String) {
    let path = dir.join(format!("bundle-{}.json", rand_name()));
    std::fs::write(&path, bundle.to_string()).expect("write bundle");
    let out = Command::new(binary())
        .arg("verify")
        .arg(&path)
        .args(extra)
        .output()
        .expect("votehub verify");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// `votehub verify --receipt {"tracker"} --bundle FILE`.
fn verify_tracker(bundle: &Path, tracker: &str) -> std::process::Output {
    Command::new(binary())
        .args([
            "verify",
            "--receipt",
            &json!({"tracker": tracker}).to_string(),
            "--bundle",
        ])
        .arg(bundle)
        .output()
        .expect("run votehub verify")
}

fn rand_name() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn entries(bundle: &mut Value) -> &mut Vec<Value> {
    bundle["entries"].as_array_mut().expect("entries")
}

/// The index of the first ballot entry by `voter`.
fn ballot_of(bundle: &Value, voter: &str) -> usize {
    bundle["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .position(|e| e["type"] == "ballot" && e["voter"] == voter)
        .expect("a ballot of the voter")
}

/// A closed roll vote of 300 ballots: weights, proxies, re-votes; one
/// ballot per request, so that every ballot has its own signed head.
async fn roll_vote(api: &Api) -> (String, HashMap<String, String>) {
    let mut voters = Vec::new();
    for i in 0..60 {
        voters.push(json!({"name": format!("member-{i:02}"), "weight": 1 + i % 4}));
    }
    let codes = api.register(json!(voters)).await;
    // Proxies: member-0k gives theirs to member-1k (k < 10).
    for k in 0..10 {
        let body = json!({"from": codes[&format!("member-{k:02}")], "to": codes[&format!("member-{:02}", k + 10)]});
        assert_eq!(api.admin("/api/proxies", Some(body)).await.0, 201);
    }
    let id = api
        .create(json!({"title": "Statutes", "electorate": "roll", "rule": {"kind": "supermajority", "ratio": 0.6}}))
        .await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let choices = ["for", "against", "abstain"];
    let mut cast = 0;
    for round in 0..6 {
        for i in 10..60 {
            if cast == 300 {
                break;
            }
            let choice = choices[(i + round) % 3];
            let code = &codes[&format!("member-{i:02}")];
            let body = if i < 20 && round % 2 == 1 {
                // The holder votes for the member who gave them a proxy.
                json!({"voter": code, "choice": choice, "on_behalf_of": format!("member-{:02}", i - 10)})
            } else {
                json!({"voter": code, "choice": choice})
            };
            let (status, answer) = api.ballot(&id, body).await;
            assert_eq!(status, 200, "{answer}");
            cast += 1;
        }
    }
    assert_eq!(cast, 300);
    let (status, _) = api.admin(&format!("/api/sessions/{id}/close"), None).await;
    assert_eq!(status, 200);
    (id, codes)
}

#[tokio::test]
async fn a_roll_vote_of_300_ballots_verifies_and_every_tampering_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hub = HubProcess::start();
    let api = hub.api();
    let (id, codes) = roll_vote(&api).await;
    let good = bundle(&api, &id).await;
    let session = api.session(&id).await;
    let (_, key) = api.get("/api/key").await;
    let key = key["public_key"].as_str().expect("key").to_owned();

    let (code, out) = verify(dir.path(), &good, &["--key", &key]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!(
            "result {}",
            session["result"].as_str().expect("result")
        )),
        "the result it recomputes is the hub's: {out}"
    );
    assert_eq!(good["tally"], session["tally"]);
    // No credential in public: no code anywhere in the bundle.
    let text = good.to_string();
    for code in codes.values() {
        assert!(!text.contains(code.as_str()), "a code in the bundle");
    }

    let tampered = |change: &dyn Fn(&mut Value)| {
        let mut b = good.clone();
        change(&mut b);
        verify(dir.path(), &b, &[])
    };
    let first = ballot_of(&good, "member-10");
    // A choice changed.
    let (code, out) = tampered(&|b| {
        let e = &mut entries(b)[first];
        e["choice"] = json!(if e["choice"] == "for" {
            "against"
        } else {
            "for"
        });
    });
    assert_eq!(code, 1);
    assert!(out.contains(&format!("entry {first} altered")), "{out}");
    // An entry dropped.
    let (code, out) = tampered(&|b| {
        entries(b).remove(first + 5);
    });
    assert_eq!(code, 1);
    assert!(out.contains("entries missing"), "{out}");
    // Two entries swapped.
    let (code, out) = tampered(&|b| entries(b).swap(first + 2, first + 7));
    assert_eq!(code, 1);
    assert!(
        out.contains(&format!("entries {} and {} swapped", first + 2, first + 7)),
        "{out}"
    );
    // A ballot added for someone not on the roll (before the close).
    let (code, out) = tampered(&|b| {
        let close = entries(b).len() - 1;
        entries(b).insert(
            close,
            json!({"type": "ballot", "voter": "Mallory", "choice": "for", "weight": 1, "at": "2026-11-29T10:00:00Z"}),
        );
    });
    assert_eq!(code, 1);
    assert!(
        out.contains("a ballot from Mallory, who is not on the roll"),
        "{out}"
    );
    assert!(out.contains("entries added"), "{out}");
    // A second counted ballot for a voter: the tally counts a replaced one.
    let (code, out) = tampered(&|b| {
        let all = b["entries"].as_array().expect("entries").clone();
        let voter = "member-25";
        let ballots: Vec<&Value> = all
            .iter()
            .filter(|e| e["type"] == "ballot" && e["voter"] == voter)
            .collect();
        let (old, new) = (ballots[0].clone(), ballots[ballots.len() - 1].clone());
        assert_ne!(old["choice"], new["choice"]);
        let close = entries(b).len() - 1;
        let side = |e: &Value| e["choice"].as_str().expect("choice").to_owned();
        let w = old["weight"].as_u64().expect("weight");
        let tally = &mut entries(b)[close]["tally"];
        let k = side(&old);
        tally[&k] = json!(tally[&k].as_u64().expect("count") + w);
        tally["total"] = json!(tally["total"].as_u64().expect("total") + w);
        tally["ballots"] = json!(tally["ballots"].as_u64().expect("ballots") + 1);
        let _ = new;
    });
    assert_eq!(code, 1);
    // (Any voter whose replaced ballot weighs and says the same fits.)
    assert!(out.contains("two counted ballots for one voter ("), "{out}");
    assert!(out.contains("member-25"), "{out}");
    // The result changed (in the close and in the bundle).
    let (code, out) = tampered(&|b| {
        let flip = |r: &Value| {
            json!(if r == "adopted" {
                "rejected"
            } else {
                "adopted"
            })
        };
        let close = entries(b).len() - 1;
        let r = flip(&entries(b)[close]["result"]);
        entries(b)[close]["result"] = r.clone();
        b["result"] = r;
    });
    assert_eq!(code, 1);
    assert!(out.contains("result differs"), "{out}");
    // The tally changed (in the bundle only).
    let (code, out) =
        tampered(&|b| b["tally"]["for"] = json!(b["tally"]["for"].as_u64().unwrap_or(0) + 1));
    assert_eq!(code, 1);
    assert!(out.contains("tally differs"), "{out}");
    // The head re-signed with another key.
    let (code, out) = tampered(&|b| {
        let other = votehub::core::audit::signing::Key::from_seed(&[9; 32]);
        let session = uuid::Uuid::parse_str(b["session"].as_str().expect("id")).expect("uuid");
        let mut root = [0u8; 32];
        hex::decode_to_slice(b["head"]["root"].as_str().expect("root"), &mut root).expect("hex");
        let size = b["head"]["size"].as_u64().expect("size");
        let head = other.sign_head(session, size, root);
        b["head"]["signature"] = json!(hex::encode(head.signature));
        b["head"]["public_key"] = json!(other.public_hex());
    });
    assert_eq!(code, 1);
    assert!(
        out.contains("signature invalid on the head of size"),
        "{out}"
    );
    let mut resigned = good.clone();
    {
        let other = votehub::core::audit::signing::Key::from_seed(&[9; 32]);
        resigned["head"]["public_key"] = json!(other.public_hex());
    }
    let (code, out) = verify(dir.path(), &resigned, &["--key", &key]);
    assert_eq!(code, 1);
    assert!(out.contains("key differs"), "{out}");
    // A truncated file cannot be read at all.
    let text = good.to_string();
    let path = dir.path().join("truncated.json");
    std::fs::write(&path, &text[..text.len() / 2]).expect("write");
    let out = Command::new(binary())
        .arg("verify")
        .arg(&path)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test]
async fn proofs_answer_for_leaves_that_exist_only() {
    let hub = HubProcess::start();
    let api = hub.api();
    let id = api.create_titled("Open vote").await;
    let (_, first) = api.vote(&id, "ann", "for").await;
    let index = first["receipt"]["index"].as_u64().expect("index");
    for v in ["bob", "cy", "dee"] {
        api.vote(&id, v, "against").await;
    }
    let from = first["receipt"]["head"]["size"].as_u64().expect("size");
    let (status, proof) = api
        .get(&format!(
            "/api/sessions/{id}/proof?index={index}&from={from}"
        ))
        .await;
    assert_eq!(status, 200, "{proof}");
    assert_eq!(proof["size"], index + 4);
    let leaf = hex::decode(first["receipt"]["leaf"].as_str().expect("leaf")).expect("hex");
    let leaf: [u8; 32] = leaf.try_into().expect("32 bytes");
    let hash = |v: &Value| -> Vec<[u8; 32]> {
        v.as_array()
            .expect("list")
            .iter()
            .map(|h| {
                hex::decode(h.as_str().expect("hex"))
                    .expect("hex")
                    .try_into()
                    .expect("32")
            })
            .collect()
    };
    let root: [u8; 32] = hex::decode(proof["head"]["root"].as_str().expect("root"))
        .expect("hex")
        .try_into()
        .expect("32");
    let old_root: [u8; 32] = hex::decode(first["receipt"]["head"]["root"].as_str().expect("root"))
        .expect("hex")
        .try_into()
        .expect("32");
    use votehub::core::audit::tree::{verify_consistency, verify_inclusion};
    assert!(verify_inclusion(
        index,
        proof["size"].as_u64().expect("size"),
        &leaf,
        &hash(&proof["inclusion"]),
        &root
    ));
    assert!(verify_consistency(
        from,
        proof["size"].as_u64().expect("size"),
        &old_root,
        &root,
        &hash(&proof["consistency"])
    ));
    for (query, status) in [
        (format!("index={}", index + 99), 404),
        (format!("index={index}&from=999"), 404),
        ("index=x".to_owned(), 400),
        ("from=1".to_owned(), 400),
    ] {
        let (got, body) = api.get(&format!("/api/sessions/{id}/proof?{query}")).await;
        assert_eq!(got, status, "{query}: {body}");
    }
    // The bundle is for moderators until the close.
    let (status, _) = api.get(&format!("/api/sessions/{id}/audit")).await;
    assert_eq!(status, 401);
    let (status, _) = api
        .send(
            "GET",
            &format!("/api/sessions/{id}/audit"),
            None,
            Some(TOKEN),
        )
        .await;
    assert_eq!(status, 200);
    // Open sessions name voters by a pseudonym, never by their id.
    api.admin(&format!("/api/sessions/{id}/close"), None).await;
    let b = bundle(&api, &id).await;
    let text = b.to_string();
    for v in ["\"ann\"", "\"bob\""] {
        assert!(!text.contains(v), "{v} in the bundle");
    }
}

#[tokio::test]
async fn a_rewritten_log_is_caught_by_an_earlier_receipt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut hub = HubProcess::start_in(dir.path());
    let api = hub.api();
    let id = api.create_titled("Rewritten").await;
    api.vote(&id, "ann", "for").await;
    let (_, receipt) = api.vote(&id, "bob", "against").await;
    // The operator stops the hub and rewrites Ann's ballot, which Bob's
    // receipt's head covers, in the database.
    assert_eq!(hub.terminate().code(), Some(0));
    let rewrite = "UPDATE log_entries SET entry = replace(entry, '\"for\"', '\"against\"')
         WHERE id >> 32 = (SELECT id FROM logs WHERE session_id = $1)
           AND entry LIKE '%\"for\"%'";
    let changed = match common::store_url(dir.path()) {
        Some(url) => {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .expect("the hub's database");
            tokio::spawn(connection);
            client.execute(rewrite, &[&id]).await.expect("rewrite") as usize
        }
        None => rusqlite::Connection::open(dir.path().join("votehub.db"))
            .expect("db")
            .execute(&rewrite.replace("$1", "?1"), [&id])
            .expect("rewrite"),
    };
    assert_eq!(changed, 1);
    let hub = HubProcess::start_in(dir.path());
    let api = hub.api();
    api.vote(&id, "cy", "for").await;
    api.admin(&format!("/api/sessions/{id}/close"), None).await;
    let b = bundle(&api, &id).await;
    let bundle_path = dir.path().join("rewritten.json");
    std::fs::write(&bundle_path, b.to_string()).expect("write");
    // The receipt Bob was given before the rewrite …
    let out = Command::new(binary())
        .args(["verify", "--receipt", &receipt.to_string(), "--bundle"])
        .arg(&bundle_path)
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    // … still finds his ballot, but not the log his head signed.
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("the log was rewritten"), "{text}");
    // And the bundle itself: its signed heads disagree with its entries.
    let (code, out) = verify(dir.path(), &b, &[]);
    assert_eq!(code, 1);
    assert!(out.contains("altered"), "{out}");
}

#[tokio::test]
async fn after_kill_9_the_final_head_covers_every_acknowledged_ballot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut hub = HubProcess::start_in(dir.path());
    let api = hub.api();
    let id = api.create_titled("Crash").await;
    let acked: Arc<Mutex<Vec<Value>>> = Arc::default();
    let mut tasks = Vec::new();
    for client in 0..8 {
        let (api, id, acked) = (api.clone(), id.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..100_000 {
                let body = json!({"voter": format!("c{client}-{i}"), "choice": if i % 2 == 0 { "for" } else { "against" }});
                let sent = api
                    .client
                    .post(format!("{}/api/sessions/{id}/votes", api.base))
                    .body(body.to_string())
                    .send()
                    .await;
                let Ok(resp) = sent else { return };
                if resp.status() != 200 {
                    return;
                }
                let Ok(answer) = resp.json::<Value>().await else { return };
                acked.lock().await.push(answer);
            }
        }));
    }
    for _ in 0..400 {
        tokio::time::sleep(Duration::from_millis(25)).await;
        if acked.lock().await.len() >= 300 {
            break;
        }
    }
    hub.kill9();
    for t in tasks {
        t.await.expect("client");
    }
    let acked = acked.lock().await.clone();
    assert!(acked.len() >= 300, "only {} before the kill", acked.len());
    let hub = HubProcess::start_in(dir.path());
    let api = hub.api();
    api.admin(&format!("/api/sessions/{id}/close"), None).await;
    let b = bundle(&api, &id).await;
    let (code, out) = verify(dir.path(), &b, &[]);
    assert_eq!(code, 0, "{out}");
    let path = dir.path().join("after-crash.json");
    std::fs::write(&path, b.to_string()).expect("write");
    for receipt in acked.iter().step_by(7) {
        let out = Command::new(binary())
            .args(["verify", "--receipt", &receipt.to_string(), "--bundle"])
            .arg(&path)
            .output()
            .expect("run");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    // Every ballot counted is in the log, and only those.
    let ballots = b["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["type"] == "ballot")
        .count();
    assert_eq!(b["tally"]["ballots"], ballots as u64);
    assert!(ballots >= acked.len());
}

#[tokio::test]
async fn a_secret_vote_names_no_one_beside_who_voted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hub = HubProcess::start();
    let api = hub.api();
    let voters: Vec<Value> = (0..30)
        .map(|i| json!({"name": format!("Member {i}"), "weight": 1 + i % 2}))
        .collect();
    let codes = api.register(json!(voters)).await;
    let id = api
        .create(json!({"title": "Board", "kind": "election", "options": ["Ann", "Bob", "Cy"], "seats": 1,
                       "electorate": "roll", "secrecy": "secret"}))
        .await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let mut trackers = HashMap::new();
    for (i, (name, code)) in codes.iter().enumerate() {
        let tracker = format!("tracker-{i:04}-{}", rand_name());
        let (status, answer) = api.ballot(
            &id,
            json!({"voter": code, "options": [i % 3], "tracker": tracker, "ballot_id": format!("b{i}")}),
        )
        .await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(
            answer["receipt"],
            json!({"tracker": tracker}),
            "before the close, the tracker"
        );
        trackers.insert(name.clone(), (tracker, i % 3));
    }
    api.admin(&format!("/api/sessions/{id}/close"), None).await;
    let b = bundle(&api, &id).await;
    let (code, out) = verify(dir.path(), &b, &[]);
    assert_eq!(code, 0, "{out}");
    let all = b["entries"].as_array().expect("entries");
    let voted = all
        .iter()
        .find(|e| e["type"] == "voted")
        .expect("who voted");
    let names: Vec<&str> = voted["members"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(|m| m["name"].as_str())
        .collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted, "by name");
    assert_eq!(names.len(), 30);
    for e in all.iter().filter(|e| e["type"] == "ballot") {
        assert!(
            e.get("voter").is_none() && e.get("at").is_none() && e.get("by").is_none(),
            "{e}"
        );
        let text = e.to_string();
        assert!(!codes.keys().any(|n| text.contains(n.as_str())), "{text}");
    }
    let text = b.to_string();
    assert!(
        !codes.values().any(|c| text.contains(c.as_str())),
        "a code in the bundle"
    );
    // Each voter finds their tracker and their choice.
    let path = dir.path().join("secret.json");
    std::fs::write(&path, &text).expect("write");
    for (tracker, choice) in trackers.values().take(5) {
        let out = verify_tracker(&path, tracker);
        let said = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{said}");
        assert!(said.contains(&format!("\"options\":[{choice}]")), "{said}");
    }
    // The log's order says nothing of the casting order.
    let order: Vec<usize> = all
        .iter()
        .filter_map(|e| e["tracker"].as_str())
        .map(|t| t[8..12].parse::<usize>().expect("index"))
        .collect();
    assert_ne!(order, (0..30).collect::<Vec<_>>(), "shuffled at the close");

    // A member listed twice among who voted, with a ballot added to match
    // the count, is named; so is a weight the roll never gave.
    let mut twice = b.clone();
    let list = twice["entries"]
        .as_array_mut()
        .expect("entries")
        .iter_mut()
        .find(|e| e["type"] == "voted")
        .expect("who voted");
    let first = list["members"][0].clone();
    list["members"]
        .as_array_mut()
        .expect("members")
        .insert(1, first.clone());
    list["members"][2]["weight"] = json!(7);
    let extra = all
        .iter()
        .find(|e| e["type"] == "ballot")
        .expect("a ballot")
        .clone();
    let at = twice["entries"].as_array().expect("entries").len() - 2;
    twice["entries"]
        .as_array_mut()
        .expect("entries")
        .insert(at, extra);
    let (code, out) = verify(dir.path(), &twice, &[]);
    assert_eq!(code, 1);
    let name = first["name"].as_str().expect("name");
    assert!(
        out.contains(&format!("{name} is listed twice among who voted")),
        "{out}"
    );
    assert!(
        out.contains("counted with weight 7, which the roll never gave"),
        "{out}"
    );
    // The receipt check runs on the whole bundle: a doctored one fails it.
    std::fs::write(&path, twice.to_string()).expect("write");
    let (tracker, _) = trackers.values().next().expect("a tracker");
    let out = verify_tracker(&path, tracker);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
