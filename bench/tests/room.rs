//! The room rehearsed on a bad network: the real hub in one network
//! namespace, 500 phones (`votehub-bench phones`) in another, and between
//! them an access point that loses, delays and cuts (`votehub-room`). Each
//! test asserts exactly: every answered ballot counted once, every screen on
//! the hub's tally within 10 s of the last answer.
//!
//! Needs root, iproute2 and nftables (CI runs as root). Where namespaces
//! cannot be made, the tests fail and say why: a network test that cannot
//! run has not passed.

use std::io::{BufRead, BufReader, Write};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

const TOKEN: &str = "room-test-token";

/// One room at a time: 500 phones each are what two cores can carry.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}
const PORT: u16 = 8765;

fn votehub() -> PathBuf {
    // Beside votehub-bench in the same target directory: `cargo test
    // --workspace` (and scripts/test) build it.
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_votehub-bench"))
        .with_file_name(format!("votehub{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: build it first (cargo build -p votehub)",
        bin.display()
    );
    bin
}

/// A room (`votehub-room up`), removed when this is dropped: its stdin
/// closes, and the room takes itself down.
struct Room {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    layout: Value,
}

impl Room {
    fn up(shape: &[&str]) -> Room {
        let mut child = Command::new(env!("CARGO_BIN_EXE_votehub-room"))
            .arg("up")
            .args(shape)
            .args(["--max-seconds", "400"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start votehub-room");
        let stdin = child.stdin.take();
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        let _ = stdout.read_line(&mut line);
        let layout: Value = match serde_json::from_str(&line) {
            Ok(v) => v,
            Err(_) => {
                let _ = child.wait();
                let mut why = String::new();
                if let Some(mut err) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut err, &mut why);
                }
                panic!(
                    "network namespaces cannot be made here, so the room cannot be tested \
                     (it needs root, iproute2 and nftables): {why}"
                );
            }
        };
        Room {
            child,
            stdin,
            stdout,
            layout,
        }
    }

    fn ns(&self, role: &str) -> String {
        self.layout[format!("{role}_ns")]
            .as_str()
            .expect("namespace")
            .to_owned()
    }

    fn addr(&self, which: &str) -> Ipv4Addr {
        self.layout[which]
            .as_str()
            .and_then(|a| a.parse().ok())
            .expect("address")
    }

    /// Sends one command and waits for its `ok`.
    fn command(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{line}").expect("send to the room");
        let mut answer = String::new();
        self.stdout
            .read_line(&mut answer)
            .expect("the room answers");
        assert_eq!(answer.trim(), "ok", "{line}: {answer}");
    }
}

impl Drop for Room {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

/// `votehub serve` inside the hub's namespace, on every address there.
struct Hub {
    child: Child,
    data: PathBuf,
    ns: String,
}

impl Hub {
    fn start(ns: &str, data: PathBuf) -> Hub {
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(votehub())
            .args([
                "serve",
                "--bind",
                &format!("0.0.0.0:{PORT}"),
                "--admin-token",
                TOKEN,
                "--data",
            ])
            .arg(&data)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start votehub in the hub's namespace");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("listening on")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(());
                }
            }
        });
        // Owned before waiting: a hub that never says it listens is killed.
        let hub = Hub {
            child,
            data,
            ns: ns.to_owned(),
        };
        rx.recv_timeout(Duration::from_secs(20))
            .expect("votehub did not start in its namespace");
        hub
    }

    /// kill -9, then the same hub again on the same data.
    fn restart_after_kill9(&mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("wait");
        *self = Hub::start(&self.ns.clone(), self.data.clone());
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Running phones, killed if the test ends before their report (500 of
/// them must not outlive a failed test and starve the next one).
struct Phones(Option<Child>);

impl Drop for Phones {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The phones, from the room's namespace, through the access point.
fn phones(room: &Room, args: &[&str]) -> Phones {
    let child = Command::new("ip")
        .args(["netns", "exec", &room.ns("room")])
        .arg(env!("CARGO_BIN_EXE_votehub-bench"))
        .args([
            "--target",
            &format!("http://{}:{PORT}", room.addr("hub_addr")),
            "--admin-token",
            TOKEN,
            "--json",
            "--timeout",
            "240",
            "phones",
        ])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the phones");
    Phones(Some(child))
}

fn report(mut phones: Phones) -> Value {
    let out = phones
        .0
        .take()
        .expect("running")
        .wait_with_output()
        .expect("phones");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|_| {
        panic!(
            "no report: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&report).unwrap_or_default()
    );
    report
}

/// Asserts what every scenario must show, exactly.
fn assert_exact(r: &Value, phones: u64) {
    assert_eq!(r["failed"], 0, "every ballot answered: {r}");
    assert_eq!(r["acknowledged"], r["ballots"], "{r}");
    assert_eq!(
        r["expected"], r["hub"],
        "every answered ballot counted once: {r}"
    );
    assert_eq!(r["exact"], true, "{r}");
    assert_eq!(
        r["screens_exact"], phones,
        "every screen on the hub's tally: {r}"
    );
    let converged = r["converged_s"].as_f64().expect("converged");
    assert!(converged <= 10.0, "within 10 s of the last answer: {r}");
    let sum = ["for", "against", "abstain"]
        .iter()
        .map(|k| r["hub"][k].as_u64().unwrap_or(0))
        .sum::<u64>();
    assert_eq!(sum, phones, "one counted ballot per phone: {r}");
}

/// Waits (over the organiser's clean link) until the session the phones
/// made has at least `n` ballots: the moment "mid-vote".
fn wait_for_ballots(room: &Room, n: u64) {
    let url = format!("http://{}:{PORT}/api/sessions", room.addr("control_addr"));
    let deadline = Instant::now() + Duration::from_secs(120);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    loop {
        let seen = runtime.block_on(async {
            let r = reqwest::get(&url).await.ok()?;
            let v: Value = r.json().await.ok()?;
            v.as_array()?
                .iter()
                .filter_map(|s| s["tally"]["total"].as_u64())
                .max()
        });
        if seen.unwrap_or(0) >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the phones never got to {n} ballots"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn five_hundred_phones_over_loss_and_delay_count_exactly() {
    let _turn = turn();
    let room = Room::up(&["--loss", "5", "--delay-ms", "80", "--jitter-ms", "40"]);
    let data = tempfile::tempdir().expect("tempdir");
    let _hub = Hub::start(&room.ns("hub"), data.path().to_owned());
    let r = report(phones(
        &room,
        &["--phones", "500", "--window", "15", "--revote"],
    ));
    assert_exact(&r, 500);
    assert!(
        r["latency_ms"]["p99"].as_f64().is_some(),
        "latency reported: {r}"
    );
}

#[test]
fn a_five_second_cut_mid_vote_loses_nothing_and_counts_nothing_twice() {
    let _turn = turn();
    let mut room = Room::up(&["--loss", "1", "--delay-ms", "20", "--jitter-ms", "10"]);
    let data = tempfile::tempdir().expect("tempdir");
    let _hub = Hub::start(&room.ns("hub"), data.path().to_owned());
    let running = phones(&room, &["--phones", "500", "--window", "15", "--revote"]);
    wait_for_ballots(&room, 150);
    room.command("cut 5");
    let r = report(running);
    assert_exact(&r, 500);
    // The cut was felt: ballots sent again, screens that reconnected.
    assert!(r["retried"].as_u64().unwrap_or(0) > 0, "{r}");
    assert!(r["reconnections"].as_u64().unwrap_or(0) > 0, "{r}");
}

#[test]
fn the_hub_killed_and_restarted_during_a_lossy_stream_loses_no_answered_ballot() {
    let _turn = turn();
    let room = Room::up(&["--loss", "5", "--delay-ms", "40", "--jitter-ms", "20"]);
    let data = tempfile::tempdir().expect("tempdir");
    let mut hub = Hub::start(&room.ns("hub"), data.path().to_owned());
    let running = phones(&room, &["--phones", "500", "--window", "15", "--revote"]);
    wait_for_ballots(&room, 150);
    hub.restart_after_kill9();
    let r = report(running);
    assert_exact(&r, 500);
    assert!(
        r["reconnections"].as_u64().unwrap_or(0) >= 500,
        "every screen came back: {r}"
    );
}

#[test]
fn a_room_left_by_a_killed_run_is_removed_by_clean() {
    let _turn = turn();
    // The owner recorded in its name is a process that has ended.
    let mut gone = Command::new("true").spawn().expect("spawn");
    let dead = gone.id();
    gone.wait().expect("wait");
    let ns = format!("vhroom-249-{dead}-hub");
    let made = Command::new("ip")
        .args(["netns", "add", &ns])
        .status()
        .expect("ip netns add");
    assert!(
        made.success(),
        "network namespaces cannot be made here (needs root)"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_votehub-room"))
        .arg("clean")
        .output()
        .expect("votehub-room clean");
    let listed = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    let still = String::from_utf8_lossy(&listed.stdout).contains(&ns);
    if still {
        let _ = Command::new("ip").args(["netns", "del", &ns]).status();
    }
    assert!(out.status.success());
    assert!(!still, "{ns} is still there");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("removed"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
