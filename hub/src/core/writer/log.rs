//! Each session's log as the writer keeps it: entries appended in the same
//! transaction as the change they record, a head signed for every session
//! whose log grew in the batch, and receipts — a ballot's answer carries
//! its leaf and the head signed in the commit that recorded it.

use rand::Rng;
use rand::seq::SliceRandom;
use uuid::Uuid;

use super::{Batch, Core, CoreSession, Reply};
use crate::core::audit::entry::{
    BallotEntry, BallotWire, ClosedEntry, Entry, MemberEntry, PresenceWire, Pseudonyms, RollMember,
    VotedMember, canonical,
};
use crate::core::audit::signing::{HeadWire, lower_hex};
use crate::core::audit::tree::{Frontier, Hash};
use crate::core::clock::Time;
use crate::core::roll::Member;
use crate::core::rules::Presence;
use crate::core::session::{Electorate, Receipt, Secrecy, SessionMeta, Status, VoteReceipt};
use crate::core::store::{StoreError, StoredLog, Txn, Write};
use crate::core::tally::Tally;
use serde_json::value::RawValue;

/// A session's log: its frontier (enough for its head) and the keyed HMAC of its
/// open voters' pseudonyms.
#[derive(Debug, Clone)]
pub(crate) struct SessionLog {
    pub frontier: Frontier,
    /// Its open voters' pseudonyms, under the session's own key.
    pub pseudonyms: Pseudonyms,
}

impl SessionLog {
    pub fn restore(stored: &StoredLog) -> (SessionLog, Vec<Hash>) {
        let mut frontier = Frontier::default();
        let mut leaves = Vec::with_capacity(stored.entries.len());
        for entry in &stored.entries {
            let leaf = crate::core::audit::tree::leaf_hash(entry.as_bytes());
            frontier.push(leaf);
            leaves.push(leaf);
        }
        (
            SessionLog {
                frontier,
                pseudonyms: Pseudonyms::new(&stored.key),
            },
            leaves,
        )
    }
}

/// A leaf a batch appended to a session's log.
pub(crate) struct Appended {
    pub session: Uuid,
    /// Its index in the log.
    pub index: u64,
    pub leaf: Hash,
    /// How many subtree heads it completed (in `Batch::completed`).
    pub completed: usize,
}

/// A ballot's answer waiting for the head its batch signs.
#[derive(Clone)]
pub(crate) struct PendingReceipt {
    pub session: Uuid,
    pub tally: Tally,
    pub seq: u64,
    pub index: u64,
    pub leaf: Hash,
    /// The logged entry, canonical JSON: the leaf is its hash.
    pub entry: String,
    /// (voter key, ballot id): the answer is kept for a retry.
    pub retry: Option<(String, String)>,
}

/// A ballot decided: answered now, or once its batch's head is signed.
pub(crate) enum Cast {
    Now(String),
    Logged(Box<PendingReceipt>),
}

fn json(value: &impl serde::Serialize) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Inconsistent(e.to_string()))
}

impl Core {
    /// Appends `entry` to `session`'s log; its index and leaf hash.
    pub fn append(
        &mut self,
        session: Uuid,
        entry: &Entry,
        txn: &mut dyn Txn,
        batch: &mut Batch,
    ) -> Result<Option<(u64, Hash)>, StoreError> {
        Ok(self
            .append_text(session, entry, txn, batch)?
            .map(|(index, leaf, _)| (index, leaf)))
    }

    /// `append`, also giving the entry's canonical text (a ballot's receipt
    /// carries it, so the voter's page can see what was logged for it).
    pub fn append_text(
        &mut self,
        session: Uuid,
        entry: &Entry,
        txn: &mut dyn Txn,
        batch: &mut Batch,
    ) -> Result<Option<(u64, Hash, String)>, StoreError> {
        let Some(log) = self.logs.get_mut(&session) else {
            // A session from before votehub kept logs.
            return Ok(None);
        };
        if !batch.log_before.iter().any(|(s, _)| *s == session) {
            batch.log_before.push((session, Some(log.clone())));
        }
        let (text, leaf) = entry.leaf();
        let index = log.frontier.size();
        txn.write(&Write::Entry {
            session,
            index,
            entry: text.clone(),
        })?;
        let before = batch.completed.len();
        log.frontier
            .push_completing(leaf, |head| batch.completed.push(head));
        batch.appended.push(Appended {
            session,
            index,
            leaf,
            completed: batch.completed.len() - before,
        });
        Ok(Some((index, leaf, text)))
    }

