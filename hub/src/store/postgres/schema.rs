//! The PostgreSQL schema, one migration per version, applied by whichever
//! node starts first: the migrations run in one transaction under an
//! advisory lock, so nodes started together apply each exactly once. The
//! columns hold what SQLite's do, in the same encodings (RFC 3339 text for
//! times, JSON text for rules and lists), so that one set of column
//! conversions serves both stores and `votehub migrate` copies rows as
//! they are. A database written by a newer votehub is refused.

use deadpool_postgres::Client;

use crate::core::store::StoreError;

/// The advisory lock key of migrations ("votehub" in ASCII).
const MIGRATION_LOCK: i64 = 0x0076_6f74_6568_7562;

/// Every migration, in order: the database's version is how many have run.
const MIGRATIONS: &[&str] = &[
    // The schema of SQLite's fifth version, plus what a cluster shares
    // that a laptop keeps in its data directory: the admin token and the
    // signing key (`settings`). `ord` is the order rows were made in,
    // which SQLite reads from its rowids (meetings, the agenda, the roll).
    "CREATE TABLE settings (
        key         TEXT PRIMARY KEY,
        value       TEXT NOT NULL
    );
    -- Grows with every change to the roll, attendance or meetings: a node
    -- whose number is older reads them again.
    CREATE TABLE roll_version (
        one         BOOLEAN PRIMARY KEY DEFAULT true CHECK (one),
        n           BIGINT NOT NULL
    );
    INSERT INTO roll_version (n) VALUES (0);
    CREATE TABLE meetings (
        ord         BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
        id          TEXT PRIMARY KEY,
        title       TEXT NOT NULL,
        started_at  TEXT NOT NULL,
        ended_at    TEXT
    );
    CREATE TABLE sessions (
        ord         BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
        id          TEXT PRIMARY KEY,
        meeting_id  TEXT REFERENCES meetings(id),
        title       TEXT NOT NULL,
        description TEXT NOT NULL,
        kind        TEXT NOT NULL DEFAULT 'motion',
        scale       TEXT NOT NULL,
        options     TEXT,
        seats       BIGINT,
        method      TEXT,
        min_marks   BIGINT,
        max_marks   BIGINT,
        rule        TEXT NOT NULL,
        electorate  TEXT NOT NULL,
        secrecy     TEXT NOT NULL DEFAULT 'named',
        w_from_roll BIGINT NOT NULL DEFAULT 0,
        deadline_at TEXT,
        duration_s  BIGINT,
        created_at  TEXT NOT NULL,
        status      TEXT NOT NULL DEFAULT 'open',
        position    BIGINT NOT NULL DEFAULT 0,
        opened_at   TEXT,
        closes_at   TEXT,
        closed_at   TEXT,
        result      TEXT,
        elected     TEXT,
        tied        TEXT,
        seq         BIGINT NOT NULL,
        -- The tally as of seq (JSON): a node that follows reads it rather
        -- than counting every ballot again.
        tally       TEXT
    );
    CREATE TABLE voters (
        ord         BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
        code        TEXT PRIMARY KEY,
        name        TEXT NOT NULL UNIQUE,
        groups      TEXT NOT NULL,
        id          TEXT UNIQUE,
        weight      BIGINT NOT NULL DEFAULT 1,
        proxy_to    TEXT
    );
    CREATE TABLE ballots (
        session_id  TEXT NOT NULL REFERENCES sessions(id),
        voter       TEXT NOT NULL,
        choice      TEXT,
        grade       BIGINT,
        options     TEXT,
        marks       TEXT,
        cast_at     TEXT NOT NULL,
        weight      BIGINT NOT NULL DEFAULT 1,
        groups      TEXT,
        holder      TEXT,
        -- The session's seq when the batch that wrote it began, plus one:
        -- a node that saw the session at seq s reads the voters above s.
        seq         BIGINT,
        PRIMARY KEY (session_id, voter),
        CHECK (num_nonnulls(choice, grade, options, marks) = 1)
    );
    CREATE INDEX ballots_seq ON ballots(session_id, seq);
    CREATE TABLE answers (
        session_id  TEXT NOT NULL REFERENCES sessions(id),
        voter       TEXT NOT NULL,
        ballot_id   TEXT NOT NULL,
        answer      TEXT NOT NULL,
        PRIMARY KEY (session_id, voter, ballot_id)
    );
    CREATE TABLE attendance (
        meeting_id  TEXT NOT NULL REFERENCES meetings(id),
        member_id   TEXT NOT NULL,
        present     BIGINT NOT NULL,
        PRIMARY KEY (meeting_id, member_id)
    );
    CREATE TABLE secret_voted (
        session_id  TEXT NOT NULL REFERENCES sessions(id),
        member_id   TEXT NOT NULL,
        holder      TEXT,
        ballot_id   TEXT,
        weight      BIGINT NOT NULL DEFAULT 1,
        seq         BIGINT,
        PRIMARY KEY (session_id, member_id)
    );
    CREATE INDEX secret_voted_seq ON secret_voted(session_id, seq);
    CREATE TABLE secret_ballots (
        slot        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        session_id  TEXT NOT NULL REFERENCES sessions(id),
        choice      TEXT,
        grade       BIGINT,
        options     TEXT,
        marks       TEXT,
        weight      BIGINT NOT NULL,
        tracker     TEXT NOT NULL,
        CHECK (num_nonnulls(choice, grade, options, marks) = 1)
    );
    CREATE INDEX secret_ballots_session ON secret_ballots(session_id);
    CREATE TABLE logs (
        id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        session_id  TEXT NOT NULL UNIQUE REFERENCES sessions(id),
        log_key     BYTEA NOT NULL,
        roll        TEXT
    );
    CREATE TABLE log_entries (
        id          BIGINT PRIMARY KEY,
        entry       TEXT NOT NULL,
        root        BYTEA,
        signature   BYTEA,
        CHECK ((root IS NULL) = (signature IS NULL))
    );",
];

