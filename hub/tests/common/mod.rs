//! Shared by the system tests: the real `votehub` binary (or `votehub::run`
//! on port 0) and real HTTP and WebSocket clients over loopback.
#![allow(dead_code)]

pub mod cluster;
pub mod failing_store;
pub mod postgres;
pub mod raw;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

pub const TOKEN: &str = "test-admin-token";

/// The real `votehub serve` binary on a free loopback port.
pub struct HubProcess {
    pub child: Child,
    pub addr: SocketAddr,
    pub data: PathBuf,
    pub stderr: Arc<Mutex<String>>,
    _dir: Option<tempfile::TempDir>,
}

/// Whether the hubs of these tests keep their data in PostgreSQL
/// (`VOTEHUB_TEST_STORE=postgres`) rather than SQLite.
pub fn on_postgres() -> bool {
    std::env::var("VOTEHUB_TEST_STORE").is_ok_and(|s| s == "postgres")
}

/// On PostgreSQL: the database of data directory `data`, a throwaway
/// server started for it on first use and kept for the test process's
/// life (a hub restarted on the same directory finds its data again).
pub fn store_url(data: &Path) -> Option<String> {
    static SERVERS: Mutex<Vec<(PathBuf, postgres::Postgres)>> = Mutex::new(Vec::new());
    if !on_postgres() {
        return None;
    }
    let mut servers = SERVERS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, pg)) = servers.iter().find(|(d, _)| d == data) {
        return Some(pg.url("votehub"));
    }
    let pg = postgres::Postgres::start();
    let url = pg.url("votehub");
    servers.push((data.to_owned(), pg));
    Some(url)
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_votehub")
}

impl HubProcess {
    pub fn start() -> HubProcess {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut p = HubProcess::start_in(dir.path());
        p._dir = Some(dir);
        p
    }

    pub fn start_in(data: &Path) -> HubProcess {
        HubProcess::start_with(data, &[], "info")
    }

    /// `votehub serve` on `data` with `extra` flags, logging at `log`.
    /// With `VOTEHUB_TEST_STORE=postgres`, on a throwaway PostgreSQL of
    /// that data directory's instead of SQLite (`store_url`).
    pub fn start_with(data: &Path, extra: &[&str], log: &str) -> HubProcess {
        let mut args = vec!["--admin-token", TOKEN];
        args.extend_from_slice(extra);
        HubProcess::start_without_token(data, &args, log)
    }

    /// `start_with`, without the tests' admin token: the hub takes the one
    /// its store keeps (or makes it).
    pub fn start_without_token(data: &Path, extra: &[&str], log: &str) -> HubProcess {
        let store = store_url(data);
        let mut child = Command::new(binary())
            .args(["serve", "--bind", "127.0.0.1:0", "--data"])
            .arg(data)
            .args(store.iter().flat_map(|url| ["--store", url.as_str()]))
            .args(extra)
            .env("RUST_LOG", log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn votehub");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                // Logged before the address is handed over: a caller that
                // reads the log once started sees the line that said so.
                {
                    let mut log = sink.lock().expect("log");
                    log.push_str(&line);
                    log.push('\n');
                }
                let rest = line
                    .split("listening on http://")
                    .nth(1)
                    .or_else(|| line.split("listening on https://").nth(1));
                if let Some(rest) = rest {
                    let addr: SocketAddr = rest
                        .split_whitespace()
                        .next()
                        .expect("addr")
                        .parse()
                        .expect("addr");
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(addr);
                    }
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("votehub did not start: {}", log.lock().expect("log")));
        HubProcess {
            child,
            addr,
            data: data.to_owned(),
            stderr: log,
            _dir: None,
        }
    }

    pub fn api(&self) -> Api {
        Api::new(self.addr)
    }

    pub fn live_url(&self) -> String {
        format!("ws://{}/live", self.addr)
    }

