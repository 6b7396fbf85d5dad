//! Secret ballots: 200 members vote in a secret session while an observer
//! records every `/live` message and polls the register of who voted; then
//! the database file, the exports and the hub's debug log are searched for
//! anything that links a member to a choice.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{Api, HubProcess, Live, TOKEN};
use rusqlite::{Connection, OpenFlags};
use serde_json::{Value, json};
use tokio::sync::Mutex;

const MEMBERS: usize = 200;
const CHOICES: [&str; 3] = ["for", "against", "abstain"];

async fn ballot(api: &Api, id: &str, body: &Value) -> (u16, Value) {
    api.send(
        "POST",
        &format!("/api/sessions/{id}/votes"),
        Some(body.clone()),
        None,
    )
    .await
}

/// Spearman's rank correlation of two orders of the same items.
fn rank_correlation(a: &[usize], b: &[usize]) -> f64 {
    let n = a.len() as f64;
    let d2: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
        .sum();
    1.0 - 6.0 * d2 / (n * (n * n - 1.0))
}

/// The position of each item of `stored` in `arrival`, in stored order.
fn positions(stored: &[String], arrival: &[String]) -> Vec<usize> {
    let at: HashMap<&String, usize> = arrival.iter().enumerate().map(|(i, x)| (x, i)).collect();
    stored.iter().map(|x| at[x]).collect()
}

/// The hub's database as this test reads it: SQLite's file, or the
/// PostgreSQL database (`VOTEHUB_TEST_STORE=postgres`).
enum Db {
    Sqlite(Connection),
    Postgres(tokio_postgres::Client),
}

impl Db {
    async fn open(dir: &std::path::Path) -> Db {
        match common::store_url(dir) {
            Some(url) => {
                let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                    .await
                    .expect("the hub's database");
                tokio::spawn(connection);
                Db::Postgres(client)
            }
            None => Db::Sqlite(
                Connection::open_with_flags(
                    dir.join("votehub.db"),
                    OpenFlags::SQLITE_OPEN_READ_ONLY,
                )
                .expect("open the database"),
            ),
        }
    }

    /// The rows of `sql` (every column text; `$1`: `param`).
    async fn rows(&self, sql: &str, param: &str) -> Vec<Vec<String>> {
        match self {
            Db::Sqlite(conn) => {
                let sql = sql.replace("$1", "?1");
                let mut stmt = conn.prepare(&sql).expect("query");
                let n = stmt.column_count();
                let params: Vec<&str> = if sql.contains("?1") {
                    vec![param]
                } else {
                    vec![]
                };
                stmt.query_map(rusqlite::params_from_iter(params), |r| {
                    (0..n).map(|i| r.get::<_, String>(i)).collect()
                })
                .expect("rows")
                .collect::<Result<_, _>>()
                .expect("rows")
            }
            Db::Postgres(client) => {
                let rows = if sql.contains("$1") {
                    client.query(sql, &[&param]).await
                } else {
                    client.query(sql, &[]).await
                };
                rows.expect("rows")
                    .iter()
                    .map(|r| (0..r.len()).map(|i| r.get::<_, String>(i)).collect())
                    .collect()
            }
        }
    }

    async fn columns(&self, table: &str) -> Vec<String> {
        let sql = match self {
            Db::Sqlite(_) => format!("SELECT name FROM pragma_table_info('{table}')"),
            Db::Postgres(_) => format!(
                "SELECT column_name::text FROM information_schema.columns WHERE table_name = '{table}'"
            ),
        };
        let mut names: Vec<String> = self
            .rows(&sql, "")
            .await
            .into_iter()
            .flatten()
            .filter(|c| c != "ord")
            .collect();
        names.sort();
        names
    }
}

