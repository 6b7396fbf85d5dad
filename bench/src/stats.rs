//! What the subscribers saw, shared by all of them: per-ballot send times,
//! latency histograms, the last tally each one saw, errors.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::api::expected_votes;

#[derive(Debug, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Option<Percentiles> {
        if h.is_empty() {
            return None;
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Some(Percentiles {
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            max: ms(h.max()),
        })
    }
}

pub fn histogram() -> Result<Histogram<u64>, String> {
    Histogram::new_with_bounds(1, 600_000_000, 3).map_err(|e| e.to_string())
}

pub struct Stats {
    pub start: Instant,
    /// Nanoseconds after `start` at which ballot k+1 was sent; 0 = not yet.
    pub sent: Vec<AtomicU64>,
    /// Latency shards, so that subscribers rarely wait for each other.
    histograms: Vec<Mutex<Histogram<u64>>>,
    pub delivered: AtomicU64,
    /// Whether deliveries are being counted (during the measured part).
    pub counting: AtomicBool,
    /// Last ballot count and `votes_for` each subscriber saw.
    last: Vec<(AtomicU64, AtomicU64)>,
    /// The `votes_for` every subscriber must end on.
    expect_for: u64,
    pub errors: AtomicU64,
    /// From sending a ballot to its acknowledgement.
    acks: Mutex<Histogram<u64>>,
    /// Elections: how many candidates, and each subscriber's newest frame,
    /// whose per-option counts are checked at the end.
    election: Option<u16>,
    frames: Vec<Mutex<Vec<u8>>>,
}

impl Stats {
    pub fn new(
        ballots: u64,
        subscribers: usize,
        election: Option<u16>,
        expect_for: u64,
    ) -> Result<Stats, String> {
        Ok(Stats {
            start: Instant::now(),
            sent: (0..ballots).map(|_| AtomicU64::new(0)).collect(),
            histograms: (0..64)
                .map(|_| histogram().map(Mutex::new))
                .collect::<Result<_, _>>()?,
            delivered: AtomicU64::new(0),
            counting: AtomicBool::new(false),
            last: (0..subscribers)
                .map(|_| (AtomicU64::new(0), AtomicU64::new(0)))
                .collect(),
            expect_for,
            errors: AtomicU64::new(0),
            acks: Mutex::new(histogram()?),
            election,
            frames: (0..if election.is_some() { subscribers } else { 0 })
                .map(|_| Mutex::new(Vec::new()))
                .collect(),
        })
    }

    pub fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// Notes that ballot number `k` (from 1) leaves now; returns the time.
    pub fn sending(&self, k: u64) -> u64 {
        let now = self.now_ns();
        if let Some(slot) = self.sent.get(k.saturating_sub(1) as usize) {
            slot.store(now, Ordering::Relaxed);
        }
        now
    }

    pub fn error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    pub fn latency(&self) -> Option<Percentiles> {
        let mut all = histogram().ok()?;
        for h in &self.histograms {
            let h = h.lock().unwrap_or_else(|e| e.into_inner());
            all.add(&*h).ok()?;
        }
        Percentiles::of(&all)
    }

    pub fn record_ack(&self, sent_ns: u64) {
        let now = self.now_ns();
        let mut h = self.acks.lock().unwrap_or_else(|e| e.into_inner());
        let _ = h.record((now.saturating_sub(sent_ns) / 1000).max(1));
    }

