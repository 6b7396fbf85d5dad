//! Ballots as the writer decides them: who may vote and for whom (a member
//! for themself, or a holder for whom they represent), whether the session
//! takes ballots now, a retry answered as the first, a re-vote replacing
//! the voter's earlier ballot — and a secret ballot kept apart from its
//! voter.

use rand::Rng;
use rand::seq::SliceRandom;
use uuid::Uuid;

use super::log::{Cast, PendingReceipt};
use super::{Batch, CastRequest, Core, CoreSession, Decided};
use crate::core::error::HubError;
use crate::core::limits::{MAX_BALLOT_ID, MAX_TRACKER, MAX_VOTER, MIN_TRACKER};
use crate::core::roll::normalise_code;
use crate::core::session::{Electorate, Receipt, Secrecy, Status, VoteReceipt};
use crate::core::store::{BallotRecord, SecretBallot, StoreError, Txn, Voted, Wanted, Write};

/// Who a ballot counts for, and with what.
struct Counted {
    /// The voter id (open sessions) or the member's id (roll sessions).
    key: String,
    weight: u64,
    groups: Vec<String>,
    /// The member who casts it for someone else.
    holder: Option<String>,
    /// The member to mark present: whoever cast it.
    present: Option<String>,
}

fn refuse<T>(e: HubError) -> Decided<T> {
    Ok(Err(e))
}

fn json(value: &impl serde::Serialize) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Inconsistent(e.to_string()))
}

