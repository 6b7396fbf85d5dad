//! The window's commands: each a one-line door onto the hub API that the
//! HTTP server uses too. Errors carry the same text and code as over HTTP.

use std::path::PathBuf;

use serde::Serialize;
use tauri::{AppHandle, Runtime, State};
use uuid::Uuid;
use votehub::core::agenda::{self, Format};
use votehub::core::cards;
use votehub::core::meeting::Meeting;
use votehub::core::minutes::{self, Lang};
use votehub::core::roll::{MemberEdit, NewVoter, RollPage, Voter};
use votehub::core::roll_file;
use votehub::core::session::{CloseReceipt, Created, SessionView};
use votehub::core::spec::SessionSpec;
use votehub::core::{Attendance, Code, Hub, HubError};

use crate::host::{Host, HubStatus, Snapshot};
use crate::settings::Settings;

/// An error as the window shows it: the same text and code as over HTTP.
#[derive(Debug, Serialize)]
pub struct CommandError {
    pub error: String,
    pub code: &'static str,
}

impl CommandError {
    fn new(code: Code, error: impl ToString) -> CommandError {
        CommandError {
            error: error.to_string(),
            code: code.as_str(),
        }
    }
}

impl From<HubError> for CommandError {
    fn from(e: HubError) -> CommandError {
        if let HubError::Store(inner) = &e {
            tracing::error!(error = %inner, "storage failure shown in the window");
        }
        CommandError::new(e.code(), e.public_message())
    }
}

type Result<T> = std::result::Result<T, CommandError>;

fn hub(host: &Host) -> Result<Hub> {
    host.hub()
        .ok_or_else(|| CommandError::new(Code::HubNotRunning, "the hub is not running"))
}

fn session_id(id: &str) -> Result<Uuid> {
    Uuid::try_parse(id).map_err(|_| CommandError::from(HubError::SessionNotFound))
}

#[tauri::command]
pub fn snapshot(host: State<'_, Host>) -> Snapshot {
    host.snapshot()
}

#[tauri::command]
pub async fn create_session(host: State<'_, Host>, session: SessionSpec) -> Result<Created> {
    Ok(hub(&host)?.create_session(session).await?)
}

#[tauri::command]
pub async fn edit_session(
    host: State<'_, Host>,
    id: String,
    session: SessionSpec,
) -> Result<SessionView> {
    Ok(hub(&host)?.edit_session(session_id(&id)?, session).await?)
}

#[tauri::command]
pub async fn delete_session(host: State<'_, Host>, id: String) -> Result<()> {
    Ok(hub(&host)?.delete_session(session_id(&id)?).await?)
}

#[tauri::command]
pub async fn open_session(host: State<'_, Host>, id: String) -> Result<SessionView> {
    Ok(hub(&host)?.open_session(session_id(&id)?).await?)
}

#[tauri::command]
pub async fn extend_session(
    host: State<'_, Host>,
    id: String,
    seconds: u64,
) -> Result<SessionView> {
    Ok(hub(&host)?.extend(session_id(&id)?, seconds).await?)
}

/// Puts the agenda in this order (every session of the meeting once).
#[tauri::command]
pub async fn reorder(host: State<'_, Host>, order: Vec<String>) -> Result<Vec<SessionView>> {
    let order = order
        .iter()
        .map(|id| session_id(id))
        .collect::<Result<Vec<_>>>()?;
    Ok(hub(&host)?.reorder(order).await?)
}

/// Imports an agenda file's text (JSON or CSV, told by its name or content).
#[tauri::command]
pub async fn import_agenda(
    host: State<'_, Host>,
    text: String,
    name: String,
) -> Result<Vec<SessionView>> {
    let format = if name.to_ascii_lowercase().ends_with(".csv") {
        Format::Csv
    } else if name.to_ascii_lowercase().ends_with(".json") {
        Format::Json
    } else {
        Format::sniff(&text)
    };
    let specs = agenda::parse(&text, format)?;
    Ok(hub(&host)?.import_agenda(specs).await?)
}

/// Closes the day and begins a new meeting.
#[tauri::command]
pub async fn start_meeting(host: State<'_, Host>, title: String) -> Result<Meeting> {
    Ok(hub(&host)?.start_meeting(title).await?)
}

#[tauri::command]
pub fn meetings(host: State<'_, Host>) -> Result<Vec<Meeting>> {
    Ok(hub(&host)?.meetings())
}

