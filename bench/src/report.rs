//! What a run found, as a table for people or JSON for scripts.

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::stats::Percentiles;

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub scenario: &'static str,
    pub target: String,
    pub subscribers: usize,
    pub ballots: u64,
    /// Candidates, when the ballots were for an election.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub election: Option<u16>,
    /// Ballots from weighed members of the roll (`Some(true)`: a secret
    /// vote).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roll: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clients: Option<usize>,
    pub duration_s: f64,
    /// Every subscriber ended on the hub's final tally.
    pub exact: bool,
    pub errors: u64,
    /// From sending a ballot to every subscriber seeing it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<Percentiles>,
    /// From sending a ballot to the hub's answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ack_ms: Option<Percentiles>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered_messages: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_cpu_us_per_message: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ballots_per_s: Option<f64>,
    /// The server's CPU time (every thread) while the ballots were taken,
    /// per ballot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_cpu_us_per_ballot: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_kb_per_subscriber: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_cpu_s: Option<f64>,
}

impl Report {
    /// A run passes with exact tallies and no errors.
    pub fn passed(&self) -> bool {
        self.exact && self.errors == 0
    }

    pub fn print(&self, json: bool) {
        if json {
            println!("{}", serde_json::to_string_pretty(self).unwrap_or_default());
            return;
        }
        let mut rows: Vec<(&str, String)> = vec![
            ("scenario", self.scenario.to_owned()),
            ("target", self.target.clone()),
            ("subscribers", self.subscribers.to_string()),
        ];
        if self.ballots > 0 {
            rows.push(("ballots", self.ballots.to_string()));
        }
        if let Some(secret) = self.roll {
            rows.push((
                "electorate",
                if secret {
                    "roll, weights 1-3, secret".to_owned()
                } else {
                    "roll, weights 1-3".to_owned()
                },
            ));
        }
        if let Some(n) = self.election {
            rows.push(("election", format!("{n} candidates")));
        }
        if let Some(rate) = self.rate {
            rows.push(("rate", format!("{rate} ballots/s")));
        }
        if let Some(c) = self.clients {
            rows.push(("clients", c.to_string()));
        }
        if let Some(l) = &self.latency_ms {
            rows.push(("latency p50", format!("{:.1} ms", l.p50)));
            rows.push(("latency p90", format!("{:.1} ms", l.p90)));
            rows.push(("latency p99", format!("{:.1} ms", l.p99)));
            rows.push(("latency max", format!("{:.1} ms", l.max)));
        }
        if let Some(a) = &self.ack_ms {
            rows.push(("ballot answer p50", format!("{:.1} ms", a.p50)));
            rows.push(("ballot answer p99", format!("{:.1} ms", a.p99)));
        }
        if let Some(d) = self.delivered_messages {
            rows.push(("messages delivered", d.to_string()));
        }
        if let Some(c) = self.server_cpu_us_per_message {
            rows.push(("server CPU/message", format!("{c:.2} µs")));
        }
        if let Some(b) = self.ballots_per_s {
            rows.push(("ballots/s", format!("{b:.0}")));
        }
        if let Some(c) = self.server_cpu_us_per_ballot {
            rows.push(("server CPU/ballot", format!("{c:.2} µs")));
        }
        if let Some(m) = self.server_kb_per_subscriber {
            rows.push(("server memory/sub", format!("{m:.2} KB")));
        }
        rows.push(("duration", format!("{:.2} s", self.duration_s)));
        rows.push((
            "exact final tally",
            if self.exact { "yes" } else { "NO" }.to_owned(),
        ));
        rows.push(("errors", self.errors.to_string()));
        for (k, v) in rows {
            println!("{k:>20}  {v}");
        }
    }
}

/// A progress bar on the terminal (hidden when stderr is not one).
pub fn progress(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} {elapsed}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_owned());
    bar
}
