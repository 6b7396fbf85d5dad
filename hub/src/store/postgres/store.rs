//! The store seam over PostgreSQL. The writer thread is synchronous; each
//! call runs on this store's own single-threaded runtime, which also
//! drives the pool's connections while a call waits. A batch is one
//! transaction on one connection: its sessions' rows locked `FOR UPDATE`
//! in id order (which also orders their `seq` across nodes), every
//! decision read inside it, committed with `synchronous_commit` on.

use std::collections::HashMap;

use deadpool_postgres::{Object, Pool};
use tokio::runtime::Runtime;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use super::ahead::Ahead;
use super::bulk::Bulk;
use super::pipeline::{self, Cell, Queued, send};
use super::read::{self, LOG_MASK};
use super::voters::{Changed, Voters};
use crate::core::clock::Time;
use crate::core::session::SessionMeta;
use crate::core::store::{
    BallotRecord, Changes, Loaded, Locked, LogRecord, SecretBallot, SecretVoter, Store, StoreError,
    Txn, Voted, Wanted, Write,
};
use crate::store::columns;
use crate::store::rows::Cells;

/// Each `Write` as the statements that make it (`PgTxn::put`).
mod write;

pub struct PostgresStore {
    rt: Runtime,
    pool: Pool,
    /// The integer id of each session's log, once committed: it never
    /// changes (ids are not reused), so a batch need not look it up. Only
    /// drafts are deleted, and a draft has no log: an id here never names
    /// another session's log, even after another node deleted one.
    log_ids: HashMap<Uuid, i64>,
    /// Who has a ballot in each session, as far as this node has read.
    voters: Voters,
}

impl PostgresStore {
    /// Connects to the database at `url` and brings its schema up to date.
    /// Call it off any async runtime (the writer's thread, or
    /// `spawn_blocking`): it runs one of its own.
    pub fn open(url: &str) -> Result<PostgresStore, StoreError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::Database(Box::new(e)))?;
        let pool = rt.block_on(super::connect(url))?;
        Ok(PostgresStore {
            rt,
            pool,
            log_ids: HashMap::new(),
            voters: Voters::default(),
        })
    }

    /// A value every node shares (the admin token, the signing key's
    /// seed): the stored one, or `make()`'s, stored by whichever node
    /// starting at the same moment got there first. True: this node made it.
    pub fn shared_secret(
        &mut self,
        key: &str,
        make: impl FnOnce() -> String,
    ) -> Result<(String, bool), StoreError> {
        let c = self.client()?;
        let made = make();
        self.rt.block_on(async {
            let inserted = c
                .execute(
                    "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
                    &[&key, &made],
                )
                .await?;
            let row = c
                .query_one("SELECT value FROM settings WHERE key = $1", &[&key])
                .await?;
            Ok((row.try_get(0)?, inserted == 1))
        })
    }

    fn client(&self) -> Result<Object, StoreError> {
        Ok(self.rt.block_on(self.pool.get())?)
    }
}

impl Store for PostgresStore {
    fn load(&mut self) -> Result<Loaded, StoreError> {
        let c = self.client()?;
        self.rt.block_on(async {
            let mut loaded = read::roll(&c).await?;
            loaded.sessions = read::sessions(&c).await?;
            for session in &mut loaded.sessions {
                read::fill(&c, session).await?;
            }
            Ok(loaded)
        })
    }