#[tokio::test]
async fn nothing_links_a_member_to_a_choice() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hub = HubProcess::start_with(dir.path(), &[], "debug");
    let api = hub.api();
    let names: Vec<String> = (0..MEMBERS).map(|i| format!("Member-{i:03}")).collect();
    let voters: Vec<Value> = names.iter().map(|n| json!({ "name": n })).collect();
    let (status, roll) = api
        .admin("/api/voters", Some(json!({ "voters": voters })))
        .await;
    assert_eq!(status, 201);
    let codes: Vec<String> = roll
        .as_array()
        .expect("roll")
        .iter()
        .map(|v| v["code"].as_str().expect("code").to_owned())
        .collect();

    let refused = api
        .admin(
            "/api/sessions",
            Some(json!({"title": "Open", "secrecy": "secret"})),
        )
        .await;
    assert_eq!(
        (refused.0, &refused.1["code"]),
        (400, &json!("invalid_session"))
    );
    let created = api
        .create(json!({"title": "Board election", "electorate": "roll", "secrecy": "secret"}))
        .await;
    assert_eq!(created["warnings"], json!([]), "everyone weighs 1");
    let id = created["id"].as_str().expect("id").to_owned();

    // The observer: every live message, and the register, polled all along.
    let mut live = Live::connect(&hub.live_url()).await;
    live.subscribe(&id).await;
    let first = live.next_json().await;
    assert_eq!(first["votes_total"], 0);
    let voting = Arc::new(AtomicBool::new(true));
    let registers: Arc<Mutex<Vec<Value>>> = Arc::default();
    let poller = {
        let (api, id, voting, registers) =
            (api.clone(), id.clone(), voting.clone(), registers.clone());
        tokio::spawn(async move {
            while voting.load(Ordering::SeqCst) {
                let (status, names) = api
                    .send(
                        "GET",
                        &format!("/api/sessions/{id}/voted"),
                        None,
                        Some(TOKEN),
                    )
                    .await;
                assert_eq!(status, 200);
                registers.lock().await.push(names);
            }
        })
    };

    // 200 members vote from 20 clients at once, each ballot with its
    // tracker; the order of the answers is the arrival order.
    let arrival: Arc<Mutex<Vec<(usize, String, String)>>> = Arc::default();
    let mut clients = Vec::new();
    for client in 0..20 {
        let (api, id, codes, arrival) = (api.clone(), id.clone(), codes.clone(), arrival.clone());
        clients.push(tokio::spawn(async move {
            // Members vote in an order unrelated to their registration
            // (73 is prime to 200: every member once).
            for m in (client..MEMBERS)
                .step_by(20)
                .map(|i| (i * 73 + 11) % MEMBERS)
            {
                let choice = CHOICES[(m * 7 + m / 3) % 3];
                let tracker = format!("tracker-{m:03}-{:08x}", m * 2_654_435_761 % 4_294_967_291);
                let body = json!({"voter": codes[m], "choice": choice, "tracker": tracker,
                                  "ballot_id": format!("b-{m}")});
                let (status, answer) = ballot(&api, &id, &body).await;
                assert_eq!(status, 200, "{answer}");
                assert_eq!(answer["receipt"]["tracker"], tracker.as_str());
                // What a voter is told shows no choice either.
                assert_eq!(
                    [
                        &answer["tally"]["for"],
                        &answer["tally"]["against"],
                        &answer["tally"]["abstain"]
                    ],
                    [&json!(0), &json!(0), &json!(0)]
                );
                arrival.lock().await.push((m, choice.to_owned(), tracker));
            }
        }));
    }
    for c in clients {
        c.await.expect("client");
    }
    let arrival = arrival.lock().await.clone();
    assert_eq!(arrival.len(), MEMBERS);

    // A secret ballot cannot be changed; a retry is answered as the first.
    let (m, _, tracker) = &arrival[0];
    let again = json!({"voter": codes[*m], "choice": "against", "tracker": tracker, "ballot_id": format!("b-{m}")});
    let first_answer = ballot(&api, &id, &again).await;
    assert_eq!(first_answer.0, 200, "a retry: {}", first_answer.1);
    assert_eq!(first_answer.1["receipt"]["tracker"], tracker.as_str());
    let second = json!({"voter": codes[*m], "choice": "against", "ballot_id": "another",
                        "tracker": "another-tracker-0001"});
    let refused = ballot(&api, &id, &second).await;
    assert_eq!(
        (refused.0, &refused.1["code"]),
        (409, &json!("already_voted")),
        "{}",
        refused.1
    );
    // A retry must carry its tracker (the hub keeps none beside a member),
    // and a tracker equal to the ballot id would tie the two.
    let bare = json!({"voter": codes[*m], "choice": "for", "ballot_id": format!("b-{m}")});
    assert_eq!(ballot(&api, &id, &bare).await.1["code"], "invalid_ballot");
    let tied = json!({"voter": codes[*m], "choice": "for", "ballot_id": "same-as-tracker-01",
                      "tracker": "same-as-tracker-01"});
    assert_eq!(ballot(&api, &id, &tied).await.1["code"], "invalid_ballot");

    voting.store(false, Ordering::SeqCst);
    poller.await.expect("poller");
    let (_, closed) = api.admin(&format!("/api/sessions/{id}/close"), None).await;
    let mut expected = HashMap::new();
    for (_, choice, _) in &arrival {
        *expected.entry(choice.clone()).or_insert(0u64) += 1;
    }
    for choice in CHOICES {
        assert_eq!(
            closed["tally"][choice], expected[choice],
            "the full tally at the close"
        );
    }

    // What the observer saw until the close: how many voted, never what.
    let mut updates = 0;
    loop {
        let msg = live.next_json().await;
        if msg["event"] == "session_closed" {
            assert_eq!(msg["votes_for"], expected["for"]);
            break;
        }
        updates += 1;
        assert_eq!(
            [
                &msg["votes_for"],
                &msg["votes_against"],
                &msg["votes_abstain"]
            ],
            [&json!(0), &json!(0), &json!(0)],
            "{msg}"
        );
        assert!(
            msg.get("needed").is_none() && msg.get("adopted_if_closed_now").is_none(),
            "{msg}"
        );
        assert_eq!(msg["votes_total"], msg["ballots"]);
    }
    assert!(updates > 0, "the observer saw the vote move");
    // The register: names in alphabetical order, whatever the arrival.
    let registers = registers.lock().await;
    assert!(!registers.is_empty());
    for names in registers.iter() {
        let names: Vec<&str> = names
            .as_array()
            .expect("names")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted);
    }

    // The database: who voted and what was voted share no column, no row
    // order, no time.
    let db = Db::open(dir.path()).await;
    assert_eq!(
        db.columns("secret_ballots").await,
        [
            "choice",
            "grade",
            "marks",
            "options",
            "session_id",
            "slot",
            "tracker",
            "weight"
        ]
    );
    let mut voted_columns = vec!["ballot_id", "holder", "member_id", "session_id", "weight"];
    if let Db::Postgres(_) = db {
        // Where the vote stood when each voted, for the other nodes to
        // follow — and emptied at the close.
        voted_columns.insert(3, "seq");
        let marked = db
            .rows(
                "SELECT CAST(count(*) AS TEXT) FROM secret_voted WHERE session_id = $1 AND seq IS NOT NULL",
                &id,
            )
            .await;
        assert_eq!(marked, [["0"]], "when each voted, kept after the close");
    }
    assert_eq!(db.columns("secret_voted").await, voted_columns);
    for table in ["ballots", "answers"] {
        let n = db
            .rows(
                &format!("SELECT CAST(count(*) AS TEXT) FROM {table} WHERE session_id = $1"),
                &id,
            )
            .await;
        assert_eq!(n, [["0"]], "nothing of the secret vote in {table}");
    }
    // Rows as stored (no ORDER BY: the storage's own order, which is also
    // their slots' order).
    let stored = db
        .rows(
            "SELECT CAST(slot AS TEXT), choice, tracker FROM secret_ballots WHERE session_id = $1",
            &id,
        )
        .await;
    assert_eq!(stored.len(), MEMBERS);
    let trackers_arrived: Vec<String> = arrival.iter().map(|(_, _, t)| t.clone()).collect();
    let trackers_stored: Vec<String> = stored.iter().map(|r| r[2].clone()).collect();
    let order = positions(&trackers_stored, &trackers_arrived);
    let rho = rank_correlation(&order, &(0..MEMBERS).collect::<Vec<_>>());
    assert!(
        rho.abs() < 0.3,
        "ballots are stored in the order they came (ρ = {rho})"
    );
    let by_code: HashMap<&String, usize> = codes.iter().enumerate().map(|(i, c)| (c, i)).collect();
    let member_ids: Vec<String> = db
        .rows(
            "SELECT member_id FROM secret_voted WHERE session_id = $1",
            &id,
        )
        .await
        .into_iter()
        .flatten()
        .collect();
    let id_of: HashMap<String, usize> = db
        .rows("SELECT id, code FROM voters", "")
        .await
        .into_iter()
        .map(|r| (r[0].clone(), by_code[&r[1]]))
        .collect();
    let members_arrived: Vec<String> = arrival.iter().map(|(m, _, _)| m.to_string()).collect();
    let members_stored: Vec<String> = member_ids.iter().map(|m| id_of[m].to_string()).collect();
    let order = positions(&members_stored, &members_arrived);
    let rho = rank_correlation(&order, &(0..MEMBERS).collect::<Vec<_>>());
    assert!(
        rho.abs() < 0.3,
        "who voted is stored in the order they came (ρ = {rho})"
    );
    // No time: no stored value of either table reads as a timestamp.
    let texts: Vec<String> = db
        .rows(
            "SELECT CAST(slot AS TEXT) || ' ' || tracker FROM secret_ballots UNION ALL
             SELECT member_id || ' ' || coalesce(holder, '') || ' ' || coalesce(ballot_id, '')
             FROM secret_voted",
            "",
        )
        .await
        .into_iter()
        .flatten()
        .collect();
    assert!(
        texts.iter().all(|t| !t.contains("T") || !t.contains(':')),
        "a timestamp is stored"
    );
    if let Db::Sqlite(_) = db {
        // The write-ahead log, which kept each commit's pages together, is
        // emptied at the close.
        let wal = std::fs::metadata(dir.path().join("votehub.db-wal"))
            .map(|m| m.len())
            .unwrap_or(0);
        assert_eq!(wal, 0, "the log still holds the vote's history");
    }

    // The export: who voted (sorted), then the ballots (sorted by what
    // they say), nothing in common.
    let csv = api.csv(&id).await;
    let parts: Vec<&str> = csv.split("\n\n").collect();
    let voted: Vec<&str> = parts[1].lines().skip(1).collect();
    let mut sorted_names = names.clone();
    sorted_names.sort();
    assert_eq!(voted, sorted_names);
    let ballots: Vec<&str> = parts[2].lines().skip(1).collect();
    assert_eq!(ballots.len(), MEMBERS);
    let mut in_order = ballots.clone();
    in_order.sort_by_key(|row| row.split(',').nth(1).unwrap_or_default().to_owned());
    assert_eq!(
        ballots
            .iter()
            .map(|r| r.split(',').nth(1))
            .collect::<Vec<_>>(),
        in_order
            .iter()
            .map(|r| r.split(',').nth(1))
            .collect::<Vec<_>>(),
        "ballots are listed by what they say"
    );
    for row in &ballots {
        assert!(!names.iter().any(|n| row.contains(n.as_str())), "{row}");
    }
    let exported_trackers: HashSet<&str> =
        ballots.iter().filter_map(|r| r.split(',').next()).collect();
    assert_eq!(
        exported_trackers.len(),
        MEMBERS,
        "each voter finds their tracker"
    );

    // The hub's log, at debug level: no member, no code, no tracker.
    let log = hub.stderr.lock().expect("log").clone();
    assert!(
        log.contains("DEBUG") || log.contains("debug"),
        "the log is at debug level"
    );
    for (m, _, tracker) in &arrival {
        assert!(!log.contains(&names[*m]), "{} in the log: {log}", names[*m]);
        assert!(!log.contains(&codes[*m]), "a code in the log");
        assert!(!log.contains(tracker.as_str()), "a tracker in the log");
    }
}

#[tokio::test]
async fn a_unique_weight_is_warned_about() {
    let hub = HubProcess::start();
    let api = hub.api();
    let (status, _) = api
        .admin(
            "/api/voters",
            Some(
                json!({"voters": [{"name": "Ann", "weight": 40}, {"name": "Bob"}, {"name": "Cy"}]}),
            ),
        )
        .await;
    assert_eq!(status, 201);
    let created = api
        .create(json!({"title": "Secret", "electorate": "roll", "secrecy": "secret"}))
        .await;
    let warnings = created["warnings"].as_array().expect("warnings");
    assert_eq!(warnings.len(), 1, "{created}");
    assert!(
        warnings[0].as_str().is_some_and(|w| w.contains("40")),
        "{created}"
    );
    // Group minimums would show how a small group voted: refused.
    let (status, answer) = api
        .admin(
            "/api/sessions",
            Some(json!({"title": "S", "electorate": "roll", "secrecy": "secret",
                        "rule": {"kind": "majority", "groups": [{"group": "smith", "size": 3, "exponent": 1}]}})),
        )
        .await;
    assert_eq!((status, &answer["code"]), (400, &json!("invalid_session")));
}
