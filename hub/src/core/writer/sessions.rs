//! The agenda as the writer decides it: creating, editing, deleting,
//! ordering and opening sessions, extending and closing them — by a
//! moderator or at their deadline — and beginning a new meeting.

use std::sync::Arc;

use uuid::Uuid;

use super::{Batch, Core, CoreSession, Decided};
use crate::core::audit::entry::Entry;
use crate::core::clock::Time;
use crate::core::error::HubError;
use crate::core::limits::MAX_DURATION_S;
use crate::core::meeting::Meeting;
use crate::core::rules::{Elected, Outcome, Presence, RuleSpec, elect};
use crate::core::session::{
    CloseReceipt, Deadline, Secrecy, SessionKind, SessionMeta, SessionState, Status,
};
use crate::core::spec::SessionSpec;
use crate::core::store::{StoreError, Txn, Write};

impl Core {
    /// The meeting sessions are created in.
    pub fn current_meeting(&self) -> Uuid {
        self.meetings.last().map(|m| m.id).unwrap_or_default()
    }

    /// The current meeting's sessions, in agenda order.
    fn agenda(&self) -> Vec<Uuid> {
        let meeting = self.current_meeting();
        let mut ids: Vec<(u32, Uuid)> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.meta.meeting == meeting)
            .map(|(id, s)| (s.state.position, *id))
            .collect();
        ids.sort_unstable();
        ids.into_iter().map(|(_, id)| id).collect()
    }

    pub fn create(
        &mut self,
        spec: SessionSpec,
        txn: &mut dyn Txn,
        batch: &mut Batch,
    ) -> Decided<(Uuid, Vec<String>)> {
        if self.sessions.len() >= self.limits.max_sessions {
            return Ok(Err(HubError::Full("too many sessions on this hub")));
        }
        if spec.title.is_none() {
            return Ok(Err(HubError::InvalidBody(
                "a session needs a \"title\"".into(),
            )));
        }
        let status = spec.status.unwrap_or(Status::Open);
        if status == Status::Closed {
            return Ok(Err(HubError::InvalidSession(
                "a session is made \"draft\" or \"open\"".into(),
            )));
        }
        let now = batch.now();
        let checked = match spec.check(self.roll.total_weight(), now) {
            Ok(checked) => checked,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let meta = SessionMeta {
            id: Uuid::new_v4(),
            meeting: self.current_meeting(),
            title: checked.title,
            description: checked.description,
            kind: checked.kind,
            rule: checked.rule,
            // Opened now: its W is the roll's weight already.
            w_from_roll: checked.w_from_roll && status == Status::Draft,
            electorate: checked.electorate,
            secrecy: checked.secrecy,
            deadline: checked.deadline,
            created_at: now,
        };
        let warnings = self.warnings(&meta);
        let position = self.agenda().len() as u32 + 1;
        let mut state = SessionState::new(&meta, Status::Draft, position);
        if status == Status::Open {
            start(&meta, &mut state, now);
        }
        txn.write(&Write::Session(meta.clone()))?;
        let id = meta.id;
        if status == Status::Open {
            self.log_open(&meta, now, state.closes_at, txn, batch)?;
        }
        batch.remember(id, None);
        batch.listed = true;
        self.sessions.insert(
            id,
            CoreSession {
                meta: Arc::new(meta),
                state,
            },
        );
        Ok(Ok((id, warnings)))
    }

    /// What the organiser should know about a session being made: in a
    /// secret vote, a member whose weight no one else has can be recognised
    /// in the tally.
    fn warnings(&self, meta: &SessionMeta) -> Vec<String> {
        if meta.secrecy != Secrecy::Secret {
            return Vec::new();
        }
        let mut seen: std::collections::HashMap<u64, usize> = std::collections::HashMap::new();
        for m in self.roll.members() {
            *seen.entry(m.weight).or_default() += 1;
        }
        let mut unique: Vec<u64> = seen
            .into_iter()
            .filter(|(_, n)| *n == 1)
            .map(|(w, _)| w)
            .collect();
        unique.sort_unstable();
        if unique.is_empty() {
            return Vec::new();
        }
        let shown: Vec<String> = unique.iter().take(5).map(u64::to_string).collect();
        vec![format!(
            "{} member(s) have a weight no one else has ({}{}): their ballot can be recognised in the tally of this secret vote",
            unique.len(),
            shown.join(", "),
            if unique.len() > 5 { ", …" } else { "" }
        )]
    }

    /// Every spec becomes a draft at the end of the agenda — all of them,
    /// or none when one is refused (the answer names its line).
    pub fn import(
        &mut self,
        specs: Vec<(usize, SessionSpec)>,
        txn: &mut dyn Txn,
        batch: &mut Batch,
    ) -> Decided<Vec<Uuid>> {
        if specs.is_empty() {
            return Ok(Err(HubError::InvalidSession(
                "the agenda file lists no vote".into(),
            )));
        }
        let now = batch.now();
        for (line, spec) in &specs {
            if let Some(Status::Open | Status::Closed) = spec.status {
                return Ok(Err(HubError::InvalidSession(format!(
                    "line {line}: an imported vote is a draft; open it when the room gets there"
                ))));
            }
            if let Err(e) = spec.clone().check(self.roll.len() as u64, now) {
                return Ok(Err(HubError::InvalidSession(format!(
                    "line {line}: {}",
                    e.public_message()
                ))));
            }
        }
        if self.sessions.len() + specs.len() > self.limits.max_sessions {
            return Ok(Err(HubError::Full("too many sessions on this hub")));
        }
        let mut ids = Vec::with_capacity(specs.len());
        for (line, mut spec) in specs {
            spec.status = Some(Status::Draft);
            match self.create(spec, txn, batch)? {
                Ok((id, _)) => ids.push(id),
                // Checked above; a refusal here is still reported whole.
                Err(e) => {
                    return Ok(Err(HubError::InvalidSession(format!(
                        "line {line}: {}",
                        e.public_message()
                    ))));
                }
            }
        }
        Ok(Ok(ids))
    }

    pub fn edit(
        &mut self,
        id: Uuid,
        spec: SessionSpec,
        txn: &mut dyn Txn,
        batch: &mut Batch,
    ) -> Decided<()> {
        let Some(session) = self.sessions.get(&id) else {
            return Ok(Err(HubError::SessionNotFound));
        };
        if session.state.status != Status::Draft {
            return Ok(Err(HubError::NotDraft));
        }
        if spec.status.is_some() {
            return Ok(Err(HubError::InvalidSession(
                "a draft opens with POST /api/sessions/{id}/open, not by an edit".into(),
            )));
        }
        let mut spec = spec.over(&session.meta);
        spec.status = Some(Status::Draft);
        let checked = match spec.check(self.roll.total_weight(), batch.now()) {
            Ok(checked) => checked,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let meta = SessionMeta {
            title: checked.title,
            description: checked.description,
            kind: checked.kind,
            rule: checked.rule,
            w_from_roll: checked.w_from_roll,
            electorate: checked.electorate,
            secrecy: checked.secrecy,
            deadline: checked.deadline,
            ..SessionMeta::clone(&session.meta)
        };
        txn.write(&Write::Session(meta.clone()))?;
        batch.remember(id, Some(session));
        batch.listed = true;
        if let Some(session) = self.sessions.get_mut(&id) {
            let mut state = SessionState::new(&meta, Status::Draft, session.state.position);
            state.seq = session.state.seq + 1;
            session.state = state;
            session.meta = Arc::new(meta);
        }
        Ok(Ok(()))
    }

    pub fn delete(&mut self, id: Uuid, txn: &mut dyn Txn, batch: &mut Batch) -> Decided<()> {
        let Some(session) = self.sessions.get(&id) else {
            return Ok(Err(HubError::SessionNotFound));
        };
        if session.state.status != Status::Draft {
            return Ok(Err(HubError::NotDraft));
        }
        txn.write(&Write::DeleteSession(id))?;
        let meeting = session.meta.meeting;
        let position = session.state.position;
        batch.remember(id, Some(session));
        batch.deleted.push(id);
        batch.listed = true;
        self.sessions.remove(&id);
        // The sessions after it move up one place.
        let later: Vec<Uuid> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.meta.meeting == meeting && s.state.position > position)
            .map(|(id, _)| *id)
            .collect();
        for other in later {
            batch.remember(other, self.sessions.get(&other));
            if let Some(s) = self.sessions.get_mut(&other) {
                s.state.position -= 1;
            }
        }
        Ok(Ok(()))
    }

    /// Opens a draft; an open session is left as it is. An inertia rule
    /// whose `W` was left to the hub takes the roll's weight now.
    pub fn open(&mut self, id: Uuid, txn: &mut dyn Txn, batch: &mut Batch) -> Decided<()> {
        let now = batch.now();
        let Some(session) = self.sessions.get(&id) else {
            return Ok(Err(HubError::SessionNotFound));
        };
        match session.state.status {
            Status::Open => return Ok(Ok(())),
            Status::Closed => return Ok(Err(HubError::SessionClosed)),
            Status::Draft => {}
        }
        if let Some(Deadline::At(at)) = session.meta.deadline
            && at <= now
        {
            return Ok(Err(HubError::DeadlinePassed));
        }
        let settled = if session.meta.w_from_roll {
            match settle_w(&session.meta, self.roll.total_weight()) {
                Ok(meta) => Some(meta),
                Err(refusal) => return Ok(Err(refusal)),
            }
        } else {
            None
        };
        if let Some(meta) = &settled {
            txn.write(&Write::Session(meta.clone()))?;
        }
        batch.remember(id, Some(session));
        batch.listed = true;
        if let Some(session) = self.sessions.get_mut(&id) {
            if let Some(meta) = settled {
                session.meta = Arc::new(meta);
            }
            start(&session.meta, &mut session.state, now);
            session.state.seq += 1;
        }
        if let Some(session) = self.sessions.get(&id) {
            let (meta, closes_at) = (session.meta.clone(), session.state.closes_at);
            self.log_open(&meta, now, closes_at, txn, batch)?;
        }
        Ok(Ok(()))
    }

    /// Moves an open vote's deadline later (an untimed one gets one).
    pub fn extend(
        &mut self,
        id: Uuid,
        seconds: u64,
        txn: &mut dyn Txn,
        batch: &mut Batch,
    ) -> Decided<()> {
        if !(1..=MAX_DURATION_S).contains(&seconds) {
            return Ok(Err(HubError::InvalidBody(format!(
                "\"seconds\" must be from 1 to {MAX_DURATION_S}"
            ))));
        }
        let now = batch.now();
        let Some(session) = self.sessions.get(&id) else {
            return Ok(Err(HubError::SessionNotFound));
        };
        if session.state.status != Status::Open {
            return Ok(Err(HubError::NotOpen));
        }
        let closes_at = session.state.closes_at.unwrap_or(now).plus_seconds(seconds);
        batch.remember(id, Some(session));
        if let Some(session) = self.sessions.get_mut(&id) {
            session.state.closes_at = Some(closes_at);
            session.state.seq += 1;
        }
        let extended = Entry::Extended {
            closes_at: closes_at.to_rfc3339(),
        };
        self.append(id, &extended, txn, batch)?;
        Ok(Ok(()))
    }

    /// Puts the current meeting's agenda in `order`, which names each of
    /// its sessions exactly once.
    pub fn reorder(&mut self, order: Vec<Uuid>, batch: &mut Batch) -> Result<(), HubError> {
        let mut agenda = self.agenda();
        let mut given = order.clone();
        agenda.sort_unstable();
        given.sort_unstable();
        if agenda != given {
            return Err(HubError::InvalidBody(
                "\"order\" must name every session of the agenda exactly once".into(),
            ));
        }
        for (i, id) in order.into_iter().enumerate() {
            let position = i as u32 + 1;
            if self.sessions.get(&id).map(|s| s.state.position) != Some(position) {
                batch.remember(id, self.sessions.get(&id));
                if let Some(s) = self.sessions.get_mut(&id) {
                    s.state.position = position;
                }
            }
        }
        batch.listed = true;
        Ok(())
    }

    /// Closes a session, or answers the stored result if it already is.
    /// The session's new state is written with the batch's others; its
    /// log gets its close (and a secret vote's ballots) now.
    pub fn close(
        &mut self,
        id: Uuid,
        txn: &mut dyn Txn,
        batch: &mut Batch,
    ) -> Decided<CloseReceipt> {
        let Some(session) = self.sessions.get(&id) else {
            return Ok(Err(HubError::SessionNotFound));
        };
        match session.state.status {
            Status::Draft => return Ok(Err(HubError::NotOpen)),
            // Closing again answers the stored result; nothing changes or
            // is broadcast, but the answer still waits for the batch so
            // that it never reports a close that is not yet durable.
            Status::Closed => return Ok(Ok(receipt(session))),
            Status::Open => {}
        }
        let now = batch.now();
        self.fresh_presence(id, txn, batch)?;
        let Some(session) = self.sessions.get(&id) else {
            return Ok(Err(HubError::SessionNotFound));
        };
        let presence = self.presence_of(session);
        batch.remember(id, Some(session));
        batch.listed = true;
        let Some(session) = self.sessions.get_mut(&id) else {
            return Ok(Err(HubError::SessionNotFound));
        };
        decide(session, now, presence, batch);
        let closed = receipt(session);
        self.log_close(id, presence, txn, batch)?;
        Ok(Ok(closed))
    }

    /// Before a vote whose rule counts who is present closes: on a store
    /// shared with other hubs, who is present is read again (a ballot taken
    /// by another hub checks its voter in without moving the roll's
    /// version), so that the result counts the room as it is.
    fn fresh_presence(
        &mut self,
        id: Uuid,
        txn: &mut dyn Txn,
        batch: &mut Batch,
    ) -> Result<(), StoreError> {
        let counts_presence = self
            .sessions
            .get(&id)
            .is_some_and(|s| s.meta.rule.quorum_present.is_some());
        if counts_presence && txn.roll_version(false)?.is_some() {
            self.roll_seen = None;
            self.catch_up_roll(txn, batch, false)?;
        }
        Ok(())
    }

    /// The sessions of the current meeting (a reorder or a deletion moves
    /// their places).
    pub fn meeting_sessions(&self) -> Vec<Uuid> {
        let meeting = self.current_meeting();
        self.sessions
            .values()
            .filter(|s| s.meta.meeting == meeting)
            .map(|s| s.meta.id)
            .collect()
    }

    /// The open votes on the roll (a roll change is logged in each).
    pub fn open_roll_sessions(&self) -> Vec<Uuid> {
        self.sessions
            .values()
            .filter(|s| {
                s.state.status == Status::Open
                    && s.meta.electorate == crate::core::session::Electorate::Roll
            })
            .map(|s| s.meta.id)
            .collect()
    }

    /// The open timed votes whose deadline has passed, by what this
    /// writer knows (another hub may have moved or applied it: they are
    /// checked again once locked).
    pub fn due_candidates(&self, now: Time) -> Vec<Uuid> {
        self.sessions
            .iter()
            .filter(|(_, s)| is_due(&s.state, now))
            .map(|(id, _)| *id)
            .collect()
    }

    /// The earliest deadline of an open vote.
    pub fn next_deadline(&self) -> Option<Time> {
        self.sessions
            .values()
            .filter(|s| s.state.status == Status::Open)
            .filter_map(|s| s.state.closes_at)
            .min()
    }

    /// Closes every candidate still due, at its deadline: its result counts
    /// the ballots committed before it.
    pub fn close_due(
        &mut self,
        due: &[Uuid],
        txn: &mut dyn Txn,
        batch: &mut Batch,
    ) -> Result<(), StoreError> {
        let now = batch.now();
        for id in due {
            let Some(session) = self.sessions.get(id) else {
                continue;
            };
            if !is_due(&session.state, now) {
                continue;
            }
            self.fresh_presence(*id, txn, batch)?;
            let Some(session) = self.sessions.get(id) else {
                continue;
            };
            let presence = self.presence_of(session);
            batch.remember(*id, Some(session));
            batch.listed = true;
            if let Some(session) = self.sessions.get_mut(id) {
                let at = session.state.closes_at.unwrap_or(now);
                decide(session, at, presence, batch);
                tracing::info!(session = %id, "the vote reached its deadline");
            }
            self.log_close(*id, presence, txn, batch)?;
        }
        Ok(())
    }

    /// Ends the current meeting and begins a new one; refused while one of
    /// its votes is open.
    pub fn start_meeting(
        &mut self,
        title: String,
        txn: &mut dyn Txn,
        batch: &mut Batch,
    ) -> Decided<Meeting> {
        let title = title.trim().to_owned();
        if title.is_empty() || title.chars().count() > crate::core::limits::MAX_TITLE {
            return Ok(Err(HubError::InvalidBody(format!(
                "a meeting needs a title of 1 to {} characters",
                crate::core::limits::MAX_TITLE
            ))));
        }
        let current = self.current_meeting();
        if self
            .sessions
            .values()
            .any(|s| s.meta.meeting == current && s.state.status == Status::Open)
        {
            return Ok(Err(HubError::VotesStillOpen));
        }
        let now = batch.now();
        if batch.meetings.is_none() {
            batch.meetings = Some(self.meetings.clone());
        }
        // Nobody is present yet at the new meeting. An undo puts back who
        // was present before the batch: the batch's check-ins so far are
        // taken out of it, and only later ones are undone one by one.
        let mut before = std::mem::take(&mut self.present);
        for (member, present) in batch.presence.drain(..).rev() {
            if present {
                before.remove(&member);
            } else {
                before.insert(member);
            }
        }
        let mut checked = std::mem::take(&mut self.checked);
        for (member, was) in batch.checked.drain(..).rev() {
            match was {
                Some(was) => checked.insert(member, was),
                None => checked.remove(&member),
            };
        }
        if batch.present_before.is_none() {
            batch.present_before = Some((before, checked));
        }
        if let Some(last) = self.meetings.last_mut() {
            last.ended_at = Some(now);
            txn.write(&Write::Meeting(last.clone()))?;
        }
        let meeting = Meeting {
            id: Uuid::new_v4(),
            title,
            started_at: now,
            ended_at: None,
        };
        txn.write(&Write::Meeting(meeting.clone()))?;
        self.meetings.push(meeting.clone());
        batch.listed = true;
        Ok(Ok(meeting))
    }

    /// Each touched session's new state, written once per batch.
    pub fn write_states(&self, batch: &Batch, txn: &mut dyn Txn) -> Result<(), StoreError> {
        for (id, _) in &batch.before {
            if let Some(session) = self.sessions.get(id) {
                txn.write(&Write::State {
                    session: *id,
                    state: session.state.clone(),
                })?;
            }
        }
        Ok(())
    }
}

