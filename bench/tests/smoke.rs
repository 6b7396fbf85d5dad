//! `votehub-bench`'s short scenarios against a real hub (started in this
//! process on a free port): they check the tool — exact tallies, no
//! errors, the numbers it reports — never a timing.

use std::process::{Command, Output};

use serde_json::Value;
use votehub::launch::{self, Running, Settings};

const TOKEN: &str = "bench-test-token";

async fn hub() -> (Running, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = Settings::new("127.0.0.1:0".parse().expect("addr"), dir.path().to_owned());
    settings.admin_token = Some(TOKEN.into());
    (launch::start(settings).await.expect("hub"), dir)
}

async fn bench(hub: &Running, scenario: &[&str]) -> Value {
    let out = run(&[
        &[
            "--target",
            &format!("http://{}", hub.addr),
            "--admin-token",
            TOKEN,
        ],
        &[
            "--server-pid",
            &std::process::id().to_string(),
            "--json",
            "--timeout",
            "120",
        ],
        scenario,
    ])
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bench {scenario:?} failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).expect("json report")
}

async fn run(args: &[&[&str]]) -> Output {
    let args: Vec<String> = args.concat().iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_votehub-bench"))
            .args(args)
            .output()
            .expect("run votehub-bench")
    })
    .await
    .expect("join")
}

#[tokio::test(flavor = "multi_thread")]
async fn fanout_reports_latency_and_exact_tallies() {
    let (hub, _dir) = hub().await;
    let r = bench(
        &hub,
        &[
            "fanout",
            "--subscribers",
            "50",
            "--rate",
            "200",
            "--ballots",
            "100",
        ],
    )
    .await;
    assert_eq!(
        (r["exact"].as_bool(), r["errors"].as_u64()),
        (Some(true), Some(0)),
        "{r}"
    );
    let l = &r["latency_ms"];
    assert!(l["p50"].as_f64().expect("p50") <= l["p99"].as_f64().expect("p99"));
    assert!(l["p99"].as_f64().expect("p99") <= l["max"].as_f64().expect("max"));
    // At least one frame per subscriber, at most one per ballot per
    // subscriber: latest-wins never sends more than there is.
    let delivered = r["delivered_messages"].as_u64().expect("delivered");
    assert!((50..=50 * 100).contains(&delivered), "{delivered}");
    assert!(r["server_cpu_us_per_message"].as_f64().is_some());
    // The hub agrees.
    let sessions = hub.hub.sessions(None);
    let counts = sessions[0].tally.motion().expect("a motion");
    assert_eq!((counts.votes_for, counts.votes_against), (67, 33));
    hub.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_and_ingest() {
    let (hub, _dir) = hub().await;
    let r = bench(&hub, &["idle", "--subscribers", "200", "--hold", "1"]).await;
    assert_eq!(
        (r["exact"].as_bool(), r["errors"].as_u64()),
        (Some(true), Some(0)),
        "{r}"
    );
    assert!(r["server_kb_per_subscriber"].as_f64().is_some(), "{r}");
    let r = bench(
        &hub,
        &[
            "ingest",
            "--clients",
            "4",
            "--ballots",
            "500",
            "--subscribers",
            "10",
        ],
    )
    .await;
    assert_eq!(
        (r["exact"].as_bool(), r["errors"].as_u64()),
        (Some(true), Some(0)),
        "{r}"
    );
    assert!(r["ballots_per_s"].as_f64().expect("rate") > 0.0);
    assert_eq!(hub.hub.sessions(None)[0].tally.total(), 500);
    hub.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_election_ends_exact_on_every_candidate() {
    let (hub, _dir) = hub().await;
    let r = bench(
        &hub,
        &[
            "--election",
            "20",
            "fanout",
            "--subscribers",
            "20",
            "--rate",
            "300",
            "--ballots",
            "90",
        ],
    )
    .await;
    assert_eq!(
        (
            r["exact"].as_bool(),
            r["errors"].as_u64(),
            r["election"].as_u64()
        ),
        (Some(true), Some(0), Some(20)),
        "{r}"
    );
    let tally = &hub.hub.sessions(None)[0].tally;
    let options = serde_json::to_value(tally).expect("json")["options"].clone();
    // Candidates 0…9 got 5 ballots each, 10…19 four.
    assert_eq!(options[0]["votes"], 5);
    assert_eq!(options[19]["votes"], 4);
    let r = bench(
        &hub,
        &[
            "--election",
            "5",
            "ingest",
            "--clients",
            "4",
            "--ballots",
            "200",
            "--subscribers",
            "5",
        ],
    )
    .await;
    assert_eq!(
        (r["exact"].as_bool(), r["errors"].as_u64()),
        (Some(true), Some(0)),
        "{r}"
    );
    hub.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread")]
async fn weighed_and_secret_votes_on_the_roll_end_exact() {
    let (hub, _dir) = hub().await;
    let ingest = [
        "ingest",
        "--clients",
        "4",
        "--ballots",
        "300",
        "--subscribers",
        "5",
    ];
    let r = bench(&hub, &[&["--roll"][..], &ingest[..]].concat()).await;
    assert_eq!(
        (
            r["exact"].as_bool(),
            r["errors"].as_u64(),
            r["roll"].as_bool()
        ),
        (Some(true), Some(0), Some(false)),
        "{r}"
    );
    // 300 members weighing 1, 2, 3 in turn; every third ballot (a member
    // of weight 3) against.
    let tally = &hub.hub.sessions(None)[0].tally;
    let counts = tally.motion().expect("a motion");
    assert_eq!(
        (counts.votes_for, counts.votes_against, tally.ballots),
        (300, 300, 300)
    );
    let r = bench(&hub, &[&["--secret"][..], &ingest[..]].concat()).await;
    assert_eq!(
        (
            r["exact"].as_bool(),
            r["errors"].as_u64(),
            r["roll"].as_bool()
        ),
        (Some(true), Some(0), Some(true)),
        "{r}"
    );
    let secret = hub
        .hub
        .sessions(None)
        .into_iter()
        .find(|s| s.secrecy == votehub::core::session::Secrecy::Secret)
        .expect("the secret session");
    assert_eq!(secret.tally.ballots, 300);
    hub.stop().await.expect("stop");
}

#[tokio::test]
async fn only_local_targets_are_loaded() {
    let out = run(&[&[
        "--target",
        "http://8.8.8.8:80",
        "idle",
        "--subscribers",
        "1",
    ]])
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a loopback or LAN address"));
}