    /// The roll as a vote's log records it when the vote opens, sorted by
    /// name: names, weights, groups and who holds each proxy.
    pub fn roll_snapshot(&self) -> Vec<RollMember> {
        let mut roll: Vec<RollMember> = self
            .roll
            .members()
            .iter()
            .map(|m| self.roll_member(m))
            .collect();
        roll.sort();
        roll
    }

    fn roll_member(&self, m: &Member) -> RollMember {
        RollMember {
            name: m.name.clone(),
            weight: m.weight,
            groups: m.groups.clone(),
            proxy: m
                .proxy_to
                .as_deref()
                .and_then(|h| self.roll.by_id(h))
                .map(|h| h.name.clone()),
        }
    }

    /// A session opens: its log begins with its settings (and, on the
    /// roll, the roll as it is now), then its opening.
    pub fn log_open(
        &mut self,
        meta: &SessionMeta,
        opened_at: Time,
        closes_at: Option<Time>,
        txn: &mut dyn Txn,
        batch: &mut Batch,
    ) -> Result<(), StoreError> {
        if self.logs.contains_key(&meta.id) {
            return Ok(());
        }
        let roll = (meta.electorate == Electorate::Roll).then(|| self.roll_snapshot());
        let key: [u8; 32] = rand::rng().random();
        txn.write(&Write::Log {
            session: meta.id,
            key,
            roll: roll
                .as_ref()
                .map(|r| String::from_utf8(canonical(r)).unwrap_or_default()),
        })?;
        batch.log_before.push((meta.id, None));
        self.logs.insert(
            meta.id,
            SessionLog {
                frontier: Frontier::default(),
                pseudonyms: Pseudonyms::new(&key),
            },
        );
        let created = Entry::created(meta, self.limits.max_proxies as u64, roll.as_deref());
        self.append(meta.id, &created, txn, batch)?;
        let opened = Entry::Opened {
            at: opened_at.to_rfc3339(),
            closes_at: closes_at.map(Time::to_rfc3339),
        };
        self.append(meta.id, &opened, txn, batch)?;
        Ok(())
    }

    /// A member added or changed on the roll: each open vote on the roll
    /// logs it, so that its ballots can be checked against the roll as it
    /// was when they were cast.
    pub fn log_member(
        &mut self,
        member: &Member,
        was: Option<&str>,
        txn: &mut dyn Txn,
        batch: &mut Batch,
    ) -> Result<(), StoreError> {
        let open: Vec<Uuid> = self
            .sessions
            .values()
            .filter(|s| s.state.status == Status::Open && s.meta.electorate == Electorate::Roll)
            .map(|s| s.meta.id)
            .collect();
        if open.is_empty() {
            return Ok(());
        }
        let entry = Entry::Member(MemberEntry {
            member: self.roll_member(member),
            was: was.filter(|w| *w != member.name).map(str::to_owned),
        });
        for session in open {
            self.append(session, &entry, txn, batch)?;
        }
        Ok(())
    }

    /// The ballot entry of a named or open ballot.
    pub fn ballot_entry(
        &self,
        session: &CoreSession,
        key: &str,
        ballot: &crate::core::tally::Ballot,
        weight: u64,
        holder: Option<&str>,
        at: Time,
    ) -> Entry {
        let voter = match session.meta.electorate {
            Electorate::Roll => self.roll.by_id(key).map(|m| m.name.clone()),
            Electorate::Open => self
                .logs
                .get(&session.meta.id)
                .map(|log| log.pseudonyms.of(key)),
        };
        Entry::Ballot(BallotEntry {
            voter,
            tracker: None,
            ballot: BallotWire::of(ballot),
            weight,
            by: holder
                .and_then(|h| self.roll.by_id(h))
                .map(|h| h.name.clone()),
            at: Some(at.to_rfc3339()),
        })
    }

