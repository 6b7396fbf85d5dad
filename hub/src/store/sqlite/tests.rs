use rusqlite::{Connection, params};

use super::*;
use crate::core::audit::signing::SignedHead;
use crate::core::rules::{Method, Outcome, Rule};
use crate::core::session::{Deadline, SessionKind};
use crate::core::session::{Election, Electorate, Secrecy, SessionState, Status};
use crate::core::tally::Scale;
use crate::core::tally::{Ballot, Choice};

fn meta(id: Uuid, meeting: Uuid) -> SessionMeta {
    SessionMeta {
        id,
        meeting,
        title: "Budget".into(),
        description: String::new(),
        kind: SessionKind::Motion {
            scale: Scale::Choice,
        },
        rule: Rule::default(),
        electorate: Electorate::Open,
        secrecy: Secrecy::Named,
        w_from_roll: false,
        deadline: None,
        created_at: Time::from_millis(1_795_000_000_000),
    }
}

fn meeting() -> Meeting {
    Meeting {
        id: Uuid::new_v4(),
        title: "AGM".into(),
        started_at: Time::from_millis(1_795_000_000_000),
        ended_at: None,
    }
}

fn ballot(voter: &str, ballot: Ballot) -> BallotRecord {
    BallotRecord {
        voter: voter.into(),
        ballot,
        cast_at: Time::from_millis(1_795_000_060_000),
        weight: 1,
        groups: Vec::new(),
        holder: None,
    }
}

fn member(id: &str, code: &str, name: &str) -> Member {
    Member {
        id: id.into(),
        code: code.into(),
        name: name.into(),
        groups: vec!["smith".into()],
        weight: 1,
        proxy_to: None,
    }
}

fn commit(store: &mut SqliteStore, writes: &[Write]) -> Result<(), StoreError> {
    let mut txn = store.begin()?;
    for w in writes {
        txn.write(w)?;
    }
    txn.commit()
}

#[test]
fn a_committed_batch_is_there_after_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let id = Uuid::new_v4();
    let day = meeting();
    let election_id = Uuid::new_v4();
    let election = SessionMeta {
        id: election_id,
        kind: SessionKind::Election(Election {
            options: vec!["Ann".into(), "Bob".into(), "Cy".into()],
            seats: 2,
            method: Method::Selection,
            min: 0,
            max: 2,
        }),
        deadline: Some(Deadline::After(90)),
        ..meta(election_id, day.id)
    };
    {
        let mut store = SqliteStore::open(dir.path()).expect("open");
        let mut closed = SessionState::new(&meta(id, day.id), Status::Closed, 1);
        closed.result = Some(Outcome::Rejected);
        closed.opened_at = Some(Time::from_millis(1_795_000_001_000));
        closed.closed_at = Some(Time::from_millis(1_795_000_120_000));
        closed.seq = 3;
        commit(
            &mut store,
            &[
                Write::Meeting(day.clone()),
                Write::Session(meta(id, day.id)),
                Write::Ballot {
                    session: id,
                    record: ballot("ann", Ballot::Choice(Choice::For)),
                },
                Write::Ballot {
                    session: id,
                    record: ballot("ann", Ballot::Choice(Choice::Against)),
                },
                Write::Answer {
                    session: id,
                    voter: "ann".into(),
                    ballot_id: "b-1".into(),
                    answer: "{\"seq\":1}".into(),
                },
                Write::State {
                    session: id,
                    state: closed,
                },
                Write::Session(election.clone()),
                Write::Ballot {
                    session: election_id,
                    record: ballot("bob", Ballot::Selection(vec![0, 2])),
                },
                Write::Member(member("m-1", "ABCD-EFGH", "Ann")),
            ],
        )
        .expect("commit");
    }
    let mut store = SqliteStore::open(dir.path()).expect("reopen");
    let loaded = store.load().expect("load");
    assert_eq!(loaded.meetings, vec![day]);
    let s = &loaded.sessions[0];
    assert_eq!(s.meta, meta(id, s.meta.meeting));
    assert_eq!((s.seq, s.position, s.status), (3, 1, Status::Closed));
    assert_eq!(s.result, Some(Outcome::Rejected));
    assert_eq!(s.ballots.len(), 1, "a re-vote replaces");
    assert_eq!(s.ballots[0].ballot, Ballot::Choice(Choice::Against));
    let e = &loaded.sessions[1];
    assert_eq!(e.meta, election);
    assert_eq!(e.status, Status::Draft, "no state written yet");
    assert_eq!(e.ballots[0].ballot, Ballot::Selection(vec![0, 2]));
    assert_eq!(loaded.voters[0].groups, vec!["smith".to_string()]);
    let mut txn = store.begin().expect("begin");
    assert_eq!(
        txn.ballot(id, "ann").expect("lookup").map(|b| b.ballot),
        Some(Ballot::Choice(Choice::Against))
    );
    assert_eq!(
        txn.answer(id, "ann", "b-1").expect("answer").as_deref(),
        Some("{\"seq\":1}")
    );
    assert_eq!(txn.answer(id, "bob", "b-1").expect("answer"), None);
}

