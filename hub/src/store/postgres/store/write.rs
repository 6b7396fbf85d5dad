//! A batch's writes as PostgreSQL statements. The ones of every ballot go
//! with the next round trip: ballots, log entries and answers gathered into
//! one statement per table (`bulk`), a session's state with its
//! notification, the signed head. The rarer ones (the roll, attendance,
//! meetings, secret ballots, a new session or log) run at once.

use super::{LOG_MASK, PgTxn, read};
use crate::core::clock::Time;
use crate::core::store::{StoreError, Write};
use crate::store::columns;
use crate::store::postgres::CHANNEL;
use crate::store::postgres::bulk::BallotRow;
use crate::store::postgres::pipeline::{Cell, Queued};

impl PgTxn<'_> {
    /// The statements of one write, queued or run (see above).
    pub(super) fn put(&mut self, write: &Write) -> Result<(), StoreError> {
        if matches!(
            write,
            Write::Member(_) | Write::Presence { .. } | Write::Meeting(_)
        ) && !self.roll_bumped
        {
            // Once per transaction; its row lock also puts the roll's
            // changes of all nodes in one order.
            self.exec("UPDATE roll_version SET n = n + 1", &[])?;
            self.exec("SELECT pg_notify($1, 'roll')", &[&CHANNEL])?;
            self.roll_bumped = true;
        }
        match write {
            Write::Session(meta) => self.write_session(meta)?,
            Write::DeleteSession(id) => {
                if let Some(log) = self.run(async |c| read::log_id(c, *id).await)? {
                    self.exec(
                        "DELETE FROM log_entries WHERE id BETWEEN $1 AND $2",
                        &[&(log << 32), &((log << 32) | LOG_MASK)],
                    )?;
                }
                self.logs.retain(|(s, _)| s != id);
                self.log_ids.remove(id);
                self.ahead.forget(*id);
                self.changed.forget.push(*id);
                let id = id.to_string();
                for table in crate::store::rows::SESSION_TABLES {
                    self.exec(
                        &format!("DELETE FROM {table} WHERE session_id = $1"),
                        &[&id],
                    )?;
                }
                self.exec("DELETE FROM sessions WHERE id = $1", &[&id])?;
                // The others forget it once this commits.
                self.queue(
                    "SELECT pg_notify($1, $2)",
                    vec![Cell::text(CHANNEL), Cell::text(format!("{id} 0"))],
                );
            }
            Write::Ballot { session, record } => {
                self.ahead.wrote_ballot(*session, record);
                self.changed
                    .written
                    .entry(*session)
                    .or_default()
                    .push(record.voter.clone());
                let c = columns::ballot(&record.ballot);
                let groups = Some(columns::names(&record.groups)?).filter(|g| g != "[]");
                let marker = self.marker(*session);
                let weight = columns::weight(record.weight)?;
                self.bulk.ballot(BallotRow {
                    session: session.to_string(),
                    voter: record.voter.clone(),
                    choice: c.choice.map(str::to_owned),
                    grade: c.grade,
                    options: c.options,
                    marks: c.marks,
                    cast_at: record.cast_at.to_rfc3339(),
                    weight,
                    groups,
                    holder: record.holder.clone(),
                    seq: marker,
                });
            }
            Write::Answer {
                session,
                voter,
                ballot_id,
                answer,
            } => {
                self.ahead.wrote_answer(*session, voter, ballot_id, answer);
                self.bulk.answer([
                    session.to_string(),
                    voter.clone(),
                    ballot_id.clone(),
                    answer.clone(),
                ]);
            }
            Write::State { session, state } => {
                // A state written from memory that this batch did not lock
                // (and so may be older than the stored one) is refused: it
                // would put back what another hub has moved on from.
                if !self.locked.iter().any(|(s, _)| s == session) && !self.created.contains(session)
                {
                    return Err(StoreError::Inconsistent(format!(
                        "session {session}'s state written without its lock"
                    )));
                }
                let elected = Some(columns::ids(&state.elected.elected)).filter(|s| !s.is_empty());
                let tied = Some(columns::ids(&state.elected.tied)).filter(|s| !s.is_empty());
                let seq =
                    i64::try_from(state.seq).map_err(|_| StoreError::Inconsistent("seq".into()))?;
                self.changed.states.insert(*session, seq);
                if state.status == crate::core::session::Status::Closed {
                    // No more ballots: this node stops keeping its voters.
                    self.changed.forget.push(*session);
                }
                self.queue(
                    "UPDATE sessions SET status = $2, position = $3, opened_at = $4, closes_at = $5,
                        closed_at = $6, result = $7, elected = $8, tied = $9, seq = $10, tally = $11
                     WHERE id = $1",
                    vec![
                        Cell::text(session.to_string()),
                        Cell::text(state.status.as_str()),
                        Cell::Int(Some(i64::from(state.position))),
                        Cell::Text(state.opened_at.map(Time::to_rfc3339)),
                        Cell::Text(state.closes_at.map(Time::to_rfc3339)),
                        Cell::Text(state.closed_at.map(Time::to_rfc3339)),
                        Cell::Text(state.result.map(|r| r.as_str().to_owned())),
                        Cell::Text(elected),
                        Cell::Text(tied),
                        Cell::Int(Some(seq)),
                        Cell::text(columns::tally(&state.tally)?),
                    ],
                );
                // Every node hears of it once this commits, and not before
                // (a notification sent in a transaction waits for its
                // commit, and goes with its rollback).
                self.queue(
                    "SELECT pg_notify($1, $2)",
                    vec![Cell::text(CHANNEL), Cell::text(format!("{session} {seq}"))],
                );
            }
            Write::Member(m) => {
                self.exec(
                    "INSERT INTO voters (id, code, name, groups, weight, proxy_to)
                     VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (id) DO UPDATE SET code = excluded.code, name = excluded.name,
                        groups = excluded.groups, weight = excluded.weight,
                        proxy_to = excluded.proxy_to",
                    &[
                        &m.id,
                        &m.code,
                        &m.name,
                        &columns::names(&m.groups)?,
                        &columns::weight(m.weight)?,
                        &m.proxy_to,
                    ],
                )?;
            }
            Write::Presence {
                meeting,
                member,
                present,
            } => {
                self.exec(
                    "INSERT INTO attendance (meeting_id, member_id, present) VALUES ($1, $2, $3)
                     ON CONFLICT (meeting_id, member_id) DO UPDATE SET present = excluded.present",
                    &[&meeting.to_string(), member, &i64::from(*present)],
                )?;
            }
            Write::SecretVoted {
                session,
                member,
                holder,
                weight,
                voted,
            } => {
                let marker = self.marker(*session);
                self.exec(
                    "INSERT INTO secret_voted (session_id, member_id, holder, weight, ballot_id, seq)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                    &[
                        &session.to_string(),
                        member,
                        holder,
                        &columns::weight(*weight)?,
                        &voted.ballot_id,
                        &marker,
                    ],
                )?;
            }
            Write::Log { session, key, roll } => {
                let id: i64 = self.run(async |c| {
                    let row = c
                        .query_one(
                            "INSERT INTO logs (session_id, log_key, roll) VALUES ($1, $2, $3)
                             RETURNING id",
                            &[&session.to_string(), &key.as_slice(), roll],
                        )
                        .await?;
                    Ok(row.try_get(0)?)
                })?;
                self.logs.push((*session, id));
            }
            Write::Entry {
                session,
                index,
                entry,
            } => {
                let row = self.log_row(*session, *index)?;
                self.bulk.entry(row, entry.clone());
            }
            Write::Head { session, head } => {
                // Kept on the last entry it covers, written in this commit.
                let last = head
                    .size
                    .checked_sub(1)
                    .ok_or_else(|| StoreError::Inconsistent("a head of an empty log".into()))?;
                let row = self.log_row(*session, last)?;
                // Sent with the batch's other writes and its commit: the
                // statement itself fails the transaction if the entry is
                // not there (a cast of the reason to a number, so that the
                // reason is in the error).
                self.bulk.spill(&mut self.pending);
                self.pending.push(Queued::new(
                    "WITH signed AS (
                        UPDATE log_entries SET root = $2, signature = $3 WHERE id = $1 RETURNING id)
                     SELECT (CASE WHEN count(*) = 1 THEN '1'
                        ELSE 'a head signed over a log without its last entry' END)::int
                     FROM signed",
                    vec![
                        Cell::Int(Some(row)),
                        Cell::Bytes(head.root.to_vec()),
                        Cell::Bytes(head.signature.to_vec()),
                    ],
                ));
            }
            Write::ShuffleSecret(session) => {
                // Rewritten in a random order under new slots, and who voted
                // in the order of their ids: the rows keep nothing of the
                // order the ballots came in (a table's rows are stored in the
                // order they are written). The old row versions go with the
                // `VACUUM FULL` of `scrub`.
                let id = session.to_string();
                self.exec(
                    "WITH old AS (DELETE FROM secret_voted WHERE session_id = $1
                        RETURNING member_id, holder, ballot_id, weight)
                     INSERT INTO secret_voted (session_id, member_id, holder, ballot_id, weight)
                     SELECT $1, member_id, holder, ballot_id, weight FROM old ORDER BY member_id",
                    &[&id],
                )?;
                self.exec(
                    "WITH old AS (DELETE FROM secret_ballots WHERE session_id = $1
                        RETURNING choice, grade, options, marks, weight, tracker)
                     INSERT INTO secret_ballots (session_id, choice, grade, options, marks, weight, tracker)
                     SELECT $1, choice, grade, options, marks, weight, tracker FROM old ORDER BY random()",
                    &[&id],
                )?;
            }
            Write::SecretBallot { session, ballot } => {
                let c = columns::ballot(&ballot.ballot);
                self.exec(
                    "INSERT INTO secret_ballots (session_id, choice, grade, options, marks, weight, tracker)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    &[
                        &session.to_string(),
                        &c.choice,
                        &c.grade,
                        &c.options,
                        &c.marks,
                        &columns::weight(ballot.weight)?,
                        &ballot.tracker,
                    ],
                )?;
            }
            Write::Meeting(m) => {
                self.exec(
                    "INSERT INTO meetings (id, title, started_at, ended_at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (id) DO UPDATE SET title = excluded.title, ended_at = excluded.ended_at",
                    &[
                        &m.id.to_string(),
                        &m.title,
                        &m.started_at.to_rfc3339(),
                        &m.ended_at.map(Time::to_rfc3339),
                    ],
                )?;
            }
        }
        Ok(())
    }
}
