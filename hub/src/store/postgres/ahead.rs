//! What a batch's ballots will ask, read at once ([`Txn::read_ahead`]):
//! each voter's current ballot and each retry's first answer, one query
//! per session instead of a round trip per ballot while the session's row
//! is locked — the lock every node's ballots for that session wait on.
//! Kept up to date with the batch's own writes, forgotten with it.
//!
//! [`Txn::read_ahead`]: crate::core::store::Txn::read_ahead

use std::collections::{HashMap, HashSet};

use deadpool_postgres::ClientWrapper;
use uuid::Uuid;

use super::read;
use super::voters::{Plan, Seen, Voters};
use crate::core::store::{BallotRecord, StoreError, Wanted};

/// One session's answers read ahead: `None` where the store has none.
#[derive(Default)]
struct Known {
    ballots: HashMap<String, Option<BallotRecord>>,
    /// By voter and `ballot_id`.
    answers: HashMap<(String, String), Option<String>>,
}

#[derive(Default)]
pub(super) struct Ahead {
    sessions: HashMap<Uuid, Known>,
}

impl Ahead {
    /// Reads what `wanted` asks, inside the transaction (after the batch's
    /// queued writes: the caller flushes them first) and under the
    /// sessions' locks (`locked`); gives what it learnt of who voted, for
    /// `sets` once the batch commits. `written`: the voters whose ballots
    /// this transaction wrote already (asked like any voter who may have a
    /// ballot).
    pub async fn fill(
        &mut self,
        c: &ClientWrapper,
        wanted: &[Wanted],
        sets: &Voters,
        locked: &[(Uuid, i64)],
        written: &HashMap<Uuid, Vec<String>>,
    ) -> Result<Vec<(Uuid, Seen)>, StoreError> {
        // Per session: the voters, and the (voter, ballot id) pairs of
        // the retries as two columns.
        let mut by_session: HashMap<Uuid, [Vec<String>; 3]> = HashMap::new();
        for w in wanted {
            let [voters, retried, ids] = by_session.entry(w.session).or_default();
            voters.push(w.voter.clone());
            if let Some(id) = &w.ballot_id {
                retried.push(w.voter.clone());
                ids.push(id.clone());
            }
        }
        let mut seen = Vec::new();
        for (session, [voters, retried, ids]) in by_session {
            let plan = match locked.iter().find(|(s, _)| *s == session) {
                Some(&(_, seq)) => {
                    let wrote = written.get(&session).map_or(&[][..], Vec::as_slice);
                    sets.plan(session, seq, &voters, wrote)
                }
                // Not locked (never so for a ballot): every voter asked.
                None => Plan::Current {
                    ask: voters.clone(),
                },
            };
            let ask = |list: Vec<String>| async move {
                if list.is_empty() {
                    return Ok(Vec::new());
                }
                read::ballots_of(c, session, &list).await
            };
            let answers = read::answers_of(c, session, &retried, &ids);
            let (ballots, answers) = match plan {
                Plan::All { seq } => {
                    let (all, ballots, answers) = tokio::try_join!(
                        read::voters_since(c, session, None),
                        ask(voters.clone()),
                        answers
                    )?;
                    seen.push((session, Seen::All { seq, voters: all }));
                    (ballots, answers)
                }
                Plan::Since {
                    seq,
                    since,
                    ask: some,
                } => {
                    let asked: HashSet<String> = some.iter().cloned().collect();
                    let (lately, mut ballots, answers) = tokio::try_join!(
                        read::voters_since(c, session, Some(since)),
                        ask(some),
                        answers
                    )?;
                    // Voters of this batch who voted on another node since:
                    // their ballots too (a second round trip, rare).
                    let recent: HashSet<&String> = lately.iter().collect();
                    let more: Vec<String> = voters
                        .iter()
                        .filter(|v| !asked.contains(*v) && recent.contains(v))
                        .cloned()
                        .collect();
                    ballots.extend(ask(more).await?);
                    seen.push((
                        session,
                        Seen::Since {
                            seq,
                            voters: lately,
                        },
                    ));
                    (ballots, answers)
                }
                Plan::Current { ask: some } => tokio::try_join!(ask(some), answers)?,
            };
            let known = self.sessions.entry(session).or_default();
            for voter in voters {
                known.ballots.entry(voter).or_insert(None);
            }
            for b in ballots {
                known.ballots.insert(b.voter.clone(), Some(b));
            }
            for w in wanted.iter().filter(|w| w.session == session) {
                if let Some(id) = &w.ballot_id {
                    known
                        .answers
                        .entry((w.voter.clone(), id.clone()))
                        .or_insert(None);
                }
            }
            for (voter, id, answer) in answers {
                known.answers.insert((voter, id), Some(answer));
            }
        }
        Ok(seen)
    }

    /// The voter's ballot, when it was read ahead.
    pub fn ballot(&self, session: Uuid, voter: &str) -> Option<Option<BallotRecord>> {
        self.sessions.get(&session)?.ballots.get(voter).cloned()
    }

    /// The answer kept under `ballot_id`, when it was read ahead.
    pub fn answer(&self, session: Uuid, voter: &str, ballot_id: &str) -> Option<Option<String>> {
        self.sessions
            .get(&session)?
            .answers
            .get(&(voter.to_owned(), ballot_id.to_owned()))
            .cloned()
    }

    /// The batch recorded `record`: a later read of it sees it.
    pub fn wrote_ballot(&mut self, session: Uuid, record: &BallotRecord) {
        if let Some(slot) = self
            .sessions
            .get_mut(&session)
            .and_then(|k| k.ballots.get_mut(&record.voter))
        {
            *slot = Some(record.clone());
        }
    }

    /// The batch kept an answer under `ballot_id`.
    pub fn wrote_answer(&mut self, session: Uuid, voter: &str, ballot_id: &str, answer: &str) {
        if let Some(known) = self.sessions.get_mut(&session) {
            let key = (voter.to_owned(), ballot_id.to_owned());
            if let Some(slot) = known.answers.get_mut(&key) {
                *slot = Some(answer.to_owned());
            }
        }
    }

    /// A session's rows went (deleted): nothing read of it holds.
    pub fn forget(&mut self, session: Uuid) {
        self.sessions.remove(&session);
    }
}