#[test]
fn a_transaction_reads_its_own_writes_and_a_dropped_one_leaves_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = SqliteStore::open(dir.path()).expect("open");
    let day = meeting();
    let id = Uuid::new_v4();
    {
        let mut txn = store.begin().expect("begin");
        txn.write(&Write::Meeting(day.clone())).expect("meeting");
        txn.write(&Write::Session(meta(id, day.id)))
            .expect("session");
        txn.write(&Write::Ballot {
            session: id,
            record: ballot("bob", Ballot::Grade(2)),
        })
        .expect("ballot");
        assert_eq!(
            txn.ballot(id, "bob").expect("read").map(|b| b.ballot),
            Some(Ballot::Grade(2))
        );
    }
    let loaded = store.load().expect("load");
    assert!(loaded.sessions.is_empty() && loaded.meetings.is_empty());
}

#[test]
fn a_failed_batch_leaves_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = SqliteStore::open(dir.path()).expect("open");
    let day = meeting();
    let id = Uuid::new_v4();
    // A ballot for a session that does not exist breaks a foreign key: the
    // whole batch must roll back.
    let err = commit(
        &mut store,
        &[
            Write::Meeting(day.clone()),
            Write::Session(meta(id, day.id)),
            Write::Ballot {
                session: Uuid::new_v4(),
                record: ballot("x", Ballot::Choice(Choice::For)),
            },
        ],
    );
    assert!(err.is_err());
    assert!(store.load().expect("load").sessions.is_empty());
}

#[test]
fn a_deleted_draft_leaves_nothing_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = SqliteStore::open(dir.path()).expect("open");
    let day = meeting();
    let id = Uuid::new_v4();
    commit(
        &mut store,
        &[
            Write::Meeting(day.clone()),
            Write::Session(meta(id, day.id)),
        ],
    )
    .expect("commit");
    commit(&mut store, &[Write::DeleteSession(id)]).expect("delete");
    assert!(store.load().expect("load").sessions.is_empty());
}