/// 24 random hex digits: the tracker the hub chooses when the device sent
/// none.
fn random_hex() -> String {
    let bytes: [u8; 12] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Core {
    /// Under whom a retried ballot was kept: the voter, the member of the
    /// code, or the member they voted for — found without asking whether
    /// the proxy still holds (a retry is answered whatever changed since).
    fn retry_key(&self, electorate: Electorate, req: &CastRequest) -> Option<String> {
        match electorate {
            Electorate::Open => Some(req.voter.clone()),
            Electorate::Roll => {
                let voter = normalise_code(&req.voter).and_then(|c| self.roll.by_code(&c))?;
                match &req.on_behalf_of {
                    None => Some(voter.id.clone()),
                    Some(giver) => normalise_code(giver)
                        .and_then(|c| self.roll.by_code(&c))
                        .or_else(|| self.roll.by_name(giver))
                        .map(|g| g.id.clone()),
                }
            }
        }
    }

    /// Who the ballot counts for, by the roll as it is now.
    fn counted(&self, electorate: Electorate, req: &CastRequest) -> Result<Counted, HubError> {
        match electorate {
            Electorate::Open => {
                if req.on_behalf_of.is_some() {
                    return Err(HubError::InvalidBallot(
                        "\"on_behalf_of\" is for sessions on the roll".into(),
                    ));
                }
                Ok(Counted {
                    key: req.voter.clone(),
                    weight: 1,
                    groups: Vec::new(),
                    holder: None,
                    present: None,
                })
            }
            Electorate::Roll => {
                let voter = normalise_code(&req.voter)
                    .and_then(|c| self.roll.by_code(&c))
                    .ok_or(HubError::NotOnRoll)?;
                match &req.on_behalf_of {
                    None => {
                        if voter.proxy_to.is_some() {
                            return Err(HubError::Represented);
                        }
                        Ok(Counted {
                            key: voter.id.clone(),
                            weight: voter.weight,
                            groups: voter.groups.clone(),
                            holder: None,
                            present: Some(voter.id.clone()),
                        })
                    }
                    Some(giver) => {
                        let giver = normalise_code(giver)
                            .and_then(|c| self.roll.by_code(&c))
                            .or_else(|| self.roll.by_name(giver))
                            .filter(|g| g.proxy_to.as_deref() == Some(voter.id.as_str()))
                            .ok_or(HubError::NotAProxy)?;
                        Ok(Counted {
                            key: giver.id.clone(),
                            weight: giver.weight,
                            groups: giver.groups.clone(),
                            holder: Some(voter.id.clone()),
                            present: Some(voter.id.clone()),
                        })
                    }
                }
            }
        }
    }

    /// Records a ballot; the answer is the receipt's JSON. A named ballot's
    /// is kept with its id (when it has one), so that a retry gets the
    /// same bytes; a secret ballot's retry is answered from the session as
    /// it shows then and the tracker the retry carries.
    pub fn cast(
        &mut self,
        id: Uuid,
        req: CastRequest,
        txn: &mut dyn Txn,
        batch: &mut Batch,
    ) -> Decided<Cast> {
        if req.voter.trim().is_empty() || req.voter.chars().count() > MAX_VOTER {
            return refuse(HubError::InvalidBallot(format!(
                "\"voter\" must be a non-empty string of at most {MAX_VOTER} characters"
            )));
        }
        if let Some(bid) = &req.ballot_id
            && (bid.is_empty()
                || bid.chars().count() > MAX_BALLOT_ID
                || bid.chars().any(char::is_control))
        {
            return refuse(HubError::InvalidBallot(format!(
                "\"ballot_id\" must have 1 to {MAX_BALLOT_ID} characters"
            )));
        }
        if let Some(t) = &req.tracker
            && !(MIN_TRACKER..=MAX_TRACKER).contains(&t.chars().count())
        {
            return refuse(HubError::InvalidBallot(format!(
                "\"tracker\" must have {MIN_TRACKER} to {MAX_TRACKER} characters"
            )));
        }
        let Some(session) = self.sessions.get(&id) else {
            return refuse(HubError::SessionNotFound);
        };
        let secret = session.meta.secrecy == Secrecy::Secret;
        if secret && req.ballot_id.is_some() {
            // A retry is answered with the tracker it carries: the hub
            // keeps none beside a member.
            match &req.tracker {
                None => {
                    return refuse(HubError::InvalidBallot(
                        "a secret ballot with a \"ballot_id\" carries its \"tracker\" too".into(),
                    ));
                }
                Some(t) if Some(t) == req.ballot_id.as_ref() => {
                    return refuse(HubError::InvalidBallot(
                        "the \"tracker\" must not be the \"ballot_id\": it would tie the ballot to its voter"
                            .into(),
                    ));
                }
                Some(_) => {}
            }
        }
        // A retry of a ballot already recorded gets its first answer and
        // changes nothing, whatever happened since: a proxy taken back,
        // the close.
        if let Some(bid) = &req.ballot_id
            && let Some(key) = self.retry_key(session.meta.electorate, &req)
        {
            if secret {
                if let Some(voted) = txn.voted(id, &key)?
                    && voted.ballot_id.as_deref() == Some(bid.as_str())
                {
                    return Ok(
                        secret_answer(session, req.tracker.as_deref().unwrap_or("")).map(Cast::Now)
                    );
                }
            } else if let Some((_, first)) = batch.pending.iter().find(|(_, p)| {
                p.session == id
                    && p.retry
                        .as_ref()
                        .is_some_and(|(voter, b)| *voter == key && b == bid)
            }) {
                // A copy within the batch of the ballot it just recorded:
                // the same answer, once the head is signed (kept once).
                return Ok(Ok(Cast::Logged(Box::new(PendingReceipt {
                    retry: None,
                    ..first.clone()
                }))));
            } else if let Some(answer) = txn.answer(id, &key, bid)? {
                return Ok(Ok(Cast::Now(answer)));
            }
        }
        let counted = match self.counted(session.meta.electorate, &req) {
            Ok(counted) => counted,
            Err(refusal) => return refuse(refusal),
        };
        let voted = if secret {
            txn.voted(id, &counted.key)?
        } else {
            None
        };
        match session.state.status {
            Status::Draft => return refuse(HubError::NotOpen),
            Status::Closed => return refuse(HubError::SessionClosed),
            Status::Open => {}
        }
        if voted.is_some() {
            return refuse(HubError::AlreadyVoted);
        }
        let ballot = match session.meta.kind.ballot(req.ballot) {
            Ok(ballot) => ballot,
            Err(why) => return refuse(HubError::InvalidBallot(why)),
        };
        let previous = if secret {
            None
        } else {
            txn.ballot(id, &counted.key)?
        };
        if previous.is_none() && session.state.tally.ballots >= self.limits.max_ballots_per_session
        {
            return refuse(HubError::Full("this session has reached its ballot limit"));
        }
        // Changes of mind are not counted above, but each one is a log
        // entry kept for good: they stop once the log holds twice the
        // ballot limit (first ballots are never refused for it: one voter
        // changing their mind without end must not lock the others out).
        if previous.is_some()
            && self.logs.get(&id).is_some_and(|l| {
                l.frontier.size() >= self.limits.max_ballots_per_session.saturating_mul(2)
            })
        {
            return refuse(HubError::Full("this session's log has reached its limit"));
        }
        let meeting = session.meta.meeting;
        // The register of who voted.
        if session.meta.electorate == Electorate::Roll
            && self
                .voted
                .entry(id)
                .or_default()
                .insert(counted.key.clone())
        {
            batch.voted.push((id, counted.key.clone()));
        }
        let now = batch.now();
        // The log's entry, made while the session is at hand (a secret
        // ballot enters the log at the close).
        let entry = (!secret).then(|| {
            self.ballot_entry(
                session,
                &counted.key,
                &ballot,
                counted.weight,
                counted.holder.as_deref(),
                now,
            )
        });
        batch.remember(id, Some(session));
        let Some(session) = self.sessions.get_mut(&id) else {
            return refuse(HubError::SessionNotFound);
        };
        let state = &mut session.state;
        if let Some(old) = &previous {
            state.tally.remove(&old.ballot, old.weight, &old.groups);
        }
        state.tally.add(&ballot, counted.weight, &counted.groups);
        state.seq += 1;
        let answer = if secret {
            let tracker = req.tracker.clone().unwrap_or_else(random_hex);
            // Kept beside the member: that they voted, and the ballot id
            // for a retry — not the answer (its seq would say when they
            // voted), not the tracker (it would say what).
            txn.write(&Write::SecretVoted {
                session: id,
                member: counted.key.clone(),
                holder: counted.holder.clone(),
                weight: counted.weight,
                voted: Voted {
                    ballot_id: req.ballot_id.clone(),
                },
            })?;
            let answer = json(&VoteReceipt {
                tally: &state.tally.masked(),
                seq: state.seq,
                receipt: Some(Receipt::Secret { tracker: &tracker }),
            })?;
            batch.secret.push((
                id,
                SecretBallot {
                    ballot,
                    weight: counted.weight,
                    tracker,
                },
            ));
            Cast::Now(answer)
        } else {
            let (tally, seq) = (state.tally.clone(), state.seq);
            txn.write(&Write::Ballot {
                session: id,
                record: BallotRecord {
                    voter: counted.key.clone(),
                    ballot,
                    cast_at: now,
                    weight: counted.weight,
                    groups: counted.groups,
                    holder: counted.holder,
                },
            })?;
            let logged = match &entry {
                Some(entry) => self.append_text(id, entry, txn, batch)?,
                None => None,
            };
            let retry = req.ballot_id.map(|bid| (counted.key.clone(), bid));
            match logged {
                // Answered once the batch's head is signed.
                Some((index, leaf, entry)) => Cast::Logged(Box::new(PendingReceipt {
                    session: id,
                    tally,
                    seq,
                    index,
                    leaf,
                    entry,
                    retry,
                })),
                // A session from before votehub kept logs: no receipt.
                None => {
                    let answer = json(&VoteReceipt {
                        tally: &tally,
                        seq,
                        receipt: None,
                    })?;
                    if let Some((voter, ballot_id)) = retry {
                        txn.write(&Write::Answer {
                            session: id,
                            voter,
                            ballot_id,
                            answer: answer.clone(),
                        })?;
                    }
                    Cast::Now(answer)
                }
            }
        };
        // A ballot checks its voter in.
        if let Some(member) = counted.present
            && meeting == self.current_meeting()
        {
            if let Some(old) = &previous {
                let cast_by = old.holder.as_deref().unwrap_or(&old.voter);
                if cast_by != member {
                    self.keep_checked_in(cast_by, txn, batch)?;
                }
            }
            self.ballot_checks_in(&member, txn, batch)?;
        }
        Ok(Ok(answer))
    }

    /// Asks the store at once what the batch's named ballots will ask one
    /// by one: each voter's current ballot and each retry's first answer
    /// (a secret ballot asks whether its member voted: not read ahead).
    pub(super) fn read_ahead<'a>(
        &self,
        casts: impl Iterator<Item = (Uuid, &'a CastRequest)>,
        txn: &mut dyn Txn,
    ) -> Result<(), StoreError> {
        if !txn.reads_ahead() {
            return Ok(());
        }
        let mut wanted: Vec<Wanted> = Vec::new();
        for (id, req) in casts {
            let Some(session) = self.sessions.get(&id) else {
                continue;
            };
            if session.meta.secrecy == Secrecy::Secret {
                continue;
            }
            if let Some(voter) = self.retry_key(session.meta.electorate, req) {
                wanted.push(Wanted {
                    session: id,
                    voter,
                    ballot_id: req.ballot_id.clone(),
                });
            }
        }
        if wanted.is_empty() {
            return Ok(());
        }
        txn.read_ahead(&wanted)
    }

    /// Writes the batch's secret ballots in an order unrelated to their
    /// arrival, then puts every ballot of the secret votes it closed in a
    /// random order.
    pub fn write_secret(&self, batch: &mut Batch, txn: &mut dyn Txn) -> Result<(), StoreError> {
        batch.secret.shuffle(&mut rand::rng());
        for (session, ballot) in batch.secret.drain(..) {
            txn.write(&Write::SecretBallot { session, ballot })?;
        }
        for session in &batch.shuffle {
            txn.write(&Write::ShuffleSecret(*session))?;
        }
        Ok(())
    }
}

/// The answer to a retry of a secret ballot: the session as it shows now
/// (counts only) and the tracker the retry carries.
fn secret_answer(session: &CoreSession, tracker: &str) -> Result<String, HubError> {
    serde_json::to_string(&VoteReceipt {
        tally: &session.state.tally.masked(),
        seq: session.state.seq,
        receipt: Some(Receipt::Secret { tracker }),
    })
    .map_err(|e| HubError::Store(std::sync::Arc::new(StoreError::Inconsistent(e.to_string()))))
}
