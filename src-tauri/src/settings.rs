//! The organiser's settings — bind address, port, data directory,
//! language — kept with tauri-plugin-store between runs. The env variables
//! of `votehub serve` override them for one run (tests and kiosks).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tauri::{AppHandle, Runtime};
use tauri_plugin_store::StoreExt;
use votehub::config::EnvOverrides;

const FILE: &str = "settings.json";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// 0.0.0.0 makes the hub reachable from the LAN.
    pub bind_address: String,
    pub port: u16,
    /// Empty: the platform data directory, shared with `votehub serve`.
    pub data_dir: String,
    /// "auto" follows the system; "fr" or "en".
    pub language: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            bind_address: "0.0.0.0".into(),
            port: 8765,
            data_dir: String::new(),
            language: "auto".into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{0:?} is not an IP address (use 0.0.0.0 for every network)")]
    BadAddress(String),
    #[error("the language is auto, fr or en")]
    BadLanguage,
    #[error("cannot keep the settings: {0}")]
    Store(#[from] tauri_plugin_store::Error),
    #[error("{0}")]
    Env(String),
}

impl Settings {
    pub fn load<R: Runtime>(app: &AppHandle<R>) -> Settings {
        let Ok(store) = app.store(FILE) else {
            return Settings::default();
        };
        store
            .get("settings")
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default()
    }

    pub fn check(&self) -> Result<(), SettingsError> {
        self.bind_address
            .parse::<IpAddr>()
            .map_err(|_| SettingsError::BadAddress(self.bind_address.clone()))?;
        if !["auto", "fr", "en"].contains(&self.language.as_str()) {
            return Err(SettingsError::BadLanguage);
        }
        Ok(())
    }

    pub fn save<R: Runtime>(&self, app: &AppHandle<R>) -> Result<(), SettingsError> {
        self.check()?;
        let store = app.store(FILE)?;
        store.set("settings", serde_json::to_value(self).unwrap_or_default());
        store.save()?;
        Ok(())
    }

    /// What the hub starts with: these settings, unless the environment
    /// says otherwise for this run (read by the hub's own `config`, exactly
    /// as `votehub serve` reads it).
    pub fn launch(&self) -> Result<votehub::launch::Settings, SettingsError> {
        let ip: IpAddr = self
            .bind_address
            .parse()
            .map_err(|_| SettingsError::BadAddress(self.bind_address.clone()))?;
        let data = Some(self.data_dir.trim())
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(votehub::data_dir::default_dir);
        let mut launch = votehub::launch::Settings::new(SocketAddr::new(ip, self.port), data);
        EnvOverrides::from_env()
            .map_err(SettingsError::Env)?
            .apply(&mut launch);
        Ok(launch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_reach_the_lan() {
        let s = Settings::default();
        assert!(s.check().is_ok());
        assert_eq!(s.port, 8765);
    }

    #[test]
    fn bad_values_are_refused() {
        let s = Settings {
            bind_address: "my laptop".into(),
            ..Settings::default()
        };
        assert!(s.check().is_err());
        let s = Settings {
            language: "de".into(),
            ..Settings::default()
        };
        assert!(s.check().is_err());
    }
}
