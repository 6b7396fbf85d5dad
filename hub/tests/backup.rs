//! `votehub backup DIR` while ballots stream in: the copy holds every
//! ballot acknowledged before the backup began, with the signing key, and
//! `serve --data DIR` on it carries on from there.

mod common;

use std::collections::HashSet;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use common::{HubProcess, csv_ballots};

/// Runs `votehub backup` on `data` into `dest` from another process, as an
/// organiser would beside the running hub.
fn backup(data: &std::path::Path, dest: &std::path::Path) -> std::process::Output {
    Command::new(common::binary())
        .arg("backup")
        .arg(dest)
        .arg("--data")
        .arg(data)
        .output()
        .expect("run votehub backup")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_under_a_stream_of_ballots_holds_every_acknowledged_one() {
    let data = tempfile::tempdir().expect("tempdir");
    let mut hub = HubProcess::start_in(data.path());
    let api = hub.api();
    let id = api.create_titled("Budget").await;
    let (_, key_before) = api.get("/api/key").await;

    // Eight clients vote without pause, each ballot recorded as acknowledged.
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for c in 0..8 {
        let (api, id, acked, stop) = (hub.api(), id.clone(), acked.clone(), stop.clone());
        clients.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) && i < 5_000 {
                let voter = format!("c{c}-{i}");
                let (status, body) = api.vote(&id, &voter, "for").await;
                assert_eq!(status, 200, "{body}");
                acked.lock().expect("acked").push(voter);
                i += 1;
            }
        }));
    }
    // Some ballots first, then the backup while the others keep coming.
    while acked.lock().expect("acked").len() < 300 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let before: HashSet<String> = acked.lock().expect("acked").iter().cloned().collect();
    let dest = tempfile::tempdir().expect("tempdir");
    let copy = dest.path().join("copy");
    let (data_path, copy_path) = (data.path().to_owned(), copy.clone());
    let out = tokio::task::spawn_blocking(move || backup(&data_path, &copy_path))
        .await
        .expect("join");
    let during = acked.lock().expect("acked").len();
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.expect("client");
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("votehub serve --data"), "{stdout}");
    assert!(
        during > before.len(),
        "ballots kept coming during the backup"
    );
    let total = acked.lock().expect("acked").len();
    hub.terminate();

    // The copy starts, signs with the same key, and holds every ballot
    // acknowledged before the backup began (and maybe some after).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(copy.join("signing-key"))
            .expect("key copied")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the key stays private");
    }
    let restored = HubProcess::start_in(&copy);
    let api = restored.api();
    let (_, key_after) = api.get("/api/key").await;
    assert_eq!(key_before["public_key"], key_after["public_key"]);
    assert!(key_after["public_key"].is_string(), "{key_after}");
    let ballots = csv_ballots(&api.csv(&id).await);
    for voter in &before {
        assert!(
            ballots.contains_key(voter),
            "{voter} was acknowledged before the backup"
        );
    }
    assert!(ballots.len() <= total, "nothing that was never sent");
    // The copy's log is whole: its audit bundle verifies once closed.
    let (status, closed) = api.admin(&format!("/api/sessions/{id}/close"), None).await;
    assert_eq!(status, 200, "{closed}");
    let (status, bundle) = api.get(&format!("/api/sessions/{id}/audit")).await;
    assert_eq!(status, 200);
    let file = dest.path().join("audit.json");
    std::fs::write(&file, bundle.to_string()).expect("write bundle");
    let verify = Command::new(common::binary())
        .arg("verify")
        .arg(&file)
        .output()
        .expect("verify");
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    // And it carries on: a new ballot in a new session.
    let next = api.create_titled("After the restore").await;
    let (status, _) = api.vote(&next, "late", "against").await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_refuses_a_used_directory_and_a_missing_hub_changing_nothing() {
    let data = tempfile::tempdir().expect("tempdir");
    let hub = HubProcess::start_in(data.path());
    let api = hub.api();
    let id = api.create_titled("Kept").await;
    assert_eq!(api.vote(&id, "ann", "for").await.0, 200);

    // Into a directory that holds something: refused, the file untouched.
    let used = tempfile::tempdir().expect("tempdir");
    std::fs::write(used.path().join("notes.txt"), "mine").expect("write");
    let out = backup(data.path(), used.path());
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not empty"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(used.path().join("notes.txt")).expect("kept"),
        "mine"
    );
    // From a directory with no database: refused, nothing left behind.
    let empty = tempfile::tempdir().expect("tempdir");
    let dest = used.path().join("never");
    let out = backup(empty.path(), &dest);
    assert!(!out.status.success());
    assert!(!dest.exists(), "a failed backup leaves nothing");
    // The hub never noticed.
    assert_eq!(api.session(&id).await["tally"]["for"], 1);
}