#[test]
fn a_database_of_the_first_schema_is_brought_up_to_date() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let conn = Connection::open(dir.path().join(DB_FILE)).expect("sqlite");
        conn.pragma_update(None, "application_id", APPLICATION_ID)
            .expect("id");
        conn.execute_batch(
            "CREATE TABLE sessions (id TEXT PRIMARY KEY, title TEXT NOT NULL, description TEXT NOT NULL,
                rule TEXT NOT NULL, electorate TEXT NOT NULL, scale TEXT NOT NULL, result TEXT,
                created_at TEXT NOT NULL, closed_at TEXT, seq INTEGER NOT NULL);
             CREATE TABLE ballots (session_id TEXT NOT NULL REFERENCES sessions(id), voter TEXT NOT NULL,
                choice TEXT, grade INTEGER, cast_at TEXT NOT NULL, PRIMARY KEY (session_id, voter),
                CHECK ((choice IS NULL) <> (grade IS NULL))) WITHOUT ROWID;
             CREATE TABLE voters (code TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, groups TEXT NOT NULL);
             INSERT INTO sessions VALUES ('6f1c1f5e-8a43-4c4e-9a51-3d0f5f9f2a10', 'Old', '',
                '{\"kind\":\"majority\"}', 'open', 'choice', 'adopted', '2026-11-20T10:00:00Z',
                '2026-11-20T10:05:00Z', 2);
             INSERT INTO sessions VALUES ('7f1c1f5e-8a43-4c4e-9a51-3d0f5f9f2a10', 'Still open', '',
                '{\"kind\":\"majority\"}', 'open', 'nuanced', NULL, '2026-11-20T11:00:00Z', NULL, 1);
             INSERT INTO ballots VALUES ('6f1c1f5e-8a43-4c4e-9a51-3d0f5f9f2a10', 'ann', 'for', NULL,
                '2026-11-20T10:01:00Z');
             INSERT INTO ballots VALUES ('7f1c1f5e-8a43-4c4e-9a51-3d0f5f9f2a10', 'bob', NULL, -2,
                '2026-11-20T11:01:00Z');
             INSERT INTO voters VALUES ('ABCD-EFGH', 'Ann', '[\"smith\"]');
             PRAGMA user_version = 1;",
        )
        .expect("v1");
    }
    let mut store = SqliteStore::open(dir.path()).expect("upgrade");
    let loaded = store.load().expect("load");
    assert_eq!(loaded.meetings.len(), 1);
    assert_eq!(
        loaded.meetings[0].started_at,
        Time::parse("2026-11-20T10:00:00Z").expect("time")
    );
    let [old, open] = &loaded.sessions[..] else {
        panic!("two sessions")
    };
    assert_eq!(
        (old.status, old.position, old.result),
        (Status::Closed, 1, Some(Outcome::Adopted))
    );
    assert_eq!(old.opened_at, Some(old.meta.created_at));
    assert_eq!((open.status, open.position), (Status::Open, 2));
    assert_eq!(
        open.meta.kind,
        SessionKind::Motion {
            scale: Scale::Nuanced
        }
    );
    assert_eq!(open.ballots[0].ballot, Ballot::Grade(-2));
    assert_eq!(
        (open.ballots[0].weight, open.meta.secrecy),
        (1, Secrecy::Named)
    );
    // Members kept before ids existed are known by their code, weigh 1.
    assert_eq!(loaded.voters, vec![member("ABCD-EFGH", "ABCD-EFGH", "Ann")]);
    assert!(
        loaded
            .sessions
            .iter()
            .all(|s| s.meta.meeting == loaded.meetings[0].id)
    );
    drop(store);
    // Opening it again changes nothing more.
    let mut again = SqliteStore::open(dir.path()).expect("reopen");
    assert_eq!(again.load().expect("load").meetings.len(), 1);
}

#[test]
fn refuses_foreign_and_corrupt_files_without_touching_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(DB_FILE);
    std::fs::write(
        &path,
        b"these are my holiday notes, not a database at all....",
    )
    .expect("write");
    let before = std::fs::read(&path).expect("read");
    assert!(matches!(
        SqliteStore::open(dir.path()),
        Err(StoreError::Corrupt { .. })
    ));
    assert_eq!(std::fs::read(&path).expect("read"), before);

    let other = tempfile::tempdir().expect("tempdir");
    let conn = Connection::open(other.path().join(DB_FILE)).expect("sqlite");
    conn.execute_batch("CREATE TABLE recipes (name TEXT)")
        .expect("create");
    drop(conn);
    assert!(matches!(
        SqliteStore::open(other.path()),
        Err(StoreError::Foreign { .. })
    ));
}

