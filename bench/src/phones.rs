//! `phones`: a room of phones on a venue's network, as it really is. Each
//! phone follows the tally on `/live` and votes over HTTP with its own
//! connections; it sends each ballot with a `ballot_id` and sends it again,
//! same id, until the hub answers; it notices a silent network (a `ping`
//! unanswered) and reconnects. What an organiser wants to know before the
//! day: every acknowledged ballot counted once, every screen on the exact
//! tally, how late the screens are, how often phones had to reconnect.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::api::Api;
use crate::stats::{Percentiles, histogram};
use crate::target::Target;

/// One attempt at a ballot, or at connecting, is given up after this.
const ATTEMPT: Duration = Duration::from_secs(5);
/// A screen that heard nothing this long asks the hub whether it is there…
const QUIET: Duration = Duration::from_secs(2);
/// …and reconnects when that stays unanswered this long.
const DEAD: Duration = Duration::from_secs(3);
/// Screens must end on the hub's tally within this of the last answer.
const CONVERGE: Duration = Duration::from_secs(10);

const CHOICES: [&str; 3] = ["for", "against", "abstain"];

pub struct Plan {
    pub phones: usize,
    /// The phones' first ballots are spread over this.
    pub window: Duration,
    /// Each phone changes its mind once, after its first ballot is answered.
    pub revote: bool,
    /// A ballot unanswered this long after it was first sent is reported
    /// failed to its phone.
    pub patience: Duration,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Counts {
    #[serde(rename = "for")]
    pub for_: u64,
    pub against: u64,
    pub abstain: u64,
}

impl Counts {
    fn add(&mut self, choice: &str) {
        match choice {
            "for" => self.for_ += 1,
            "against" => self.against += 1,
            _ => self.abstain += 1,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct PhonesReport {
    pub scenario: &'static str,
    pub target: String,
    pub phones: usize,
    /// Ballots the phones cast (a change of mind is a second one).
    pub ballots: u64,
    pub acknowledged: u64,
    /// Reported failed to their phone (no answer within the patience).
    pub failed: u64,
    /// Ballots that needed more than one attempt.
    pub retried: u64,
    pub attempts: u64,
    /// What the phones' answered ballots add up to, and what the hub says.
    pub expected: Counts,
    pub hub: Counts,
    /// Every answered ballot counted, none twice: the hub's tally is what
    /// the answers add up to.
    pub exact: bool,
    /// Screens on the hub's final tally, and how long after the last
    /// answer the last of them got there.
    pub screens_exact: usize,
    pub converged_s: Option<f64>,
    /// From a ballot's first sending to each screen showing it.
    pub latency_ms: Option<Percentiles>,
    /// From a ballot's first sending to its answer.
    pub ack_ms: Option<Percentiles>,
    pub reconnections: u64,
    /// From a screen finding its connection dead to its tally back.
    pub reconnect_ms: Option<Percentiles>,
    pub duration_s: f64,
    /// The first few things that went wrong, for the reader.
    pub problems: Vec<String>,
}

impl PhonesReport {
    pub fn passed(&self) -> bool {
        self.exact && self.failed == 0 && self.screens_exact == self.phones
    }

    pub fn print(&self, json: bool) {
        if json {
            println!("{}", serde_json::to_string_pretty(self).unwrap_or_default());
            return;
        }
        let p = |p: &Option<Percentiles>| {
            p.as_ref().map_or("-".to_owned(), |p| {
                format!("p50 {:.0} · p99 {:.0} · max {:.0} ms", p.p50, p.p99, p.max)
            })
        };
        let c = |c: &Counts| {
            format!(
                "for {} · against {} · abstain {}",
                c.for_, c.against, c.abstain
            )
        };
        let rows = [
            ("target", self.target.clone()),
            ("phones", self.phones.to_string()),
            ("ballots", self.ballots.to_string()),
            ("acknowledged", self.acknowledged.to_string()),
            ("failed", self.failed.to_string()),
            (
                "retried",
                format!("{} ({} attempts in all)", self.retried, self.attempts),
            ),
            ("answers add up to", c(&self.expected)),
            ("the hub counted", c(&self.hub)),
            ("exact", if self.exact { "yes" } else { "NO" }.to_owned()),
            (
                "screens exact",
                format!(
                    "{}/{}{}",
                    self.screens_exact,
                    self.phones,
                    self.converged_s.map_or(String::new(), |s| format!(
                        ", {s:.2} s after the last answer"
                    ))
                ),
            ),
            ("ballot → screen", p(&self.latency_ms)),
            ("ballot → answer", p(&self.ack_ms)),
            ("reconnections", self.reconnections.to_string()),
            ("reconnect time", p(&self.reconnect_ms)),
            ("duration", format!("{:.1} s", self.duration_s)),
        ];
        for (k, v) in rows {
            println!("{k:>20}  {v}");
        }
        for problem in &self.problems {
            println!("{:>20}  {problem}", "problem");
        }
    }
}

/// What one phone's screen saw.
#[derive(Default)]
struct Screen {
    /// Each rise of `seq`, and when it was seen.
    seen: Vec<(u64, Instant)>,
    counts: Counts,
}

struct Shared {
    target: Arc<Target>,
    session: String,
    stop: AtomicBool,
    reconnections: AtomicU64,
    reconnect_us: Mutex<Vec<u64>>,
    problems: Mutex<Vec<String>>,
}

impl Shared {
    fn problem(&self, p: String) {
        if let Ok(mut all) = self.problems.lock()
            && all.len() < 10
        {
            all.push(p);
        }
    }
}

/// One ballot as its phone saw it.
struct Cast {
    choice: &'static str,
    first_sent: Instant,
    /// When it was answered, and the `seq` the answer carried.
    answer: Option<(Instant, u64)>,
    attempts: u64,
}

pub async fn run(api: &Api, plan: Plan, deadline: Instant) -> Result<PhonesReport, String> {
    if plan.phones == 0 || plan.phones > 20_000 {
        return Err("between 1 and 20000 phones".into());
    }
    let t0 = Instant::now();
    let session = api
        .create_session("rehearsal: phones on the venue's network")
        .await?;
    let shared = Arc::new(Shared {
        target: api.target.clone(),
        session: session.clone(),
        stop: AtomicBool::new(false),
        reconnections: AtomicU64::new(0),
        reconnect_us: Mutex::new(Vec::new()),
        problems: Mutex::new(Vec::new()),
    });
    let screens: Vec<Arc<Mutex<Screen>>> = (0..plan.phones)
        .map(|_| Arc::new(Mutex::new(Screen::default())))
        .collect();
    let mut following = tokio::task::JoinSet::new();
    for screen in &screens {
        following.spawn(follow(shared.clone(), screen.clone()));
    }
    let mut voting = tokio::task::JoinSet::new();
    let start = Instant::now();
    for i in 0..plan.phones {
        let at = start + plan.window.mul_f64(i as f64 / plan.phones as f64);
        let (shared, url) = (
            shared.clone(),
            format!("{}/api/sessions/{session}/votes", api.target.base),
        );
        let (revote, patience) = (plan.revote, plan.patience);
        voting.spawn(async move {
            tokio::time::sleep_until(at.into()).await;
            (i, phone(shared, i, url, revote, patience).await)
        });
    }
    let mut per_phone: Vec<Vec<Cast>> = (0..plan.phones).map(|_| Vec::new()).collect();
    while let Some(done) = voting.join_next().await {
        let (i, casts) = done.map_err(|e| e.to_string())?;
        per_phone[i] = casts?;
    }
    // What the answers add up to: each phone's last answered ballot.
    let mut expected = Counts::default();
    for casts in &per_phone {
        if let Some(last) = casts.iter().rev().find(|c| c.answer.is_some()) {
            expected.add(last.choice);
        }
    }
    let casts: Vec<Cast> = per_phone.into_iter().flatten().collect();
    let last_answer = casts
        .iter()
        .filter_map(|c| c.answer.map(|(t, _)| t))
        .max()
        .unwrap_or_else(Instant::now);
    let hub = hub_counts(api, &session, deadline).await?;
    // Every screen on the hub's tally, within CONVERGE of the last answer.
    let until = (last_answer + CONVERGE).min(deadline);
    let mut converged = None;
    loop {
        let exact = screens
            .iter()
            .filter(|s| s.lock().map(|s| s.counts == hub).unwrap_or(false))
            .count();
        if exact == plan.phones {
            converged = Some(last_answer.elapsed().as_secs_f64());
            break;
        }
        if Instant::now() >= until {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shared.stop.store(true, Ordering::Relaxed);
    following.abort_all();
    let screens_exact = screens
        .iter()
        .filter(|s| s.lock().map(|s| s.counts == hub).unwrap_or(false))
        .count();

    let mut latency = histogram()?;
    let mut acks = histogram()?;
    for cast in &casts {
        let Some((answered, seq)) = cast.answer else {
            continue;
        };
        let _ = acks.record(micros(answered - cast.first_sent));
        for screen in &screens {
            let Ok(s) = screen.lock() else { continue };
            let at = s.seen.partition_point(|(q, _)| *q < seq);
            if let Some((_, seen)) = s.seen.get(at) {
                let _ = latency.record(micros(seen.saturating_duration_since(cast.first_sent)));
            }
        }
    }
    let mut reconnect = histogram()?;
    if let Ok(all) = shared.reconnect_us.lock() {
        for us in all.iter() {
            let _ = reconnect.record((*us).max(1));
        }
    }
    let acknowledged = casts.iter().filter(|c| c.answer.is_some()).count() as u64;
    Ok(PhonesReport {
        scenario: "phones",
        target: api.target.base.clone(),
        phones: plan.phones,
        ballots: casts.len() as u64,
        acknowledged,
        failed: casts.len() as u64 - acknowledged,
        retried: casts.iter().filter(|c| c.attempts > 1).count() as u64,
        attempts: casts.iter().map(|c| c.attempts).sum(),
        expected,
        hub,
        exact: expected == hub,
        screens_exact,
        converged_s: converged,
        latency_ms: Percentiles::of(&latency),
        ack_ms: Percentiles::of(&acks),
        reconnections: shared.reconnections.load(Ordering::Relaxed),
        reconnect_ms: Percentiles::of(&reconnect),
        duration_s: t0.elapsed().as_secs_f64(),
        problems: shared
            .problems
            .lock()
            .map(|p| p.clone())
            .unwrap_or_default(),
    })
}

fn micros(d: Duration) -> u64 {
    (d.as_micros() as u64).max(1)
}

/// One phone's ballots: the first, then (with `revote`) a change of mind.
/// A ballot that is never answered ends the phone's voting.
async fn phone(
    shared: Arc<Shared>,
    i: usize,
    url: String,
    revote: bool,
    patience: Duration,
) -> Result<Vec<Cast>, String> {
    // Its own connections, as a phone has.
    let http = reqwest::Client::builder()
        .timeout(ATTEMPT)
        .connect_timeout(ATTEMPT)
        .pool_max_idle_per_host(1)
        .build()
        .map_err(|e| e.to_string())?;
    let voter = format!("phone-{i}");
    let mut casts = Vec::new();
    let choices = if revote {
        vec![CHOICES[i % 3], CHOICES[(i + 1) % 3]]
    } else {
        vec![CHOICES[i % 3]]
    };
    for (n, choice) in choices.into_iter().enumerate() {
        let ballot_id = format!("b-{i}-{n}-{:016x}", rand::random::<u64>());
        let cast = cast(&shared, &http, &url, &voter, choice, &ballot_id, patience).await;
        let answered = cast.answer.is_some();
        casts.push(cast);
        if !answered {
            break;
        }
    }
    Ok(casts)
}

/// Sends one ballot, and again with the same `ballot_id` after every
/// failure that may have left it unrecorded or unanswered, until answered
/// or out of patience.
async fn cast(
    shared: &Shared,
    http: &reqwest::Client,
    url: &str,
    voter: &str,
    choice: &'static str,
    ballot_id: &str,
    patience: Duration,
) -> Cast {
    let first_sent = Instant::now();
    let body = json!({"voter": voter, "choice": choice, "ballot_id": ballot_id}).to_string();
    let mut attempts = 0u64;
    let mut pause = Duration::from_millis(250);
    while first_sent.elapsed() < patience && !shared.stop.load(Ordering::Relaxed) {
        attempts += 1;
        let sent = http
            .post(url)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await;
        let status = sent.as_ref().map(|r| r.status().as_u16()).ok();
        match sent {
            Ok(r) if r.status().is_success() => {
                // An answer cut off on the way may be recorded: send again.
                if let Ok(v) = r.json::<Value>().await {
                    if let Some(seq) = v["seq"].as_u64() {
                        return Cast {
                            choice,
                            first_sent,
                            answer: Some((Instant::now(), seq)),
                            attempts,
                        };
                    }
                    shared.problem(format!("{voter}: an answer without seq: {v}"));
                    break;
                }
            }
            Ok(r) if r.status().is_client_error() => {
                let text = r.text().await.unwrap_or_default();
                shared.problem(format!("{voter}: {} {text}", status.unwrap_or(0)));
                break;
            }
            // A 5xx, a timeout, a connection lost: nothing known, same id again.
            _ => {}
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
    if first_sent.elapsed() >= patience {
        shared.problem(format!("{voter}: no answer in {} s", patience.as_secs()));
    }
    Cast {
        choice,
        first_sent,
        answer: None,
        attempts,
    }
}

/// The hub's final tally, asked again until it answers.
async fn hub_counts(api: &Api, session: &str, deadline: Instant) -> Result<Counts, String> {
    let url = format!("{}/api/sessions/{session}", api.target.base);
    loop {
        let answer = tokio::time::timeout(ATTEMPT, async {
            let r = api.http.get(&url).send().await.map_err(|e| e.to_string())?;
            r.json::<Value>().await.map_err(|e| e.to_string())
        })
        .await;
        if let Ok(Ok(v)) = answer
            && let Some(t) = v.get("tally")
        {
            let n = |k: &str| t[k].as_u64().unwrap_or(0);
            return Ok(Counts {
                for_: n("for"),
                against: n("against"),
                abstain: n("abstain"),
            });
        }
        if Instant::now() >= deadline {
            return Err("the hub never gave its final tally".into());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// One phone's screen: follows the session on `/live`, reconnecting with
/// backoff whenever the connection dies or goes silent.
async fn follow(shared: Arc<Shared>, screen: Arc<Mutex<Screen>>) {
    let mut lost: Option<Instant> = None;
    let mut pause = Duration::from_millis(250);
    while !shared.stop.load(Ordering::Relaxed) {
        let dropped = watch(&shared, &screen, &mut lost).await;
        if shared.stop.load(Ordering::Relaxed) {
            return;
        }
        if dropped {
            // It had worked: start the backoff again.
            pause = Duration::from_millis(250);
        }
        lost.get_or_insert_with(Instant::now);
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

/// One connection's life. Returns whether it got as far as a tally.
async fn watch(shared: &Shared, screen: &Mutex<Screen>, lost: &mut Option<Instant>) -> bool {
    let connect = async {
        let tcp = tokio::net::TcpStream::connect(shared.target.addr)
            .await
            .map_err(|e| e.to_string())?;
        let _ = tcp.set_nodelay(true);
        let url = format!("ws://{}/live", shared.target.host);
        tokio_tungstenite::client_async(url, tcp)
            .await
            .map(|(ws, _)| ws)
            .map_err(|e| e.to_string())
    };
    let Ok(Ok(mut ws)) = tokio::time::timeout(ATTEMPT, connect).await else {
        return false;
    };
    let subscribe = json!({"action": "subscribe", "session_id": shared.session}).to_string();
    if ws.send(Message::text(subscribe)).await.is_err() {
        return false;
    }
    let mut got_state = false;
    let mut asked: Option<Instant> = None;
    loop {
        let wait = match asked {
            Some(at) => DEAD.saturating_sub(at.elapsed()),
            None => QUIET,
        };
        match tokio::time::timeout(wait, ws.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                asked = None;
                let Ok(v) = serde_json::from_str::<Value>(text.as_str()) else {
                    continue;
                };
                let event = v["event"].as_str().unwrap_or_default();
                if !matches!(event, "vote_update" | "session_closed")
                    || v["session_id"].as_str() != Some(shared.session.as_str())
                {
                    continue;
                }
                let (Some(seq), Ok(mut s)) = (v["seq"].as_u64(), screen.lock()) else {
                    continue;
                };
                if s.seen.last().is_none_or(|(q, _)| seq > *q) {
                    s.seen.push((seq, Instant::now()));
                    let n = |k: &str| v[k].as_u64().unwrap_or(0);
                    s.counts = Counts {
                        for_: n("votes_for"),
                        against: n("votes_against"),
                        abstain: n("votes_abstain"),
                    };
                }
                if !got_state {
                    got_state = true;
                    if let Some(at) = lost.take() {
                        shared.reconnections.fetch_add(1, Ordering::Relaxed);
                        if let Ok(mut all) = shared.reconnect_us.lock() {
                            all.push(micros(at.elapsed()));
                        }
                    }
                }
            }
            Ok(Some(Ok(_))) => asked = None,
            Ok(Some(Err(_)) | None) => break,
            // Silence: ask once; a second silence means the link is gone.
            Err(_) => match asked {
                None => {
                    let ping = json!({"action": "ping"}).to_string();
                    if ws.send(Message::text(ping)).await.is_err() {
                        break;
                    }
                    asked = Some(Instant::now());
                }
                Some(_) => break,
            },
        }
    }
    got_state
}