    /// A session closes: a secret vote's ballots enter its log now, in a
    /// random order, then who voted (by name, sorted), then the close with
    /// its result.
    pub fn log_close(
        &mut self,
        id: Uuid,
        presence: Option<Presence>,
        txn: &mut dyn Txn,
        batch: &mut Batch,
    ) -> Result<(), StoreError> {
        let Some(session) = self.sessions.get(&id) else {
            return Ok(());
        };
        if !self.logs.contains_key(&id) {
            return Ok(());
        }
        let secret = session.meta.secrecy == Secrecy::Secret;
        let closed = Entry::Closed(ClosedEntry {
            at: session
                .state
                .closed_at
                .unwrap_or_else(|| batch.now())
                .to_rfc3339(),
            result: session
                .state
                .result
                .unwrap_or(crate::core::rules::Outcome::Rejected),
            tally: serde_json::to_value(&session.state.tally).unwrap_or_default(),
            elected: session
                .meta
                .kind
                .election()
                .map(|_| session.state.elected.elected.clone()),
            tied: session
                .meta
                .kind
                .election()
                .map(|_| session.state.elected.tied.clone()),
            presence: session
                .meta
                .rule
                .quorum_present
                .and(presence)
                .map(PresenceWire::from),
        });
        if secret {
            let (mut ballots, voters) = txn.secret_all(id)?;
            // The batch's own ballots are not written yet: they join here.
            ballots.extend(
                batch
                    .secret
                    .iter()
                    .filter(|(s, _)| *s == id)
                    .map(|(_, b)| b.clone()),
            );
            ballots.shuffle(&mut rand::rng());
            for b in ballots {
                let entry = Entry::Ballot(BallotEntry {
                    voter: None,
                    tracker: Some(b.tracker),
                    ballot: BallotWire::of(&b.ballot),
                    weight: b.weight,
                    by: None,
                    at: None,
                });
                self.append(id, &entry, txn, batch)?;
            }
            let name = |m: &str| self.roll.by_id(m).map(|m| m.name.clone());
            let mut members: Vec<VotedMember> = voters
                .iter()
                .map(|v| VotedMember {
                    name: name(&v.member).unwrap_or_else(|| "(no longer on the roll)".into()),
                    weight: v.weight,
                    by: v.holder.as_deref().and_then(name),
                })
                .collect();
            members.sort();
            self.append(id, &Entry::Voted { members }, txn, batch)?;
        }
        self.append(id, &closed, txn, batch)?;
        Ok(())
    }

    /// Signs the head of every log that grew in the batch.
    pub fn sign_heads(&mut self, batch: &mut Batch, txn: &mut dyn Txn) -> Result<(), StoreError> {
        let mut grown: Vec<Uuid> = batch.appended.iter().map(|a| a.session).collect();
        grown.sort_unstable();
        grown.dedup();
        for session in grown {
            let Some(log) = self.logs.get(&session) else {
                continue;
            };
            let head = self
                .key
                .sign_head(session, log.frontier.size(), log.frontier.root());
            txn.write(&Write::Head { session, head })?;
            batch.heads.push((session, head));
        }
        Ok(())
    }

    /// Each logged ballot's answer, now that its head is signed: kept for a
    /// retry when it has a ballot id, and sent once the batch commits.
    pub fn finish_receipts(
        &mut self,
        batch: &mut Batch,
        txn: &mut dyn Txn,
    ) -> Result<(), StoreError> {
        // Each head in JSON once, not once per ballot.
        let heads: Vec<(Uuid, Box<RawValue>)> = batch
            .heads
            .iter()
            .map(|(s, h)| Ok((*s, serde_json::value::to_raw_value(&HeadWire::from(h))?)))
            .collect::<Result<_, serde_json::Error>>()
            .map_err(|e| StoreError::Inconsistent(e.to_string()))?;
        for (reply, pending) in std::mem::take(&mut batch.pending) {
            let head = heads
                .iter()
                .find(|(s, _)| *s == pending.session)
                .map(|(_, h)| &**h);
            let answer = json(&VoteReceipt {
                tally: &pending.tally,
                seq: pending.seq,
                receipt: match (head, RawValue::from_string(pending.entry)) {
                    (Some(head), Ok(entry)) => Some(Receipt::Logged {
                        index: pending.index,
                        leaf: lower_hex(&pending.leaf),
                        entry,
                        head,
                    }),
                    _ => None,
                },
            })?;
            if let Some((voter, ballot_id)) = pending.retry {
                txn.write(&Write::Answer {
                    session: pending.session,
                    voter,
                    ballot_id,
                    answer: answer.clone(),
                })?;
            }
            batch.answer(reply, answer);
        }
        Ok(())
    }
}

/// A pending ballot's reply, answered with the batch's failure.
pub(crate) fn fail_pending(
    pending: Vec<(Reply<String>, PendingReceipt)>,
    e: &crate::core::HubError,
) {
    for (reply, _) in pending {
        let _ = reply.send(Err(e.clone()));
    }
}
