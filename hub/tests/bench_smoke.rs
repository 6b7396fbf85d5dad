//! `votehub bench`'s short scenarios against the real hub: they check the
//! tool — exact tallies, no errors, the numbers it reports — never a timing.

mod common;

use std::process::Command;

use common::{HubProcess, TOKEN, binary};
use serde_json::Value;

fn bench(hub: &HubProcess, scenario: &[&str]) -> Value {
    let out = Command::new(binary())
        .args([
            "bench",
            "--target",
            &format!("http://{}", hub.addr),
            "--admin-token",
            TOKEN,
        ])
        .args([
            "--server-pid",
            &hub.child.id().to_string(),
            "--json",
            "--timeout",
            "120",
        ])
        .args(scenario)
        .output()
        .expect("run votehub bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bench {scenario:?} failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).expect("json report")
}

#[test]
fn fanout_reports_latency_and_exact_tallies() {
    let hub = HubProcess::start();
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
    );
    assert_eq!(
        (r["exact"].as_bool(), r["errors"].as_u64()),
        (Some(true), Some(0)),
        "{r}"
    );
    let l = &r["latency_ms"];
    assert!(l["p50"].as_f64().expect("p50") <= l["p99"].as_f64().expect("p99"));
    assert!(l["p99"].as_f64().expect("p99") <= l["max"].as_f64().expect("max"));
    // At least one frame per subscriber, at most one per ballot per subscriber
    // (plus the close-free tail): latest-wins never sends more than there is.
    let delivered = r["delivered_messages"].as_u64().expect("delivered");
    assert!((50..=50 * 100).contains(&delivered), "{delivered}");
    assert!(r["server_cpu_us_per_message"].as_f64().is_some());
    // The hub agrees.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let sessions = rt.block_on(hub.api().get("/api/sessions")).1;
    let tally = &sessions[0]["tally"];
    assert_eq!(
        (tally["for"].as_u64(), tally["against"].as_u64()),
        (Some(67), Some(33))
    );
}

#[test]
fn idle_and_ingest() {
    let hub = HubProcess::start();
    let r = bench(&hub, &["idle", "--subscribers", "200", "--hold", "1"]);
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
    );
    assert_eq!(
        (r["exact"].as_bool(), r["errors"].as_u64()),
        (Some(true), Some(0)),
        "{r}"
    );
    assert!(r["ballots_per_s"].as_f64().expect("rate") > 0.0);
}

#[test]
fn only_local_targets_are_loaded() {
    let out = Command::new(binary())
        .args([
            "bench",
            "--target",
            "http://8.8.8.8:80",
            "idle",
            "--subscribers",
            "1",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a loopback or LAN address"));
}
