//! The data directory: where it is by default, and the admin token and the
//! signing key kept in it. Shared by `votehub serve` and the desktop app.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use rand::Rng;

use crate::core::audit::signing::Key;

pub const TOKEN_FILE: &str = "admin-token";

/// The platform's data directory for votehub (`~/.local/share/votehub` on
/// Linux), or `./votehub-data` where the platform has none.
pub fn default_dir() -> PathBuf {
    directories::ProjectDirs::from("org", "votehub", "votehub")
        .map(|d| d.data_dir().to_owned())
        .unwrap_or_else(|| PathBuf::from("votehub-data"))
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("cannot read or write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the admin token in {0} is empty or has spaces; delete the file to get a new one")]
    Malformed(PathBuf),
    #[error(
        "the signing key in {0} is damaged; restore it from a backup (the logs' heads were signed with it)"
    )]
    BadKey(PathBuf),
}

/// Where the key that signs the logs' heads is kept.
pub const KEY_FILE: &str = "signing-key";

/// Writes `text` to a new file only the organiser's account may read, and
/// syncs it.
fn create_private(path: &Path, text: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

/// A signing key from the hex of its 32-byte seed (as kept on disk, or in
/// a cluster's database).
pub fn key_from_hex(text: &str) -> Option<Key> {
    let mut seed = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut seed).ok()?;
    Some(Key::from_seed(&seed))
}

/// The hub's signing key, made at first start (64 hex digits, mode 0600).
/// A damaged key file is refused, never replaced: the heads signed with it
/// must stay checkable.
pub fn load_or_create_key(dir: &Path) -> Result<Key, TokenError> {
    let path = dir.join(KEY_FILE);
    let io = |source| TokenError::Io {
        path: path.clone(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => key_from_hex(&text).ok_or_else(|| TokenError::BadKey(path.clone())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = Key::generate();
            create_private(&path, &format!("{}\n", hex::encode(key.seed()))).map_err(io)?;
            Ok(key)
        }
        Err(e) => Err(io(e)),
    }
}

/// The admin token kept in `dir`, made on first use. Returns the token and
/// whether it was just made (so that it is printed once, not at every start).
pub fn load_or_create_token(dir: &Path) -> Result<(String, bool), TokenError> {
    let path = dir.join(TOKEN_FILE);
    let io = |source| TokenError::Io {
        path: path.clone(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let token = text.trim().to_owned();
            if token.is_empty() || token.contains(char::is_whitespace) {
                return Err(TokenError::Malformed(path));
            }
            Ok((token, false))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let token = new_token();
            // Only the organiser's account may read it.
            create_private(&path, &format!("{token}\n")).map_err(io)?;
            Ok((token, true))
        }
        Err(e) => Err(io(e)),
    }
}

/// What `backup` made.
#[derive(Debug)]
pub struct Backup {
    pub dest: PathBuf,
    pub copied: crate::store::Copied,
    /// The files copied beside the database (the key, the token).
    pub files: Vec<&'static str>,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0} exists and is not empty: back up into a new directory")]
    NotEmpty(PathBuf),
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] crate::core::store::StoreError),
}

/// Copies the live data in `dir` — the database (ballots, roll, logs), the
/// signing key and the admin token — into `dest`, a new or empty directory,
/// while a hub may be running on `dir`. `votehub serve --data DEST` starts
/// where the copy was taken. Nothing is left half-written: a failure
/// removes what it made.
pub fn backup(dir: &Path, dest: &Path) -> Result<Backup, BackupError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| BackupError::Io { path, source }
    };
    let fresh = match std::fs::read_dir(dest) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(BackupError::NotEmpty(dest.to_owned()));
            }
            false
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::DirBuilderExt;
                builder.mode(0o700);
            }
            builder.create(dest).map_err(io(dest))?;
            true
        }
        Err(e) => return Err(io(dest)(e)),
    };
    let made = (|| {
        // The key and the token first: a database without its key could
        // not extend its signed logs.
        let mut files = Vec::new();
        for name in [KEY_FILE, TOKEN_FILE] {
            match std::fs::read_to_string(dir.join(name)) {
                Ok(text) => {
                    create_private(&dest.join(name), &text).map_err(io(&dest.join(name)))?;
                    files.push(name);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(&dir.join(name))(e)),
            }
        }
        let copied = crate::store::backup(dir, &dest.join(crate::store::DB_FILE))?;
        // The new names themselves survive a power cut.
        #[cfg(unix)]
        std::fs::File::open(dest)
            .and_then(|d| d.sync_all())
            .map_err(io(dest))?;
        Ok(Backup {
            dest: dest.to_owned(),
            copied,
            files,
        })
    })();
    if made.is_err() {
        if fresh {
            let _ = std::fs::remove_dir_all(dest);
        } else if let Ok(entries) = std::fs::read_dir(dest) {
            for entry in entries.flatten() {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    made
}

/// Where the window's backups go: `DIR/backups/<UTC time>/` (the organiser
/// copies it to a stick; a second disk is what survives the laptop).
pub fn backup_dir(dir: &Path) -> PathBuf {
    let now = time::OffsetDateTime::now_utc();
    dir.join("backups").join(format!(
        "{:04}-{:02}-{:02}T{:02}-{:02}-{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    ))
}

pub fn new_token() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..32)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_made_once_then_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (first, made) = load_or_create_token(dir.path()).expect("create");
        assert!(made);
        assert_eq!(first.len(), 32);
        let (again, made) = load_or_create_token(dir.path()).expect("load");
        assert!(!made);
        assert_eq!(first, again);
    }
}