/// The minutes of a meeting (the current one by default), as a page.
#[tauri::command]
pub async fn minutes_html(
    host: State<'_, Host>,
    meeting: Option<String>,
    lang: String,
) -> Result<String> {
    let hub = hub(&host)?;
    let meetings = hub.meetings();
    let meeting = match meeting {
        Some(id) => {
            let id = Uuid::try_parse(&id)
                .map_err(|_| CommandError::new(Code::NotFound, "no such meeting"))?;
            meetings.iter().find(|m| m.id == id)
        }
        None => meetings.last(),
    }
    .ok_or_else(|| CommandError::new(Code::NotFound, "no such meeting"))?;
    let sessions = hub.agenda(Some(meeting.id));
    let audits = minutes::Audits {
        key_fingerprint: hub.key().fingerprint,
        digests: hub.audit_digests(&sessions).await,
    };
    Ok(minutes::render(
        meeting,
        &sessions,
        &audits,
        Lang::from_accept(&lang),
        votehub::core::clock::Time::now(),
    ))
}

/// Writes a session's audit file into the data directory; returns its path.
#[tauri::command]
pub async fn export_audit(host: State<'_, Host>, id: String) -> Result<String> {
    let id = session_id(&id)?;
    let file = hub(&host)?.audit_file(id, true).await?;
    write_export(&host, &format!("audit-{id}.json"), &file)
}

#[tauri::command]
pub async fn close_session(host: State<'_, Host>, id: String) -> Result<CloseReceipt> {
    Ok(hub(&host)?.close(session_id(&id)?).await?)
}

#[tauri::command]
pub fn broadcast(host: State<'_, Host>, id: String) -> Result<SessionView> {
    Ok(hub(&host)?.broadcast(session_id(&id)?)?)
}

/// Registers pasted names (one per line; blank lines are not names).
#[tauri::command]
pub async fn register_voters(host: State<'_, Host>, names: Vec<String>) -> Result<Vec<Voter>> {
    let voters = names
        .into_iter()
        .filter(|n| !n.trim().is_empty())
        .map(|name| NewVoter {
            name,
            groups: Vec::new(),
            weight: None,
        })
        .collect::<Vec<_>>();
    Ok(hub(&host)?.register_voters(voters).await?)
}

/// Registers a roll file's members (CSV: name, groups, weight), all or none.
#[tauri::command]
pub async fn import_roll(host: State<'_, Host>, text: String) -> Result<Vec<Voter>> {
    let voters = roll_file::parse(&text)?;
    Ok(hub(&host)?.import_roll(voters).await?)
}

/// The first `limit` members a search finds (by name, or code as typed).
#[tauri::command]
pub fn roll_page(host: State<'_, Host>, query: String, limit: usize) -> Result<RollPage> {
    Ok(hub(&host)?.roll_page(&query, limit.min(1000)))
}

/// Every member's name (to pick a proxy holder).
#[tauri::command]
pub fn roll_names(host: State<'_, Host>) -> Result<Vec<String>> {
    Ok(hub(&host)?.roll_names())
}

#[tauri::command]
pub async fn edit_voter(host: State<'_, Host>, code: String, edit: MemberEdit) -> Result<Voter> {
    Ok(hub(&host)?.edit_voter(code, edit).await?)
}

/// A lost card: the member gets a new code, the old one stops working.
#[tauri::command]
pub async fn reissue_code(host: State<'_, Host>, code: String) -> Result<Voter> {
    Ok(hub(&host)?.reissue(code).await?)
}

#[tauri::command]
pub async fn give_proxy(host: State<'_, Host>, from: String, to: String) -> Result<Voter> {
    Ok(hub(&host)?.give_proxy(from, to).await?)
}

#[tauri::command]
pub async fn revoke_proxy(host: State<'_, Host>, from: String) -> Result<Voter> {
    Ok(hub(&host)?.revoke_proxy(from).await?)
}

/// Checks a member in or out of the current meeting.
#[tauri::command]
pub async fn set_presence(
    host: State<'_, Host>,
    code: String,
    present: bool,
) -> Result<Attendance> {
    Ok(hub(&host)?.set_presence(code, present).await?)
}

/// Who has voted in a roll session, by name, sorted.
#[tauri::command]
pub fn voted(host: State<'_, Host>, id: String) -> Result<Vec<String>> {
    Ok(hub(&host)?.voted(session_id(&id)?)?)
}

