//! The organiser's settings — bind address, port, data directory,
//! language — kept with tauri-plugin-store between runs. The env variables
//! of `votehub serve` override them for one run (tests and kiosks).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tauri::{AppHandle, Runtime};
use tauri_plugin_store::StoreExt;
use votehub::config::EnvOverrides;
use votehub::launch::TlsFiles;

const FILE: &str = "settings.json";

/// The most proxies the window lets one member hold.
const MAX_PROXIES: usize = 100;

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
    /// Proxies one member may hold at once.
    pub max_proxies: usize,
    /// HTTPS: the certificate chain and its key (PEM files); both empty
    /// serves plain HTTP.
    pub tls_cert: String,
    pub tls_key: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            bind_address: "0.0.0.0".into(),
            port: 8765,
            data_dir: String::new(),
            language: "auto".into(),
            max_proxies: 2,
            tls_cert: String::new(),
            tls_key: String::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{0:?} is not an IP address (use 0.0.0.0 for every network)")]
    BadAddress(String),
    #[error("the language is auto, fr or en")]
    BadLanguage,
    #[error("HTTPS needs both the certificate and its key")]
    HalfTls,
    #[error("a member may hold at most {MAX_PROXIES} proxies here")]
    TooManyProxies,
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
        if self.tls_cert.trim().is_empty() != self.tls_key.trim().is_empty() {
            return Err(SettingsError::HalfTls);
        }
        if self.max_proxies > MAX_PROXIES {
            return Err(SettingsError::TooManyProxies);
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
        self.check()?;
        let mut launch = votehub::launch::Settings::new(SocketAddr::new(ip, self.port), data);
        launch.max_proxies = self.max_proxies;
        let (cert, key) = (self.tls_cert.trim(), self.tls_key.trim());
        if !cert.is_empty() && !key.is_empty() {
            launch.tls = Some(TlsFiles {
                cert: PathBuf::from(cert),
                key: PathBuf::from(key),
            });
        }
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
        let s = Settings {
            tls_cert: "/etc/votehub/cert.pem".into(),
            ..Settings::default()
        };
        assert!(matches!(s.check(), Err(SettingsError::HalfTls)));
    }

    #[test]
    fn a_certificate_and_the_proxy_cap_reach_the_hub() {
        let s = Settings {
            tls_cert: "/etc/votehub/cert.pem".into(),
            tls_key: "/etc/votehub/key.pem".into(),
            max_proxies: 3,
            ..Settings::default()
        };
        let launch = s.launch().expect("launch");
        assert_eq!(launch.max_proxies, 3);
        assert_eq!(
            launch.tls.map(|t| t.cert),
            Some(PathBuf::from("/etc/votehub/cert.pem"))
        );
    }
}
