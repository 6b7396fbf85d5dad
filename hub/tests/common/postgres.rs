//! A throwaway PostgreSQL server for the tests, so that nothing needs to
//! run beforehand: Debian's binaries (`scripts/setup --test` installs
//! them), `initdb` in a temporary directory, a free loopback port, and —
//! PostgreSQL refuses to run as root — the `nobody` user when the tests
//! run as root. The server is stopped when dropped, or can be stopped and
//! started again on the same port and data (a database that goes away).

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long a server may take to start or stop before the test fails.
const PATIENCE: Duration = Duration::from_secs(60);

pub struct Postgres {
    child: Option<Child>,
    pub port: u16,
    bin: PathBuf,
    data: PathBuf,
    /// Running as root: the user the server runs as.
    user: Option<(u32, u32)>,
    _dir: tempfile::TempDir,
}

/// The directory of Debian's PostgreSQL binaries (the newest installed),
/// or `VOTEHUB_PG_BIN`.
fn bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("VOTEHUB_PG_BIN") {
        return dir.into();
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is not installed: run scripts/setup --test")
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found
        .pop()
        .map(|(_, bin)| bin)
        .expect("no initdb under /usr/lib/postgresql: run scripts/setup --test")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Postgres {
    /// A fresh server, running, with an empty database `votehub`.
    pub fn start() -> Postgres {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        // Whether the tests run as root: the owner of what they just made.
        let root = {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(dir.path()).map(|m| m.uid()).unwrap_or(1) == 0
        };
        let user = root.then_some((65534, 65534));
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).expect("chown");
        }
        let mut pg = Postgres {
            child: None,
            port: free_port(),
            bin: bin_dir(),
            data,
            user,
            _dir: dir,
        };
        let out = pg
            .command(pg.bin.join("initdb"))
            .args([
                "--auth=trust",
                "--username=votehub",
                "--encoding=UTF8",
                "--no-sync",
            ])
            .arg("-D")
            .arg(&pg.data)
            .output()
            .expect("initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        pg.start_again();
        let out = pg
            .command(pg.bin.join("createdb"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &pg.port.to_string(),
                "-U",
                "votehub",
                "votehub",
            ])
            .output()
            .expect("createdb");
        assert!(
            out.status.success(),
            "createdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        pg
    }

    /// `program` (a path), as the server's user.
    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        if let Some((uid, gid)) = self.user {
            use std::os::unix::process::CommandExt;
            c.uid(uid).gid(gid);
        }
        c.env_remove("PGDATABASE")
            .env_remove("PGHOST")
            .env_remove("PGPORT");
        c
    }

    /// The URL of database `db` on this server.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://votehub@127.0.0.1:{}/{db}", self.port)
    }

    /// Starts the server (again, after [`Postgres::stop`]) and returns once
    /// it accepts connections, as its own log says. It runs under a shell
    /// that stops it when its standard input closes: when this is dropped
    /// or stopped, and when the test process ends however it ends (a
    /// server kept in a `static`, or a test killed, leaves nothing behind).
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "already running");
        let mut child = self
            .command("/bin/sh")
            .arg("-c")
            .arg(r#""$@" & pid=$!; read _; kill -INT "$pid"; wait "$pid""#)
            .arg("sh")
            .arg(self.bin.join("postgres"))
            .arg("-D")
            .arg(&self.data)
            .args([
                "-p",
                &self.port.to_string(),
                "-c",
                "listen_addresses=127.0.0.1",
            ])
            .arg("-c")
            .arg(format!(
                "unix_socket_directories={}",
                socket_dir(&self.data)
            ))
            .args(["-c", "max_connections=200", "-c", "logging_collector=off"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("postgres");
        let stderr = child.stderr.take().expect("stderr");
        let (ready_tx, ready) = mpsc::channel();
        std::thread::spawn(move || {
            let mut ready_tx = Some(ready_tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let outcome = if line.contains("ready to accept connections") {
                    Some(Ok(()))
                } else if line.contains("FATAL") || line.contains("PANIC") {
                    Some(Err(line.clone()))
                } else {
                    None
                };
                if let Some(outcome) = outcome {
                    // The first of ready or failed is the answer.
                    if let Some(tx) = ready_tx.take() {
                        let _ = tx.send(outcome);
                    }
                }
                if std::env::var_os("VOTEHUB_PG_LOG").is_some() {
                    eprintln!("postgres: {line}");
                }
            }
        });
        match ready.recv_timeout(PATIENCE) {
            Ok(Ok(())) => {}
            Ok(Err(line)) => panic!("postgres did not start: {line}"),
            Err(_) => panic!("postgres did not start within {PATIENCE:?}"),
        }
        self.child = Some(child);
    }

    /// Stops the server (a fast shutdown: clients are cut off) and waits
    /// until it has.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // Its shell reads the end of its input and stops it.
        drop(child.stdin.take());
        let (done_tx, done) = mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let status = child.wait();
            let _ = done_tx.send(());
            status
        });
        if done.recv_timeout(PATIENCE).is_err() {
            panic!("postgres did not stop within {PATIENCE:?}");
        }
        let _ = waiter.join();
    }
}

/// The server's Unix socket directory: its data directory's parent (the
/// temporary directory, short enough for a socket path).
fn socket_dir(data: &Path) -> String {
    data.parent().unwrap_or(data).display().to_string()
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            drop(child.stdin.take());
            let _ = child.wait();
        }
    }
}
