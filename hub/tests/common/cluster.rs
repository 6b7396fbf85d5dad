//! Shared by the cluster tests: nodes of one hub on a throwaway
//! PostgreSQL, and what they watch and send.

use serde_json::Value;

use super::{Api, HubProcess, Live};

/// `votehub serve --store URL` on a data directory of its own, with the
/// admin token the database keeps.
pub fn node(url: &str) -> (HubProcess, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let hub = HubProcess::start_without_token(dir.path(), &["--store", url], "info");
    (hub, dir)
}

/// `n` nodes on the database at `url`, each on a data directory of its own
/// (kept alive by the second half).
pub fn nodes_on(url: &str, n: usize) -> (Vec<HubProcess>, Vec<tempfile::TempDir>) {
    let dirs: Vec<_> = (0..n)
        .map(|_| tempfile::tempdir().expect("tempdir"))
        .collect();
    let nodes = dirs
        .iter()
        .map(|d| HubProcess::start_with(d.path(), &["--store", url], "info"))
        .collect();
    (nodes, dirs)
}

/// Two nodes on the database at `url`.
pub fn two_nodes(url: &str) -> (HubProcess, HubProcess, Vec<tempfile::TempDir>) {
    let (mut nodes, dirs) = nodes_on(url, 2);
    let b = nodes.pop().expect("two nodes");
    let a = nodes.pop().expect("two nodes");
    (a, b, dirs)
}

/// The admin token a node printed when it made it.
pub fn printed_token(node: &HubProcess) -> String {
    let log = node.stderr.lock().expect("log").clone();
    log.lines()
        .find_map(|l| l.strip_prefix("votehub: admin token")?.rsplit(": ").next())
        .map(|t| t.trim().to_owned())
        .unwrap_or_else(|| panic!("the node prints the token it made: {log}"))
}

/// Reads `live` until its tally shows `total` ballots; every `seq` it was
/// sent grows strictly. The last update.
pub async fn converge(live: &mut Live, total: u64) -> Value {
    let mut last_seq = None;
    loop {
        let v = live.next_json().await;
        if v["event"] != "vote_update" {
            continue;
        }
        let seq = v["seq"].as_u64().expect("seq");
        assert!(last_seq < Some(seq), "seq {seq} after {last_seq:?}: {v}");
        last_seq = Some(seq);
        if v["votes_total"].as_u64().expect("total") >= total {
            return v;
        }
    }
}

/// Casts ballots `prefix-0`, `prefix-1`… on `apis` in turn until `stop`
/// (or `limit`), never failing on an error: the voters whose ballot was
/// acknowledged, and the statuses of the others.
pub async fn stream(
    apis: Vec<Api>,
    id: String,
    prefix: &'static str,
    limit: usize,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> (Vec<String>, Vec<u16>) {
    let mut acknowledged = Vec::new();
    let mut failed = Vec::new();
    for i in 0..limit {
        if stop.load(std::sync::atomic::Ordering::SeqCst) {
            break;
        }
        let voter = format!("{prefix}-{i}");
        let api = &apis[i % apis.len()];
        match api.try_vote(&id, &voter, "for").await {
            200 => acknowledged.push(voter),
            other => failed.push(other),
        }
    }
    (acknowledged, failed)
}

/// Polls `api`'s `/health` until it answers `want` (bounded).
pub async fn health_becomes(api: &Api, want: u16) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (status, _) = api.get("/health").await;
        if status == want {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "/health stayed {status}, not {want}"
        );
        tokio::task::yield_now().await;
    }
}
