//! A consistent copy of the database while the hub runs (`votehub backup`).

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::{APPLICATION_ID, DB_FILE};
use crate::core::store::StoreError;

/// What a backup copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Copied {
    pub bytes: u64,
    pub sessions: u64,
    pub ballots: u64,
}

/// Copies the database in `dir` to `dest` (a new file) while the hub may be
/// writing to it: SQLite's online backup, every page in one step, so the
/// copy is the database as of one moment — every commit before it, nothing
/// half of one after — and the writer is never held up (WAL: readers and
/// the writer do not block each other). From this process or another one.
/// The copy is checked (`quick_check`) and synced before this returns.
pub fn backup(dir: &Path, dest: &Path) -> Result<Copied, StoreError> {
    let path = dir.join(DB_FILE);
    if !path.exists() {
        return Err(StoreError::Dir {
            path: path.clone(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no votehub database here"),
        });
    }
    let corrupt = |source: rusqlite::Error| StoreError::Corrupt {
        path: path.clone(),
        source: Box::new(source),
    };
    let source =
        Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(corrupt)?;
    source.busy_timeout(std::time::Duration::from_secs(10))?;
    let app_id: i32 = source
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(corrupt)?;
    if app_id != APPLICATION_ID {
        return Err(StoreError::Foreign { path });
    }
    let mut copy = Connection::open_with_flags(
        dest,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
    )?;
    {
        let backup = rusqlite::backup::Backup::new(&source, &mut copy)?;
        // -1: all pages under one read transaction. Done in steps, a
        // backup restarts whenever another connection writes, and a hub
        // taking ballots writes all the time.
        let mut tries = 0;
        loop {
            match backup.step(-1)? {
                rusqlite::backup::StepResult::Done => break,
                _ if tries < 100 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                _ => {
                    return Err(StoreError::Inconsistent(
                        "the database stayed locked: no backup made".into(),
                    ));
                }
            }
        }
    }
    let check: String = copy.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
    if check != "ok" {
        return Err(StoreError::Inconsistent(format!(
            "the copy fails its check: {check}"
        )));
    }
    let count = |table: &str| -> Result<u64, StoreError> {
        Ok(
            copy.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| {
                r.get::<_, i64>(0)
            })? as u64,
        )
    };
    let (sessions, ballots) = (
        count("sessions")?,
        count("ballots")? + count("secret_ballots")?,
    );
    drop(copy);
    let file = std::fs::File::open(dest).map_err(|source| StoreError::Dir {
        path: dest.to_owned(),
        source,
    })?;
    file.sync_all().map_err(|source| StoreError::Dir {
        path: dest.to_owned(),
        source,
    })?;
    let bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
    Ok(Copied {
        bytes,
        sessions,
        ballots,
    })
}