#[test]
fn refuses_a_database_from_a_newer_votehub() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(SqliteStore::open(dir.path()).expect("open"));
    let conn = Connection::open(dir.path().join(DB_FILE)).expect("sqlite");
    conn.pragma_update(None, "user_version", 99)
        .expect("pragma");
    drop(conn);
    assert!(matches!(
        SqliteStore::open(dir.path()),
        Err(StoreError::TooNew { .. })
    ));
}

#[test]
fn members_presence_and_weighed_ballots_read_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let day = meeting();
    let id = Uuid::new_v4();
    let mut ann = member("m-a", "AAAA-AAAA", "Ann");
    let bob = Member {
        weight: 40,
        ..member("m-b", "BBBB-BBBB", "Bob")
    };
    {
        let mut store = SqliteStore::open(dir.path()).expect("open");
        commit(
            &mut store,
            &[
                Write::Meeting(day.clone()),
                Write::Session(meta(id, day.id)),
                Write::Member(ann.clone()),
                Write::Member(bob.clone()),
                Write::Presence {
                    meeting: day.id,
                    member: "m-a".into(),
                    present: true,
                },
                Write::Presence {
                    meeting: day.id,
                    member: "m-b".into(),
                    present: true,
                },
                Write::Ballot {
                    session: id,
                    record: BallotRecord {
                        weight: 40,
                        groups: vec!["smith".into()],
                        holder: Some("m-a".into()),
                        ..ballot("m-b", Ballot::Choice(Choice::For))
                    },
                },
            ],
        )
        .expect("commit");
        // A reissued code and a proxy given: the same member, changed.
        ann.code = "CCCC-CCCC".into();
        ann.proxy_to = Some("m-b".into());
        commit(
            &mut store,
            &[
                Write::Member(ann.clone()),
                Write::Presence {
                    meeting: day.id,
                    member: "m-b".into(),
                    present: false,
                },
            ],
        )
        .expect("commit");
    }
    let mut store = SqliteStore::open(dir.path()).expect("reopen");
    let loaded = store.load().expect("load");
    assert_eq!(loaded.voters, vec![ann, bob]);
    assert_eq!(loaded.present, vec!["m-a".to_string()]);
    assert_eq!(
        loaded.checked,
        vec![("m-a".to_string(), true), ("m-b".to_string(), false)]
    );
    let b = &loaded.sessions[0].ballots[0];
    assert_eq!(
        (b.weight, b.groups.clone(), b.holder.as_deref()),
        (40, vec!["smith".to_string()], Some("m-a"))
    );
}

#[test]
fn a_database_of_schema_3_is_brought_up_to_date_with_its_secret_voters_weights() {
    let dir = tempfile::tempdir().expect("tempdir");
    let day = meeting();
    let running = Uuid::new_v4();
    {
        let mut conn = Connection::open(dir.path().join(DB_FILE)).expect("sqlite");
        conn.pragma_update(None, "application_id", APPLICATION_ID)
            .expect("id");
        schema::migrations()
            .to_version(&mut conn, 3)
            .expect("schema 3");
        // Meetings and sessions are the same under schema 3.
        let mut v3 = SqliteStore { conn };
        let secret = SessionMeta {
            electorate: Electorate::Roll,
            secrecy: Secrecy::Secret,
            ..meta(running, day.id)
        };
        commit(
            &mut v3,
            &[Write::Meeting(day.clone()), Write::Session(secret)],
        )
        .expect("v3 rows");
        v3.conn
            .execute_batch(&format!(
                "INSERT INTO voters (code, name, groups, id, weight) VALUES ('ABCD-EFGH', 'Ann', '[]', 'm-ann', 3);
                 INSERT INTO secret_voted (session_id, member_id, holder, ballot_id)
                    VALUES ('{running}', 'm-ann', NULL, 'b-1');"
            ))
            .expect("a secret vote running under schema 3");
    }
    let mut store = SqliteStore::open(dir.path()).expect("upgrade");
    let weight: i64 = store
        .conn
        .query_row(
            "SELECT weight FROM secret_voted WHERE member_id = 'm-ann'",
            [],
            |r| r.get(0),
        )
        .expect("weight");
    assert_eq!(weight, 3, "the weight the roll gave her");
    // And a secret ballot can be recorded after the upgrade.
    let id = Uuid::new_v4();
    let secret = SessionMeta {
        electorate: Electorate::Roll,
        secrecy: Secrecy::Secret,
        ..meta(id, day.id)
    };
    commit(
        &mut store,
        &[
            Write::Session(secret),
            Write::SecretVoted {
                session: id,
                member: "m-ann".into(),
                holder: None,
                weight: 3,
                voted: Voted { ballot_id: None },
            },
        ],
    )
    .expect("a secret voter recorded");
}