    fn begin(&mut self) -> Result<Box<dyn Txn + '_>, StoreError> {
        let client = self.client()?;
        // The database's clock, which every batch asks first, read with
        // the BEGIN: one round trip.
        let clock = self.rt.block_on(async {
            let stmt = client.prepare_cached(CLOCK).await?;
            let (began, clock) = futures_util::future::join(
                client.batch_execute("BEGIN"),
                client.query_one(&stmt, &[]),
            )
            .await;
            began?;
            let clock = clock
                .map_err(StoreError::from)
                .and_then(|row| Ok(row.try_get(0)?));
            if clock.is_err() {
                // The connection goes back to the pool: not inside a
                // transaction (it is broken if this fails too, and the
                // pool finds out).
                let _ = client.batch_execute("ROLLBACK").await;
            }
            clock
        })?;
        Ok(Box::new(PgTxn {
            rt: &self.rt,
            clock: Some(clock),
            client: Some(client),
            log_ids: &mut self.log_ids,
            voters: &mut self.voters,
            changed: Changed::default(),
            logs: Vec::new(),
            roll_bumped: false,
            roll_held: None,
            locked: Vec::new(),
            pending: Vec::new(),
            created: Vec::new(),
            ahead: Ahead::default(),
            wanted: Vec::new(),
            bulk: Bulk::default(),
        }))
    }

    fn ballots(&mut self, session: Uuid) -> Result<Vec<BallotRecord>, StoreError> {
        let c = self.client()?;
        self.rt.block_on(read::ballots(&c, session))
    }

    fn secret(&mut self, session: Uuid) -> Result<(Vec<SecretBallot>, Vec<String>), StoreError> {
        let c = self.client()?;
        self.rt.block_on(read::secret(&c, session))
    }

    fn log(&mut self, session: Uuid) -> Result<LogRecord, StoreError> {
        let c = self.client()?;
        self.rt.block_on(read::log_record(&c, session))
    }

    /// After a secret vote closes: the two secret tables rewritten into new
    /// files, so that the row versions of the vote as it came in are gone
    /// from them (the server's write-ahead log keeps them until it recycles
    /// its segments: docs/CLUSTER.md).
    fn scrub(&mut self) -> Result<bool, StoreError> {
        let c = self.client()?;
        // Not waiting on the tables' readers: if they are busy, the writer
        // tries again after its next commits.
        let done = self.rt.block_on(c.batch_execute(
            "SET lock_timeout = '500ms'; VACUUM FULL secret_ballots, secret_voted; RESET lock_timeout",
        ));
        match done {
            Ok(()) => Ok(true),
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE) => {
                let _ = self.rt.block_on(c.batch_execute("RESET lock_timeout"));
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// The lock on the roll's version: shared by batches that only read the
/// roll, exclusive for one that changes it.
fn roll_lock(exclusive: bool) -> &'static str {
    if exclusive {
        "SELECT n FROM roll_version FOR UPDATE"
    } else {
        "SELECT n FROM roll_version FOR SHARE"
    }
}

fn ended() -> StoreError {
    StoreError::Inconsistent("the transaction has ended".into())
}

/// The database's clock, in milliseconds since the epoch.
const CLOCK: &str = "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint";

/// One batch's transaction; rolled back when dropped uncommitted.
struct PgTxn<'a> {
    rt: &'a Runtime,
    /// The database's clock as the transaction began, not yet asked for.
    clock: Option<i64>,
    /// Taken by the commit.
    client: Option<Object>,
    /// The store's known log ids, which this transaction adds to when it
    /// commits.
    log_ids: &'a mut HashMap<Uuid, i64>,
    /// The log ids this transaction looked up or made.
    logs: Vec<(Uuid, i64)>,
    /// Who has a ballot in each session, as this node knows it, which this
    /// transaction adds to when it commits…
    voters: &'a mut Voters,
    /// …with what it read and wrote.
    changed: Changed,
    /// The roll's version was moved on by this transaction.
    roll_bumped: bool,
    /// The roll's version as locked with the sessions (exclusive or not).
    roll_held: Option<(bool, u64)>,
    /// The sessions locked, with their `seq` then: the rows this batch
    /// writes for them are marked `seq + 1`.
    locked: Vec<(Uuid, i64)>,
    /// Writes sent together, in order, before the next read or the commit,
    /// in one round trip (the ballots, entries and answers among them as one
    /// statement per table: `bulk`).
    pending: Vec<Queued>,
    /// Sessions this transaction made (or edited, as drafts, locked).
    created: Vec<Uuid>,
    /// What the batch's ballots will ask, read at once…
    ahead: Ahead,
    /// …once this is sent: with the next read of what other hubs
    /// changed, or before the first ballot asked.
    wanted: Vec<Wanted>,
    /// Ballots, log entries and answers gathered for one statement each,
    /// sent before anything queued after them.
    bulk: Bulk,
}