pub fn schema_version() -> usize {
    MIGRATIONS.len()
}

/// Brings the database up to this votehub's schema: the migrations it
/// lacks, in one transaction, under the advisory lock (another node
/// starting at the same moment waits, then finds them applied).
pub async fn migrate(client: &mut Client, url: &str) -> Result<(), StoreError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS votehub_schema (version BIGINT NOT NULL)")
        .await?;
    let found: i64 = match tx
        .query_opt("SELECT version FROM votehub_schema", &[])
        .await?
    {
        Some(row) => row.try_get(0)?,
        None => {
            tx.execute("INSERT INTO votehub_schema (version) VALUES (0)", &[])
                .await?;
            0
        }
    };
    let known = schema_version();
    let done = usize::try_from(found)
        .ok()
        .filter(|&v| v <= known)
        .ok_or_else(|| StoreError::TooNew {
            path: url_without_password(url).into(),
            found,
            known,
        })?;
    for migration in &MIGRATIONS[done..] {
        tx.batch_execute(migration).await?;
    }
    let version = i64::try_from(known).map_err(|_| StoreError::Inconsistent("version".into()))?;
    tx.execute("UPDATE votehub_schema SET version = $1", &[&version])
        .await?;
    tx.commit().await?;
    Ok(())
}

/// A database URL fit for a log line or an error: its password left out.
pub fn url_without_password(url: &str) -> String {
    // A password in the query (`?password=…`) goes too.
    let (url, query) = match url.split_once('?') {
        Some((base, query)) => {
            let kept: Vec<&str> = query
                .split('&')
                .map(|kv| {
                    if kv.starts_with("password=") {
                        "password=***"
                    } else {
                        kv
                    }
                })
                .collect();
            (base, Some(kept.join("&")))
        }
        None => (url, None),
    };
    let base = match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    };
    match query {
        Some(query) => format!("{base}?{query}"),
        None => base,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(
            url_without_password("postgres://hub:s3cret@db.lan:5432/votehub"),
            "postgres://hub:***@db.lan:5432/votehub"
        );
        assert_eq!(
            url_without_password("postgres://hub@db.lan/votehub"),
            "postgres://hub@db.lan/votehub"
        );
        assert_eq!(
            url_without_password("postgres:///votehub"),
            "postgres:///votehub"
        );
        assert_eq!(
            url_without_password(
                "postgres://db.lan/votehub?user=hub&password=s3cret&sslmode=require"
            ),
            "postgres://db.lan/votehub?user=hub&password=***&sslmode=require"
        );
    }
}