/// The voting cards of the whole roll, as a page to print, for
/// participants to open `url` (one of the join addresses; the first by
/// default).
#[tauri::command]
pub async fn cards_html(
    host: State<'_, Host>,
    lang: String,
    url: Option<String>,
) -> Result<String> {
    let hub = hub(&host)?;
    let urls = match host.status() {
        HubStatus::Running { join_urls, .. } => join_urls,
        _ => Vec::new(),
    };
    let url = match url {
        Some(url) if urls.contains(&url) => url,
        Some(_) => {
            return Err(CommandError::new(
                Code::InvalidBody,
                "the address must be one of the join addresses",
            ));
        }
        None => urls.into_iter().next().unwrap_or_default(),
    };
    let roll = hub.roll();
    // A QR code per member: thousands of them are CPU work.
    tauri::async_runtime::spawn_blocking(move || {
        cards::render(&roll, &url, Lang::from_accept(&lang))
    })
    .await
    .map_err(|e| CommandError::new(Code::ExportFailed, e))
}

/// Where exports go: `exports/` in the data directory.
fn exports_dir(host: &Host) -> Result<PathBuf> {
    match host.status() {
        HubStatus::Running { data_dir, .. } => Ok(data_dir.join("exports")),
        _ => Err(CommandError::new(
            Code::HubNotRunning,
            "the hub is not running",
        )),
    }
}

fn write_export(host: &Host, name: &str, bytes: &[u8]) -> Result<String> {
    let dir = exports_dir(host)?;
    let path = dir.join(name);
    std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(&path, bytes))
        .map_err(|e| {
            CommandError::new(
                Code::ExportFailed,
                format!("cannot write {}: {e}", path.display()),
            )
        })?;
    Ok(path.display().to_string())
}

/// Copies the live data (ballots, roll, logs, key, token) into a new
/// folder under the data directory while votes go on; returns the folder.
#[tauri::command]
pub async fn backup(host: State<'_, Host>) -> Result<String> {
    let data = match host.status() {
        HubStatus::Running { data_dir, .. } => data_dir,
        _ => {
            return Err(CommandError::new(
                Code::HubNotRunning,
                "the hub is not running",
            ));
        }
    };
    let dest = votehub::data_dir::backup_dir(&data);
    let made =
        tauri::async_runtime::spawn_blocking(move || votehub::data_dir::backup(&data, &dest))
            .await
            .map_err(|e| CommandError::new(Code::ExportFailed, e.to_string()))?;
    match made {
        Ok(b) => Ok(b.dest.display().to_string()),
        Err(e) => {
            tracing::error!(error = %e, "backup failed");
            Err(CommandError::new(
                Code::ExportFailed,
                format!("backup failed: {e}"),
            ))
        }
    }
}

/// Writes a session's CSV into the data directory; returns its path.
#[tauri::command]
pub async fn export_session(host: State<'_, Host>, id: String) -> Result<String> {
    let id = session_id(&id)?;
    let csv = hub(&host)?.export_csv(id).await?;
    write_export(&host, &format!("session-{id}.csv"), &csv)
}

/// Writes the roll with its codes into the data directory; returns its path.
#[tauri::command]
pub fn export_roll(host: State<'_, Host>) -> Result<String> {
    let csv = hub(&host)?.roll_csv()?;
    write_export(&host, "voter-roll.csv", &csv)
}

#[tauri::command]
pub fn qr_svg(data: String) -> Result<String> {
    cards::qr_svg(&data).ok_or_else(|| CommandError::new(Code::InvalidQr, "nothing to encode"))
}

#[tauri::command]
pub fn get_settings<R: Runtime>(app: AppHandle<R>) -> Settings {
    Settings::load(&app)
}

#[tauri::command]
pub fn save_settings<R: Runtime>(app: AppHandle<R>, settings: Settings) -> Result<()> {
    settings
        .save(&app)
        .map_err(|e| CommandError::new(Code::InvalidSettings, e))
}

/// Restarts the hub with the saved settings, or on `port` (kept in the
/// settings) after a start failure.
#[tauri::command]
pub async fn restart_hub<R: Runtime>(
    app: AppHandle<R>,
    host: State<'_, Host>,
    port: Option<u16>,
) -> Result<HubStatus> {
    let mut settings = Settings::load(&app);
    if let Some(port) = port {
        settings.port = port;
        settings
            .save(&app)
            .map_err(|e| CommandError::new(Code::InvalidSettings, e))?;
    }
    let mut launch = settings
        .launch()
        .map_err(|e| CommandError::new(Code::InvalidSettings, e))?;
    // The port chosen in the window wins, even over VOTEHUB_BIND's.
    if let Some(port) = port {
        launch.bind.set_port(port);
    }
    Ok(host.restart(&app, launch).await)
}