impl Drop for PgTxn<'_> {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            // A connection that cannot roll back is broken: the pool checks
            // it before handing it out again, and the server rolls back.
            let _ = self.rt.block_on(client.batch_execute("ROLLBACK"));
        }
    }
}

impl PgTxn<'_> {
    fn client(&self) -> Result<&Object, StoreError> {
        self.client.as_ref().ok_or_else(ended)
    }

    /// Reads what was asked ahead and not read yet.
    fn fill_ahead(&mut self) -> Result<(), StoreError> {
        if self.wanted.is_empty() {
            return Ok(());
        }
        let wanted = std::mem::take(&mut self.wanted);
        self.flush()?;
        let c = self.client.as_ref().ok_or_else(ended)?;
        let seen = self.rt.block_on(self.ahead.fill(
            c,
            &wanted,
            self.voters,
            &self.locked,
            &self.changed.written,
        ))?;
        self.changed.seen.extend(seen);
        Ok(())
    }

    /// Runs `f` on the transaction's connection, after the queued writes
    /// (a read sees them).
    fn run<T>(
        &mut self,
        f: impl AsyncFnOnce(&Object) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.flush()?;
        let c = self.client()?;
        self.rt.block_on(f(c))
    }

    fn exec(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, StoreError> {
        self.run(async |c| {
            let stmt = c.prepare_cached(sql).await?;
            Ok(c.execute(&stmt, params).await?)
        })
    }

    fn queue(&mut self, sql: &'static str, cells: Vec<Cell>) {
        self.bulk.spill(&mut self.pending);
        self.pending.push(Queued::new(sql, cells));
    }

    /// Sends the queued writes at once (the connection pipelines them, in
    /// order) and waits for all their answers: any error fails the batch.
    fn flush(&mut self) -> Result<(), StoreError> {
        self.bulk.spill(&mut self.pending);
        if self.pending.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.pending);
        let c = self.client()?;
        self.rt.block_on(send(c, &pending))
    }

    /// The mark of the rows this batch writes for `session`: its `seq`
    /// when locked, plus one (higher than any `seq` a hub could have seen
    /// before this batch).
    fn marker(&self, session: Uuid) -> Option<i64> {
        self.locked
            .iter()
            .find(|(s, _)| *s == session)
            .map(|(_, seq)| seq + 1)
    }

    /// The row id of entry `index` of `session`'s log.
    fn log_row(&mut self, session: Uuid, index: u64) -> Result<i64, StoreError> {
        let known = self
            .logs
            .iter()
            .find(|(s, _)| *s == session)
            .map(|(_, log)| *log)
            .or_else(|| self.log_ids.get(&session).copied());
        let log = match known {
            Some(log) => log,
            None => {
                let log = self
                    .run(async |c| read::log_id(c, session).await)?
                    .ok_or_else(|| {
                        StoreError::Inconsistent(format!("session {session} has no log"))
                    })?;
                self.logs.push((session, log));
                log
            }
        };
        i64::try_from(index)
            .ok()
            .filter(|i| *i <= LOG_MASK)
            .map(|i| (log << 32) | i)
            .ok_or_else(|| StoreError::Inconsistent(format!("log index {index} beyond 2^32")))
    }

    fn write_session(&mut self, m: &SessionMeta) -> Result<(), StoreError> {
        self.created.push(m.id);
        let c = crate::store::rows::SessionColumns::of(m)?;
        self.exec(
            "INSERT INTO sessions (id, meeting_id, title, description, kind, scale, options, seats,
                method, min_marks, max_marks, rule, electorate, deadline_at, duration_s, created_at,
                secrecy, w_from_roll, status, position, seq)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
                'draft', 0, 0)
             ON CONFLICT (id) DO UPDATE SET title = excluded.title,
                description = excluded.description, kind = excluded.kind, scale = excluded.scale,
                options = excluded.options, seats = excluded.seats, method = excluded.method,
                min_marks = excluded.min_marks, max_marks = excluded.max_marks,
                rule = excluded.rule, electorate = excluded.electorate,
                deadline_at = excluded.deadline_at, duration_s = excluded.duration_s,
                secrecy = excluded.secrecy, w_from_roll = excluded.w_from_roll",
            &[
                &m.id.to_string(),
                &m.meeting.to_string(),
                &m.title,
                &m.description,
                &c.kind,
                &c.scale,
                &c.options,
                &c.seats,
                &c.method,
                &c.min,
                &c.max,
                &columns::rule(&m.rule)?,
                &columns::electorate(m.electorate),
                &c.deadline_at,
                &c.duration_s,
                &m.created_at.to_rfc3339(),
                &columns::secrecy(m.secrecy),
                &i64::from(m.w_from_roll),
            ],
        )?;
        Ok(())
    }
}