#[test]
fn a_secret_vote_keeps_who_voted_apart_from_what() {
    let dir = tempfile::tempdir().expect("tempdir");
    let day = meeting();
    let id = Uuid::new_v4();
    let secret = SessionMeta {
        electorate: Electorate::Roll,
        secrecy: Secrecy::Secret,
        ..meta(id, day.id)
    };
    let mut store = SqliteStore::open(dir.path()).expect("open");
    commit(
        &mut store,
        &[
            Write::Meeting(day.clone()),
            Write::Session(secret.clone()),
            Write::SecretVoted {
                session: id,
                member: "m-a".into(),
                holder: None,
                weight: 1,
                voted: Voted {
                    ballot_id: Some("b-1".into()),
                },
            },
            Write::SecretBallot {
                session: id,
                ballot: SecretBallot {
                    ballot: Ballot::Choice(Choice::For),
                    weight: 2,
                    tracker: "t".repeat(16),
                },
            },
        ],
    )
    .expect("commit");
    let mut txn = store.begin().expect("begin");
    assert_eq!(
        txn.voted(id, "m-a")
            .expect("voted")
            .and_then(|v| v.ballot_id),
        Some("b-1".into())
    );
    assert_eq!(txn.voted(id, "m-b").expect("voted"), None);
    drop(txn);
    let (ballots, voted) = store.secret(id).expect("secret");
    assert_eq!(voted, vec!["m-a".to_string()]);
    assert_eq!(
        (ballots[0].weight, &ballots[0].ballot),
        (2, &Ballot::Choice(Choice::For))
    );
    assert!(store.scrub().expect("scrub"), "nothing holds the log");
    let loaded = store.load().expect("load");
    assert_eq!(loaded.sessions[0].meta, secret);
    assert_eq!(loaded.sessions[0].secret.len(), 1);
    assert!(loaded.sessions[0].ballots.is_empty());
    // The log is empty after the scrub: nothing of the commit's order is left there.
    let wal = dir.path().join(format!("{DB_FILE}-wal"));
    assert_eq!(std::fs::metadata(wal).map(|m| m.len()).unwrap_or(0), 0);
}

#[test]
fn a_ballot_of_the_meeting_checks_its_caster_in_unless_checked_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let day = meeting();
    let id = Uuid::new_v4();
    let roll_session = SessionMeta {
        electorate: Electorate::Roll,
        ..meta(id, day.id)
    };
    let mut store = SqliteStore::open(dir.path()).expect("open");
    commit(
        &mut store,
        &[
            Write::Meeting(day.clone()),
            Write::Session(roll_session),
            // Cy voted himself; Dee's ballot was cast by Eve; Fay voted
            // and was then checked out.
            Write::Ballot {
                session: id,
                record: ballot("m-c", Ballot::Choice(Choice::For)),
            },
            Write::Ballot {
                session: id,
                record: BallotRecord {
                    holder: Some("m-e".into()),
                    ..ballot("m-d", Ballot::Choice(Choice::For))
                },
            },
            Write::Ballot {
                session: id,
                record: ballot("m-f", Ballot::Choice(Choice::Against)),
            },
            Write::Presence {
                meeting: day.id,
                member: "m-f".into(),
                present: false,
            },
        ],
    )
    .expect("commit");
    let mut present = store.load().expect("load").present;
    present.sort();
    assert_eq!(present, vec!["m-c".to_string(), "m-e".to_string()]);
}

