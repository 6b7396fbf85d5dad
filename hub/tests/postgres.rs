//! The PostgreSQL store against a real server the test starts itself.

mod common;

use common::postgres::Postgres;
use votehub::store::postgres;

#[tokio::test]
async fn nodes_started_together_apply_the_schema_once() {
    let pg = Postgres::start();
    let url = pg.url("votehub");
    // Three nodes at the same moment: each waits for the others' lock and
    // finds the schema there.
    let nodes = futures_util::future::join_all((0..3).map(|_| postgres::connect(&url))).await;
    for node in &nodes {
        assert!(node.is_ok(), "{:?}", node.as_ref().err());
    }
    let pool = nodes
        .into_iter()
        .next()
        .and_then(Result::ok)
        .expect("a node");
    let client = pool.get().await.expect("client");
    let version: i64 = client
        .query_one("SELECT version FROM votehub_schema", &[])
        .await
        .expect("version")
        .get(0);
    assert_eq!(version as usize, postgres::schema_version());
    let rows: i64 = client
        .query_one("SELECT count(*) FROM votehub_schema", &[])
        .await
        .expect("rows")
        .get(0);
    assert_eq!(rows, 1);
    let mut tables: Vec<String> = client
        .query(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
            &[],
        )
        .await
        .expect("tables")
        .iter()
        .map(|r| r.get(0))
        .collect();
    tables.sort();
    assert_eq!(
        tables,
        [
            "answers",
            "attendance",
            "ballots",
            "log_entries",
            "logs",
            "meetings",
            "roll_version",
            "secret_ballots",
            "secret_voted",
            "sessions",
            "settings",
            "votehub_schema",
            "voters",
        ]
    );
    // Every connection commits synchronously, whatever the server's default.
    let sync: String = client
        .query_one("SHOW synchronous_commit", &[])
        .await
        .expect("show")
        .get(0);
    assert_eq!(sync, "on");
}

#[tokio::test]
async fn a_database_from_a_newer_votehub_is_refused_untouched() {
    let pg = Postgres::start();
    let url = pg.url("votehub");
    let pool = postgres::connect(&url).await.expect("first start");
    let newer = postgres::schema_version() as i64 + 1;
    pool.get()
        .await
        .expect("client")
        .execute("UPDATE votehub_schema SET version = $1", &[&newer])
        .await
        .expect("a newer votehub was here");
    let err = postgres::connect(&url).await.expect_err("refused");
    let text = err.to_string();
    assert!(text.contains("newer votehub"), "{text}");
    let version: i64 = pool
        .get()
        .await
        .expect("client")
        .query_one("SELECT version FROM votehub_schema", &[])
        .await
        .expect("version")
        .get(0);
    assert_eq!(version, newer);
}

#[tokio::test]
async fn a_server_that_goes_away_is_an_error_and_comes_back() {
    let mut pg = Postgres::start();
    let url = pg.url("votehub");
    let pool = postgres::connect(&url).await.expect("connect");
    pg.stop();
    assert!(
        postgres::connect(&url).await.is_err(),
        "no server, no store"
    );
    pg.start_again();
    let client = pool.get().await.expect("a new connection once it is back");
    let one: i32 = client
        .query_one("SELECT 1", &[])
        .await
        .expect("query")
        .get(0);
    assert_eq!(one, 1);
}

#[tokio::test]
async fn a_url_that_is_not_one_is_refused_with_its_reason() {
    let err = postgres::connect("postgres://hub:pw@127.0.0.1:notaport/db")
        .await
        .expect_err("refused");
    let text = err.to_string();
    assert!(text.contains("not a PostgreSQL URL"), "{text}");
    assert!(!text.contains(":pw@"), "the password stays out: {text}");
}

#[test]
fn a_store_that_is_neither_stops_the_start_and_keeps_its_password() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(common::binary())
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--store",
            "postgress://hub:pw-42@db/v",
            "--data",
        ])
        .arg(dir.path())
        .output()
        .expect("run");
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("--store"), "{said}");
    assert!(!said.contains("pw-42"), "{said}");
}

/// A batch's last writes leave with its COMMIT, in one round trip: a write
/// that fails there aborts the transaction, the COMMIT rolls it back, and
/// nothing of the batch is kept — nor anything lost of the next one.
#[test]
fn a_write_failing_beside_the_commit_keeps_nothing_of_its_batch() {
    use votehub::core::audit::signing::SignedHead;
    use votehub::core::clock::Time;
    use votehub::core::meeting::Meeting;
    use votehub::core::roll::Member;
    use votehub::core::rules::Rule;
    use votehub::core::session::{Electorate, Secrecy, SessionKind, SessionMeta};
    use votehub::core::store::{Store, StoreError, Write};
    use votehub::core::tally::Scale;

    fn commit(store: &mut dyn Store, writes: &[Write]) -> Result<(), StoreError> {
        let mut txn = store.begin()?;
        for w in writes {
            txn.write(w)?;
        }
        txn.commit()
    }
    let member = |id: &str| Member {
        id: id.into(),
        code: format!("code-{id}"),
        name: id.into(),
        groups: Vec::new(),
        weight: 1,
        proxy_to: None,
    };

    let pg = Postgres::start();
    let mut store = postgres::PostgresStore::open(&pg.url("votehub")).expect("open");
    let meeting = Meeting {
        id: uuid::Uuid::new_v4(),
        title: "AGM".into(),
        started_at: Time::from_millis(1_795_000_000_000),
        ended_at: None,
    };
    let session = uuid::Uuid::new_v4();
    let meta = SessionMeta {
        id: session,
        meeting: meeting.id,
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
    };
    commit(
        &mut store,
        &[
            Write::Meeting(meeting),
            Write::Session(meta),
            Write::Log {
                session,
                key: [7; 32],
                roll: None,
            },
        ],
    )
    .expect("a session with an empty log");

    // A member, then a head over entries the log does not have: the head's
    // statement fails beside the COMMIT.
    let err = commit(
        &mut store,
        &[
            Write::Member(member("ann")),
            Write::Head {
                session,
                head: SignedHead {
                    size: 3,
                    root: [1; 32],
                    signature: [2; 64],
                },
            },
        ],
    )
    .expect_err("a head over missing entries is refused");
    assert!(err.to_string().contains("without its last entry"), "{err}");
    let voters = |store: &mut postgres::PostgresStore| -> Vec<String> {
        let loaded = store.load().expect("load");
        loaded.voters.into_iter().map(|m| m.id).collect()
    };
    assert!(
        voters(&mut store).is_empty(),
        "the failed batch kept its member"
    );

    // The connection went back clean: the next batch commits whole.
    commit(&mut store, &[Write::Member(member("bob"))]).expect("the next batch");
    assert_eq!(voters(&mut store), ["bob"]);
}