    pub fn kill9(&mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("wait");
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill -TERM");
        for _ in 0..200 {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("votehub did not stop within 10 s of SIGTERM");
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `votehub::run` in this process, for tests that need other settings.
pub struct InProcess {
    pub addr: SocketAddr,
    pub hub: votehub::Hub,
    pub shutdown: CancellationToken,
    pub served: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

impl InProcess {
    pub async fn start(configure: impl FnOnce(&mut votehub::ServerConfig)) -> InProcess {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = votehub::SqliteStore::open(dir.path()).expect("store");
        InProcess::start_on(dir, store, configure).await
    }

    /// Serves a hub with other limits than the defaults.
    pub async fn start_limited(limits: votehub::Limits) -> InProcess {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = votehub::SqliteStore::open(dir.path()).expect("store");
        InProcess::serve(dir, store, limits, |_| {}).await
    }

    /// Serves a hub on `store`, whose files are in `dir`.
    pub async fn start_on(
        dir: tempfile::TempDir,
        store: impl votehub::core::store::Store,
        configure: impl FnOnce(&mut votehub::ServerConfig),
    ) -> InProcess {
        InProcess::serve(dir, store, votehub::Limits::default(), configure).await
    }

    async fn serve(
        dir: tempfile::TempDir,
        store: impl votehub::core::store::Store,
        limits: votehub::Limits,
        configure: impl FnOnce(&mut votehub::ServerConfig),
    ) -> InProcess {
        let hub = votehub::Hub::open(store, limits).expect("hub");
        let mut config = votehub::ServerConfig::new(TOKEN);
        configure(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shutdown = CancellationToken::new();
        let served = tokio::spawn(votehub::run(
            listener,
            hub.clone(),
            config,
            shutdown.clone(),
        ));
        InProcess {
            addr,
            hub,
            shutdown,
            served,
            _dir: dir,
        }
    }

    pub fn api(&self) -> Api {
        Api::new(self.addr)
    }

    pub fn live_url(&self) -> String {
        format!("ws://{}/live", self.addr)
    }

    pub fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// Stops serving and lets the hub write what is queued.
    pub async fn stop(self) -> tempfile::TempDir {
        self.shutdown.cancel();
        let _ = self.served.await;
        self.hub.shutdown().await;
        self._dir
    }
}

#[derive(Clone)]
pub struct Api {
    pub client: reqwest::Client,
    pub base: String,
}

impl Api {
    pub fn new(addr: SocketAddr) -> Api {
        Api {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .expect("client"),
            base: format!("http://{addr}"),
        }
    }

    pub async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.body(body.to_string());
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    /// A ballot to a hub that may be gone: status 0 when no answer came
    /// (refused, reset or cut), as a phone would see it.
    pub async fn try_vote(&self, id: &str, voter: &str, choice: &str) -> u16 {
        let sent = self
            .client
            .post(format!("{}/api/sessions/{id}/votes", self.base))
            .body(json!({"voter": voter, "choice": choice}).to_string())
            .send()
            .await;
        match sent {
            Ok(resp) => {
                let status = resp.status().as_u16();
                // An answer cut before its body is no answer.
                match resp.bytes().await {
                    Ok(_) => status,
                    Err(_) => 0,
                }
            }
            Err(_) => 0,
        }
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.send("GET", path, None, None).await
    }

    pub async fn admin(&self, path: &str, body: Option<Value>) -> (u16, Value) {
        self.send("POST", path, body, Some(TOKEN)).await
    }

    pub async fn create(&self, body: Value) -> Value {
        let (status, session) = self.admin("/api/sessions", Some(body)).await;
        assert_eq!(status, 201, "{session}");
        session
    }

    pub async fn create_titled(&self, title: &str) -> String {
        let s = self.create(json!({ "title": title })).await;
        s["id"].as_str().expect("id").to_owned()
    }

    pub async fn vote(&self, id: &str, voter: &str, choice: &str) -> (u16, Value) {
        self.send(
            "POST",
            &format!("/api/sessions/{id}/votes"),
            Some(json!({"voter": voter, "choice": choice})),
            None,
        )
        .await
    }

    /// `n` ballots "for" from `clients` clients voting at once, each
    /// acknowledged with 200 (voters `v{client}-{i}`).
    pub async fn votes_from_clients(&self, id: &str, n: u64, clients: u64) {
        let mut tasks = Vec::new();
        for client in 0..clients {
            let (api, id) = (self.clone(), id.to_owned());
            tasks.push(tokio::spawn(async move {
                for i in 0..n / clients {
                    let (status, _) = api.vote(&id, &format!("v{client}-{i}"), "for").await;
                    assert_eq!(status, 200);
                }
            }));
        }
        for t in tasks {
            t.await.expect("voter");
        }
    }

    /// Registers `voters` (`[{"name", "weight"?, "groups"?}]`): name → code.
    pub async fn register(&self, voters: Value) -> std::collections::HashMap<String, String> {
        let (status, roll) = self
            .admin("/api/voters", Some(json!({ "voters": voters })))
            .await;
        assert_eq!(status, 201, "{roll}");
        roll.as_array()
            .expect("roll")
            .iter()
            .map(|v| {
                (
                    v["name"].as_str().expect("name").to_owned(),
                    v["code"].as_str().expect("code").to_owned(),
                )
            })
            .collect()
    }

    /// Casts any ballot body (roll codes, proxies, trackers, ballot ids).
    pub async fn ballot(&self, id: &str, body: Value) -> (u16, Value) {
        self.send(
            "POST",
            &format!("/api/sessions/{id}/votes"),
            Some(body),
            None,
        )
        .await
    }

    pub async fn session(&self, id: &str) -> Value {
        let (status, s) = self.get(&format!("/api/sessions/{id}")).await;
        assert_eq!(status, 200, "{s}");
        s
    }

    pub async fn csv(&self, id: &str) -> String {
        let resp = self
            .client
            .get(format!("{}/api/sessions/{id}/export.csv", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("export");
        assert_eq!(resp.status().as_u16(), 200);
        resp.text().await.expect("csv")
    }
}

/// Every row of an export's ballot section, by its header: voter → row.
pub fn csv_rows(
    csv: &str,
) -> std::collections::HashMap<String, std::collections::HashMap<String, String>> {
    let ballots = csv.split("\n\n").nth(1).expect("ballot section");
    let mut reader = csv::Reader::from_reader(ballots.as_bytes());
    let headers = reader.headers().expect("headers").clone();
    reader
        .records()
        .map(|r| {
            let r = r.expect("row");
            let row = headers
                .iter()
                .zip(r.iter())
                .map(|(h, v)| (h.to_owned(), v.to_owned()))
                .collect();
            (r[0].to_owned(), row)
        })
        .collect()
}

/// Ballot rows of an export: voter → choice.
pub fn csv_ballots(csv: &str) -> std::collections::HashMap<String, String> {
    let ballots = csv.split("\n\n").nth(1).expect("ballot section");
    let mut reader = csv::Reader::from_reader(ballots.as_bytes());
    reader
        .records()
        .map(|r| {
            let r = r.expect("row");
            (r[0].to_owned(), r[1].to_owned())
        })
        .collect()
}

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub struct Live {
    pub ws: Ws,
}

impl Live {
    pub async fn connect(url: &str) -> Live {
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("connect /live");
        Live { ws }
    }

    pub async fn send(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.expect("send");
    }

    pub async fn send_json(&mut self, v: Value) {
        self.send(&v.to_string()).await;
    }

    /// The next message, whatever it is (pings are answered by tungstenite).
    pub async fn next_message(&mut self) -> Option<Message> {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(10), self.ws.next())
                .await
                .expect("a message within 10 s");
            match msg {
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(m)) => return Some(m),
                Some(Err(_)) | None => return None,
            }
        }
    }

    pub async fn next_json(&mut self) -> Value {
        match self.next_message().await {
            Some(Message::Text(t)) => serde_json::from_str(t.as_str()).expect("json"),
            other => panic!("expected a text message, got {other:?}"),
        }
    }

    /// Asserts nothing arrives for `wait` and the connection stays open:
    /// a closed or broken connection is not silence.
    pub async fn expect_silence(&mut self, wait: Duration) {
        let until = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(until, self.ws.next()).await {
                Err(_) => return,
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
                Ok(other) => panic!("expected silence on an open connection, got {other:?}"),
            }
        }
    }

    /// Subscribes and returns what follows `subscribed` for a known session:
    /// its `vote_update` (and `session_closed` when closed) is read by the caller.
    pub async fn subscribe(&mut self, id: &str) {
        self.send_json(json!({"action": "subscribe", "session_id": id}))
            .await;
        let reply = self.next_json().await;
        assert_eq!(reply, json!({"event": "subscribed", "session_id": id}));
    }

    /// Reads until a `vote_update` with `votes_total >= k` arrives.
    pub async fn until_total(&mut self, k: u64) -> Value {
        loop {
            let v = self.next_json().await;
            if v["event"] == "vote_update" && v["votes_total"].as_u64().expect("total") >= k {
                return v;
            }
        }
    }
}