#[test]
fn a_database_of_schema_4_keeps_its_logs_in_order_under_integer_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let day = meeting();
    let (first, second) = (Uuid::new_v4(), Uuid::new_v4());
    let head = |size: u8| SignedHead {
        size: u64::from(size),
        root: [size; 32],
        signature: [size; 64],
    };
    {
        let mut conn = Connection::open(dir.path().join(DB_FILE)).expect("sqlite");
        conn.pragma_update(None, "application_id", APPLICATION_ID)
            .expect("id");
        schema::migrations()
            .to_version(&mut conn, 4)
            .expect("schema 4");
        let mut v4 = SqliteStore { conn };
        let mut older = meta(first, day.id);
        older.created_at = Time::from_millis(1_000);
        commit(
            &mut v4,
            &[
                Write::Meeting(day.clone()),
                Write::Session(older),
                Write::Session(meta(second, day.id)),
            ],
        )
        .expect("v4 sessions");
        // Written as schema 4 did, the second session's rows first, and
        // indexes whose text order is not their numeric order (2 < 10).
        for (session, entries) in [
            (second, ["s0", "s1"].as_slice()),
            (first, &["f0", "f1", "f2"]),
        ] {
            v4.conn
                .execute(
                    "INSERT INTO logs (session_id, log_key, roll) VALUES (?1, ?2, NULL)",
                    params![session.to_string(), [7u8; 32].as_slice()],
                )
                .expect("log");
            for (i, e) in entries.iter().enumerate().rev() {
                let idx = if i == 2 { 10 } else { i as i64 };
                v4.conn
                    .execute(
                        "INSERT INTO log_entries (session_id, idx, entry) VALUES (?1, ?2, ?3)",
                        params![session.to_string(), idx, format!("{{\"e\":\"{e}\"}}")],
                    )
                    .expect("entry");
            }
            for size in [2u8, 1] {
                let h = head(size);
                v4.conn
                    .execute(
                        "INSERT INTO log_heads (session_id, size, root, signature) VALUES (?1, ?2, ?3, ?4)",
                        params![session.to_string(), h.size as i64, h.root.as_slice(), h.signature.as_slice()],
                    )
                    .expect("head");
            }
        }
    }
    let mut store = SqliteStore::open(dir.path()).expect("upgrade");
    let log = store.log(first).expect("first log");
    assert_eq!(
        log.entries,
        ["{\"e\":\"f0\"}", "{\"e\":\"f1\"}", "{\"e\":\"f2\"}"]
    );
    assert_eq!(log.heads, [head(1), head(2)]);
    let log = store.log(second).expect("second log");
    assert_eq!(log.entries, ["{\"e\":\"s0\"}", "{\"e\":\"s1\"}"]);
    assert_eq!(log.heads, [head(1), head(2)]);
    // The logs are numbered in the order their sessions were made, and a
    // log goes on growing under its number after the upgrade.
    let ids: Vec<i64> = [first, second]
        .iter()
        .map(|s| read::log_id(&store.conn, *s).expect("read").expect("a log"))
        .collect();
    assert!(ids[0] < ids[1], "{ids:?}");
    commit(
        &mut store,
        &[
            Write::Entry {
                session: second,
                index: 2,
                entry: "{\"e\":\"s2\"}".into(),
            },
            Write::Head {
                session: second,
                head: head(3),
            },
        ],
    )
    .expect("appended");
    let log = store.log(second).expect("second log");
    assert_eq!(
        log.entries.last().map(String::as_str),
        Some("{\"e\":\"s2\"}")
    );
    assert_eq!(log.heads.last(), Some(&head(3)));
    // Deleting a session takes its log's rows, and only those.
    commit(&mut store, &[Write::DeleteSession(second)]).expect("deleted");
    assert!(store.log(second).expect("read").entries.is_empty());
    assert_eq!(store.log(first).expect("read").entries.len(), 3);
}
