//! The hub inside the app: started with the app on the configured port,
//! restartable from the window (another port, new settings), and its change
//! stream forwarded to the window as `hub-changed` events.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;
use tauri::{AppHandle, Emitter, Runtime};
use tokio_util::sync::CancellationToken;
use votehub::Hub;
use votehub::core::Attendance;
use votehub::core::hub::KeyInfo;
use votehub::core::meeting::Meeting;
use votehub::core::session::SessionView;
use votehub::launch::{self, Running};

/// The window's view of the hub.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum HubStatus {
    Starting,
    Running {
        addr: String,
        port: u16,
        join_urls: Vec<String>,
        admin_token: String,
        data_dir: PathBuf,
    },
    Failed {
        message: String,
        port_in_use: bool,
    },
}

/// Everything the window shows, sent whole (latest wins, never a queue).
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub status: HubStatus,
    /// The current meeting's agenda, in order.
    pub sessions: Vec<SessionView>,
    pub meeting: Option<Meeting>,
    pub connections: usize,
    pub roll_size: usize,
    /// Grows when the roll or who is present changes: the window fetches
    /// the roll again (it may be long; the snapshot stays small).
    pub roll_version: u64,
    pub attendance: Attendance,
    /// The key that signs the logs' heads.
    pub key: Option<KeyInfo>,
    /// votehub's version (the hub's and this app's: one workspace).
    pub version: &'static str,
}

pub const EVENT: &str = "hub-changed";

/// At most this many snapshots a second reach the window, however fast
/// ballots arrive.
const MIN_GAP: Duration = Duration::from_millis(100);

#[derive(Default)]
pub struct Host {
    // std locks: each is held only to read or swap, never across an `.await`.
    status: Mutex<Option<HubStatus>>,
    hub: Mutex<Option<Hub>>,
    /// The running server, taken out to stop it.
    running: tokio::sync::Mutex<Option<(Running, CancellationToken)>>,
}

impl Host {
    pub fn hub(&self) -> Option<Hub> {
        self.hub.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn status(&self) -> HubStatus {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or(HubStatus::Starting)
    }

    fn set(&self, status: HubStatus, hub: Option<Hub>) {
        *self.status.lock().unwrap_or_else(|e| e.into_inner()) = Some(status);
        *self.hub.lock().unwrap_or_else(|e| e.into_inner()) = hub;
    }

    pub fn snapshot(&self) -> Snapshot {
        let hub = self.hub();
        Snapshot {
            status: self.status(),
            sessions: hub.as_ref().map(|h| h.agenda(None)).unwrap_or_default(),
            meeting: hub.as_ref().and_then(|h| h.meetings().pop()),
            connections: hub.as_ref().map(Hub::connections).unwrap_or(0),
            roll_size: hub.as_ref().map(Hub::roll_size).unwrap_or(0),
            roll_version: hub.as_ref().map(Hub::roll_version).unwrap_or(0),
            attendance: hub.as_ref().map(Hub::attendance).unwrap_or_default(),
            key: hub.as_ref().map(Hub::key),
            version: votehub::VERSION,
        }
    }

    /// Stops the hub that runs, if any, and starts one with `settings`.
    /// A failure is kept as the status, for the window to show.
    pub async fn restart<R: Runtime>(
        &self,
        app: &AppHandle<R>,
        settings: launch::Settings,
    ) -> HubStatus {
        let mut running = self.running.lock().await;
        if let Some((old, forwarder)) = running.take() {
            forwarder.cancel();
            if let Err(e) = old.stop().await {
                tracing::warn!(error = %e, "the previous hub stopped with an error");
            }
        }
        self.set(HubStatus::Starting, None);
        let _ = app.emit(EVENT, self.snapshot());
        let status = match launch::start(settings).await {
            Ok(started) => {
                let status = HubStatus::Running {
                    addr: started.addr.to_string(),
                    port: started.addr.port(),
                    join_urls: started.join_urls(),
                    admin_token: started.admin_token.clone(),
                    data_dir: started.data.clone(),
                };
                let scheme = if started.tls.is_some() {
                    "https"
                } else {
                    "http"
                };
                tracing::info!("listening on {scheme}://{}", started.addr);
                self.set(status.clone(), Some(started.hub.clone()));
                let forwarder = CancellationToken::new();
                tauri::async_runtime::spawn(forward(
                    app.clone(),
                    started.hub.clone(),
                    forwarder.clone(),
                ));
                *running = Some((started, forwarder));
                status
            }
            Err(e) => {
                tracing::error!(error = %e, "the hub did not start");
                let status = HubStatus::Failed {
                    message: e.to_string(),
                    port_in_use: e.is_port_in_use(),
                };
                self.set(status.clone(), None);
                status
            }
        };
        let _ = app.emit(EVENT, self.snapshot());
        status
    }

    /// Records a failure that happened before the hub could even be tried.
    pub fn fail<R: Runtime>(&self, app: &AppHandle<R>, message: String) {
        self.set(
            HubStatus::Failed {
                message,
                port_in_use: false,
            },
            None,
        );
        let _ = app.emit(EVENT, self.snapshot());
    }

    /// Stops the hub as the app quits: live connections get 1001 and queued
    /// ballots are written.
    pub async fn stop(&self) {
        if let Some((running, forwarder)) = self.running.lock().await.take() {
            forwarder.cancel();
            let _ = running.stop().await;
        }
    }
}

/// Sends a snapshot to the window after each change of the hub, at most
/// one per `MIN_GAP`; changes in between are folded into the next one.
async fn forward<R: Runtime>(app: AppHandle<R>, hub: Hub, stop: CancellationToken) {
    use tauri::Manager;
    let mut changes = hub.changes();
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            changed = changes.changed() => if changed.is_err() { return },
        }
        let host = app.state::<Host>();
        let _ = app.emit(EVENT, host.snapshot());
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(MIN_GAP) => {}
        }
    }
}
