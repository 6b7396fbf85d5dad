//! Wall-clock time, to the millisecond: when things happened, and the
//! deadlines of timed votes. The wall clock decides deadlines, not a timer
//! (a laptop that slept has missed no deadline: it applies it on waking).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A moment, in milliseconds since the Unix epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time(i64);

impl Time {
    pub fn now() -> Time {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        Time(since.as_millis() as i64)
    }

    pub fn from_millis(ms: i64) -> Time {
        Time(ms)
    }

    pub fn millis(self) -> i64 {
        self.0
    }

    pub fn plus_seconds(self, seconds: u64) -> Time {
        Time(self.0.saturating_add((seconds as i64).saturating_mul(1000)))
    }

    /// How long from `self` until `later` (zero if it is not later).
    pub fn until(self, later: Time) -> Duration {
        Duration::from_millis(later.0.saturating_sub(self.0).max(0) as u64)
    }

    /// RFC 3339 in UTC, to the millisecond: `2026-11-29T14:05:00.250Z`.
    pub fn to_rfc3339(self) -> String {
        let nanos = i128::from(self.0) * 1_000_000;
        OffsetDateTime::from_unix_timestamp_nanos(nanos)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
    }

    /// Any RFC 3339 time (with any offset), to the millisecond.
    pub fn parse(s: &str) -> Option<Time> {
        let t = OffsetDateTime::parse(s.trim(), &Rfc3339).ok()?;
        let ms = t.unix_timestamp_nanos() / 1_000_000;
        i64::try_from(ms).ok().map(Time)
    }
}

impl std::fmt::Display for Time {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Time {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Time, D::Error> {
        let s = String::deserialize(d)?;
        Time::parse(&s).ok_or_else(|| serde::de::Error::custom("not an RFC 3339 time"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_rfc3339_to_the_millisecond() {
        let t = Time::from_millis(1_795_000_000_123);
        assert_eq!(t.to_rfc3339(), "2026-11-18T11:06:40.123Z");
        assert_eq!(Time::parse(&t.to_rfc3339()), Some(t));
        assert_eq!(
            Time::parse("2026-11-18T12:06:40.123+01:00"),
            Some(t),
            "offsets are understood"
        );
        assert_eq!(Time::parse("yesterday"), None);
        assert_eq!(t.plus_seconds(2).millis(), t.millis() + 2000);
        assert_eq!(t.until(t.plus_seconds(1)), Duration::from_secs(1));
        assert_eq!(t.plus_seconds(1).until(t), Duration::ZERO);
    }
}
