//! The data directory: where it is by default, and the admin token kept in
//! it. Shared by `votehub serve` and the desktop app.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use rand::Rng;

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
    #[error("cannot read or write the admin token in {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the admin token in {0} is empty or has spaces; delete the file to get a new one")]
    Malformed(PathBuf),
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
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                // Only the organiser's account may read it.
                options.mode(0o600);
            }
            let mut file = options.open(&path).map_err(io)?;
            file.write_all(format!("{token}\n").as_bytes())
                .map_err(io)?;
            file.sync_all().map_err(io)?;
            Ok((token, true))
        }
        Err(e) => Err(io(e)),
    }
}

fn new_token() -> String {
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