impl Txn for PgTxn<'_> {
    fn lock_sessions(&mut self, ids: &[Uuid], roll_exclusive: bool) -> Result<Locked, StoreError> {
        let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
        // Sessions first, then the roll (every batch takes them in that
        // order): the two sent together, one round trip.
        let (rows, roll) = self.run(async |c| {
            let sessions = async {
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                let stmt = c
                    .prepare_cached(
                        "SELECT id, seq FROM sessions WHERE id = ANY($1) ORDER BY id FOR UPDATE",
                    )
                    .await?;
                c.query(&stmt, &[&ids]).await
            };
            let roll = async {
                let stmt = c.prepare_cached(roll_lock(roll_exclusive)).await?;
                c.query_one(&stmt, &[]).await?.try_get::<_, i64>(0)
            };
            Ok(tokio::try_join!(sessions, roll)?)
        })?;
        self.roll_held = Some((roll_exclusive, roll.max(0) as u64));
        let seqs: Vec<(Uuid, u64)> = rows
            .iter()
            .map(|r| Ok((columns::uuid_from(&r.text(0)?)?, r.int(1)?.max(0) as u64)))
            .collect::<Result<_, StoreError>>()?;
        self.locked = seqs.iter().map(|(id, seq)| (*id, *seq as i64)).collect();
        Ok(Locked::Seqs(seqs))
    }

    fn changes(
        &mut self,
        id: Uuid,
        seq: u64,
        logged: Option<u64>,
    ) -> Result<Option<Changes>, StoreError> {
        let since = i64::try_from(seq).map_err(|_| StoreError::Inconsistent("seq".into()))?;
        let wanted = std::mem::take(&mut self.wanted);
        self.flush()?;
        let c = self.client.as_ref().ok_or_else(ended)?;
        let (changes, seen) = self.rt.block_on(async {
            tokio::try_join!(
                read::changes(c, id, since, logged),
                self.ahead
                    .fill(c, &wanted, self.voters, &self.locked, &self.changed.written)
            )
        })?;
        self.changed.seen.extend(seen);
        // A vote another node closed takes no more ballots: its voters
        // need not be kept.
        if changes
            .as_ref()
            .is_some_and(|c| c.session.status == crate::core::session::Status::Closed)
        {
            self.changed.forget.push(id);
        }
        Ok(changes)
    }

    fn seqs(&mut self, ids: &[Uuid]) -> Result<Locked, StoreError> {
        let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
        let rows = self.run(async |c| {
            let stmt = c
                .prepare_cached(
                    "SELECT id, seq FROM sessions WHERE cardinality($1::text[]) = 0 OR id = ANY($1)",
                )
                .await?;
            Ok(c.query(&stmt, &[&ids]).await?)
        })?;
        let seqs = rows
            .iter()
            .map(|r| Ok((columns::uuid_from(&r.text(0)?)?, r.int(1)?.max(0) as u64)))
            .collect::<Result<_, StoreError>>()?;
        Ok(Locked::Seqs(seqs))
    }

    fn now(&mut self) -> Result<Time, StoreError> {
        // The database's clock decides deadlines, whatever node asks: read
        // with the BEGIN the first time, asked again after.
        if let Some(ms) = self.clock.take() {
            return Ok(Time::from_millis(ms));
        }
        let ms: i64 = self.run(async |c| {
            let stmt = c.prepare_cached(CLOCK).await?;
            let row = c.query_one(&stmt, &[]).await?;
            Ok(row.try_get(0)?)
        })?;
        Ok(Time::from_millis(ms))
    }

    fn roll_version(&mut self, exclusive: bool) -> Result<Option<u64>, StoreError> {
        // Locked with the sessions, unless this batch has moved it on
        // since, or needs it exclusive now.
        if let Some((held, n)) = self.roll_held
            && !self.roll_bumped
            && (held || !exclusive)
        {
            return Ok(Some(n));
        }
        let n: i64 = self.run(async |c| {
            let stmt = c.prepare_cached(roll_lock(exclusive)).await?;
            Ok(c.query_one(&stmt, &[]).await?.try_get(0)?)
        })?;
        Ok(Some(n.max(0) as u64))
    }

    fn roll(&mut self) -> Result<Loaded, StoreError> {
        self.run(async |c| read::roll(c).await)
    }

    fn session(
        &mut self,
        id: Uuid,
    ) -> Result<Option<crate::core::store::StoredSession>, StoreError> {
        self.run(async |c| read::session(c, id).await)
    }

    fn reads_ahead(&self) -> bool {
        true
    }

    fn read_ahead(&mut self, wanted: &[Wanted]) -> Result<(), StoreError> {
        // Sent with the next read of what other hubs changed, or before
        // the first ballot asked.
        self.wanted.extend_from_slice(wanted);
        Ok(())
    }

    fn ballot(&mut self, session: Uuid, voter: &str) -> Result<Option<BallotRecord>, StoreError> {
        self.fill_ahead()?;
        if let Some(known) = self.ahead.ballot(session, voter) {
            return Ok(known);
        }
        self.run(async |c| read::ballot(c, session, voter).await)
    }

    fn voted(&mut self, session: Uuid, member: &str) -> Result<Option<Voted>, StoreError> {
        self.run(async |c| {
            let row = c
                .query_opt(
                    "SELECT ballot_id FROM secret_voted WHERE session_id = $1 AND member_id = $2",
                    &[&session.to_string(), &member],
                )
                .await?;
            row.map(|r| {
                Ok(Voted {
                    ballot_id: r.maybe(0)?,
                })
            })
            .transpose()
        })
    }

    fn secret_all(
        &mut self,
        session: Uuid,
    ) -> Result<(Vec<SecretBallot>, Vec<SecretVoter>), StoreError> {
        self.run(async |c| {
            let (ballots, _) = read::secret(c, session).await?;
            Ok((ballots, read::secret_voters(c, session).await?))
        })
    }

    fn answer(
        &mut self,
        session: Uuid,
        voter: &str,
        ballot_id: &str,
    ) -> Result<Option<String>, StoreError> {
        self.fill_ahead()?;
        if let Some(known) = self.ahead.answer(session, voter, ballot_id) {
            return Ok(known);
        }
        self.run(async |c| {
            let row = c
                .query_opt(
                    "SELECT answer FROM answers WHERE session_id = $1 AND voter = $2 AND ballot_id = $3",
                    &[&session.to_string(), &voter, &ballot_id],
                )
                .await?;
            row.map(|r| r.text(0)).transpose()
        })
    }

    fn write(&mut self, write: &Write) -> Result<(), StoreError> {
        self.put(write)
    }

    fn commit(mut self: Box<Self>) -> Result<(), StoreError> {
        // The writes still queued leave with the COMMIT, in one round trip:
        // the sessions' locks are held one round trip less.
        self.bulk.spill(&mut self.pending);
        let pending = std::mem::take(&mut self.pending);
        // Kept until the COMMIT has succeeded: on any error (even one
        // before anything was sent) the drop rolls the transaction back,
        // so that the connection never goes back to the pool inside it.
        let client = self.client.as_ref().ok_or_else(ended)?;
        self.rt.block_on(pipeline::commit(client, &pending))?;
        self.client = None;
        let mut changed = std::mem::take(&mut self.changed);
        changed.locked = self.locked.iter().copied().collect();
        self.voters.commit(changed);
        self.log_ids.extend(self.logs.drain(..));
        Ok(())
    }
}