    pub fn acks(&self) -> Option<Percentiles> {
        Percentiles::of(&self.acks.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Records a tally subscriber `i` received: for each newly seen ballot
    /// k, the time since it was sent.
    pub fn record(&self, i: usize, text: &[u8]) {
        let Ok(text) = std::str::from_utf8(text) else {
            return;
        };
        // The number of ballots: votehub says it (`ballots`, which weights
        // do not change); the seed's count is `votes_total`.
        let Some(total) =
            number_after(text, "\"ballots\":").or_else(|| number_after(text, "\"votes_total\":"))
        else {
            return;
        };
        let Some((seen_total, seen_for)) = self.last.get(i) else {
            return;
        };
        if self.counting.load(Ordering::Relaxed) {
            self.delivered.fetch_add(1, Ordering::Relaxed);
        }
        let before = seen_total.fetch_max(total, Ordering::Relaxed);
        if let Some(f) = number_after(text, "\"votes_for\":") {
            seen_for.store(f, Ordering::Relaxed);
        }
        if total >= before
            && let Some(frame) = self.frames.get(i)
        {
            let mut frame = frame.lock().unwrap_or_else(|e| e.into_inner());
            frame.clear();
            frame.extend_from_slice(text.as_bytes());
        }
        if total > before {
            let now = self.now_ns();
            let shard = &self.histograms[i % self.histograms.len()];
            let mut h = shard.lock().unwrap_or_else(|e| e.into_inner());
            for k in before..total.min(self.sent.len() as u64) {
                let sent = self.sent[k as usize].load(Ordering::Relaxed);
                if sent > 0 && now > sent {
                    let _ = h.record(((now - sent) / 1000).max(1));
                }
            }
        }
    }

    /// Waits until every subscriber saw `ballots` with the right split (in
    /// an election, the right count for every candidate).
    pub async fn converge(&self, ballots: u64, deadline: Instant) -> bool {
        loop {
            let done = match self.election {
                None => self.last.iter().all(|(t, f)| {
                    t.load(Ordering::Relaxed) == ballots
                        && f.load(Ordering::Relaxed) == self.expect_for
                }),
                Some(n) => {
                    self.last
                        .iter()
                        .all(|(t, _)| t.load(Ordering::Relaxed) == ballots)
                        && self.frames.iter().all(|frame| {
                            let frame = frame.lock().unwrap_or_else(|e| e.into_inner());
                            option_votes(&frame) == Some(expected_votes(ballots, n))
                        })
                }
            };
            if done {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The per-option counts of an election's frame, by id.
fn option_votes(frame: &[u8]) -> Option<Vec<u64>> {
    #[derive(serde::Deserialize)]
    struct Counted {
        id: usize,
        votes: u64,
    }
    #[derive(serde::Deserialize)]
    struct Frame {
        options: Vec<Counted>,
    }
    let frame: Frame = serde_json::from_slice(frame).ok()?;
    let mut votes = vec![0; frame.options.len()];
    for o in frame.options {
        *votes.get_mut(o.id)? = o.votes;
    }
    Some(votes)
}

/// Finds `"key":` in a frame and reads the number after it: the hot path
/// of the load generator, which must keep up with the hub.
fn number_after(text: &str, key: &str) -> Option<u64> {
    let at = text.find(key)? + key.len();
    let digits = text[at..].trim_start();
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_numbers_out_of_frames() {
        let frame = r#"{"event":"vote_update","votes_for":12,"votes_against":3,"votes_total": 15}"#;
        assert_eq!(number_after(frame, "\"votes_total\":"), Some(15));
        assert_eq!(number_after(frame, "\"votes_for\":"), Some(12));
        assert_eq!(number_after(frame, "\"seq\":"), None);
    }

    #[test]
    fn a_tally_seen_records_the_latency_of_each_new_ballot() {
        let stats = Stats::new(3, 1, None, 2).expect("stats");
        stats.sending(1);
        stats.sending(2);
        stats.record(0, br#"{"votes_for":2,"votes_total":2}"#);
        let latency = stats.latency().expect("two samples");
        assert!(latency.p50 <= latency.max);
        // An older tally arriving late records nothing more.
        stats.record(0, br#"{"votes_for":1,"votes_total":1}"#);
    }

    #[test]
    fn weighed_frames_are_counted_by_ballots() {
        // Weights move votes_total by more than one per ballot: the
        // ballot count is what tells how many arrived.
        let stats = Stats::new(2, 1, None, 5).expect("stats");
        stats.sending(1);
        stats.sending(2);
        stats.record(0, br#"{"votes_for":5,"votes_total":5,"ballots":2}"#);
        assert_eq!(stats.last[0].0.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn election_frames_are_read_per_option() {
        let frame = br#"{"event":"vote_update","votes_total":3,"options":[{"id":1,"votes":1},{"id":0,"votes":2}]}"#;
        assert_eq!(option_votes(frame), Some(vec![2, 1]));
        assert_eq!(option_votes(b"{}"), None);
    }
}
