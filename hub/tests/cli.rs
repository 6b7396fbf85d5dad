//! `votehub serve` as an organiser meets it: flags and their env forms,
//! the readiness line, and one clear line with exit code 2 for anything
//! that keeps the hub from starting — with nothing written.

mod common;

use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{HubProcess, binary};

fn serve(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(binary());
    cmd.arg("serve").args(args).stdin(Stdio::null());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // Every case here must fail fast; a hub that starts is a failure too.
    bounded_output(child, Duration::from_secs(10))
}

/// The child's output once it exits, or after killing it at `limit`.
/// It is killed through its handle, never by number: a process id can be
/// reused once the child is reaped, and an unrelated process must not die.
fn bounded_output(mut child: std::process::Child, limit: Duration) -> Output {
    let read = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut out = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut out);
            }
            out
        })
    };
    let stdout = read(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = read(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            break child.wait().expect("wait");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: stdout.join().expect("stdout"),
        stderr: stderr.join().expect("stderr"),
    }
}

fn assert_one_line_exit_2(out: &Output, mentions: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line, got: {stderr}");
    assert!(
        lines[0].contains(mentions),
        "{:?} should mention {mentions:?}",
        lines[0]
    );
}

/// One version: the workspace's, which `/health` and the packages show too.
#[test]
fn version_is_the_workspaces() {
    let out = Command::new(binary())
        .arg("--version")
        .output()
        .expect("votehub --version");
    assert!(out.status.success());
    let manifest = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml"))
        .expect("the workspace's Cargo.toml");
    let workspace = manifest
        .lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .expect("[workspace.package] version");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("votehub {workspace}")
    );
    assert_eq!(votehub::VERSION, workspace);
}

#[test]
fn bad_flags_exit_2_with_one_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let data = data.to_str().expect("utf-8");
    assert_one_line_exit_2(
        &serve(&["--frobnicate", "--data", data], &[]),
        "--frobnicate",
    );
    assert_one_line_exit_2(
        &serve(&["--bind", "nowhere", "--data", data], &[]),
        "nowhere",
    );
    assert_one_line_exit_2(
        &serve(&["--data", data], &[("VOTEHUB_BIND", "999.1.1.1:80")]),
        "999.1.1.1",
    );
    assert!(!dir.path().join("data").exists(), "nothing written");
}

#[test]
fn a_port_in_use_exits_2_and_writes_nothing() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let out = serve(
        &["--bind", &port, "--data", data.to_str().expect("utf-8")],
        &[],
    );
    assert_one_line_exit_2(&out, &port);
    assert!(!data.exists(), "nothing written");
}

#[test]
fn an_unusable_data_dir_exits_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a directory").expect("write");
    let out = serve(
        &[
            "--bind",
            "127.0.0.1:0",
            "--data",
            file.to_str().expect("utf-8"),
        ],
        &[],
    );
    assert_one_line_exit_2(&out, "a-file");
}

#[test]
fn a_corrupt_or_foreign_database_exits_2_and_is_left_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("votehub.db");
    let junk =
        b"PK\x03\x04 this is a zip file, or a spreadsheet, but certainly not a database".repeat(20);
    std::fs::write(&db, &junk).expect("write");
    let out = serve(
        &[
            "--bind",
            "127.0.0.1:0",
            "--data",
            dir.path().to_str().expect("utf-8"),
        ],
        &[],
    );
    assert_one_line_exit_2(&out, "votehub.db");
    assert_eq!(
        std::fs::read(&db).expect("read"),
        junk,
        "the file is untouched"
    );

    let other = tempfile::tempdir().expect("tempdir");
    let conn = rusqlite::Connection::open(other.path().join("votehub.db")).expect("sqlite");
    conn.execute_batch("CREATE TABLE invoices (id INTEGER PRIMARY KEY, amount REAL)")
        .expect("create");
    drop(conn);
    let out = serve(
        &[
            "--bind",
            "127.0.0.1:0",
            "--data",
            other.path().to_str().expect("utf-8"),
        ],
        &[],
    );
    assert_one_line_exit_2(&out, "not a votehub database");
}

#[tokio::test]
async fn env_forms_and_a_generated_admin_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let child = Command::new(binary())
        .arg("serve")
        .env("VOTEHUB_BIND", format!("127.0.0.1:{port}"))
        .env("VOTEHUB_DATA", dir.path())
        .env_remove("VOTEHUB_ADMIN_TOKEN")
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let api = common::Api::new(format!("127.0.0.1:{port}").parse().expect("addr"));
    let mut ready = false;
    for _ in 0..100 {
        if api
            .client
            .get(format!("{}/health", api.base))
            .send()
            .await
            .is_ok()
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "not listening on the VOTEHUB_BIND port");
    let token = std::fs::read_to_string(dir.path().join("admin-token"))
        .expect("token kept in the data dir");
    let token = token.trim();
    let (status, _) = api
        .send(
            "POST",
            "/api/sessions",
            Some(serde_json::json!({"title": "t"})),
            Some(token),
        )
        .await;
    assert_eq!(status, 201, "the generated token is the admin token");
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(token),
        "printed once at first start: {stderr}"
    );
    assert!(
        stderr.contains(&format!("listening on http://127.0.0.1:{port}")),
        "{stderr}"
    );

    // The env token overrides the kept one.
    let child = Command::new(binary())
        .arg("serve")
        .env("VOTEHUB_BIND", format!("127.0.0.1:{port}"))
        .env("VOTEHUB_DATA", dir.path())
        .env("VOTEHUB_ADMIN_TOKEN", "from-env")
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut status = 0;
    for _ in 0..100 {
        if let Ok(resp) = api
            .client
            .post(format!("{}/api/sessions", api.base))
            .bearer_auth("from-env")
            .body(r#"{"title":"t2"}"#)
            .send()
            .await
        {
            status = resp.status().as_u16();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, 201);
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let out = child.wait_with_output().expect("wait");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains(token),
        "not printed again"
    );
}

#[test]
fn logs_name_sessions_but_not_votes() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let mut hub = HubProcess::start();
    let api = hub.api();
    rt.block_on(async {
        let id = api.create_titled("Logged").await;
        for i in 0..20 {
            api.vote(&id, &format!("v{i}"), "for").await;
        }
        api.admin(&format!("/api/sessions/{id}/close"), None).await;
    });
    hub.terminate();
    let log = hub.stderr.lock().expect("log").clone();
    assert!(
        log.lines()
            .any(|l| l.contains("session created") && l.contains("Logged")),
        "{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("session closed") && l.contains("adopted")),
        "{log}"
    );
    assert!(log.lines().count() < 12, "no line per vote: {log}");
}