/// Opens `state` now: its deadline, if it has one, starts counting.
/// `meta` with its inertia rule's `W` set to the roll's weight.
fn settle_w(meta: &SessionMeta, roll_weight: u64) -> Result<SessionMeta, HubError> {
    let mut spec = RuleSpec::from(meta.rule.clone());
    spec.electorate = None;
    let rule = spec.resolve(roll_weight)?;
    Ok(SessionMeta {
        rule,
        w_from_roll: false,
        ..meta.clone()
    })
}

fn start(meta: &SessionMeta, state: &mut SessionState, now: Time) {
    state.status = Status::Open;
    state.opened_at = Some(now);
    state.closes_at = match meta.deadline {
        Some(Deadline::At(at)) => Some(at),
        Some(Deadline::After(seconds)) => Some(now.plus_seconds(u64::from(seconds))),
        None => None,
    };
}

fn is_due(state: &SessionState, now: Time) -> bool {
    state.status == Status::Open && state.closes_at.is_some_and(|at| at <= now)
}

impl Core {
    /// Who is there, for a session whose rule asks for a quorum of those
    /// present (counting it means a walk over the roll).
    pub fn presence_of(&self, session: &CoreSession) -> Option<Presence> {
        session
            .meta
            .rule
            .quorum_present
            .map(|_| self.attendance().presence())
    }
}

/// Closes `session` at `at`, with the result its rule gives its tally.
fn decide(session: &mut CoreSession, at: Time, presence: Option<Presence>, batch: &mut Batch) {
    let state = &mut session.state;
    let rule = &session.meta.rule;
    let (result, elected) = match &session.meta.kind {
        SessionKind::Motion { .. } => (rule.outcome_at(&state.tally, presence), Elected::default()),
        SessionKind::Election(e) => elect(rule, usize::from(e.seats), &state.tally, presence),
    };
    if session.meta.secrecy == Secrecy::Secret {
        batch.shuffle.push(session.meta.id);
    }
    state.status = Status::Closed;
    state.result = Some(result);
    state.elected = elected;
    state.closed_at = Some(at);
    state.seq += 1;
}

fn receipt(session: &CoreSession) -> CloseReceipt {
    let state = &session.state;
    let election = matches!(session.meta.kind, SessionKind::Election(_));
    CloseReceipt {
        result: state.result.unwrap_or(Outcome::Rejected),
        tally: state.tally.clone(),
        seq: state.seq,
        elected: election.then(|| state.elected.elected.clone()),
        tied: election.then(|| state.elected.tied.clone()),
    }
}
