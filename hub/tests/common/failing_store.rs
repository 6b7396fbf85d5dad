//! A store that fails on demand, around the real SQLite store: its writes
//! reach SQLite inside the transaction, then the commit is refused (and
//! rolled back), as a full disk or a lost database would.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use uuid::Uuid;
use votehub::SqliteStore;
use votehub::core::clock::Time;
use votehub::core::store::{
    BallotRecord, Loaded, Locked, LogRecord, SecretBallot, SecretVoter, Store, StoreError,
    StoredSession, Txn, Voted, Write,
};

/// The test's hold on a [`FailingStore`].
#[derive(Clone, Default)]
pub struct Switch {
    fail: Arc<AtomicBool>,
    /// While closed, the next transaction waits before it starts.
    gate: Arc<(Mutex<bool>, Condvar)>,
    /// For each refused commit, how many writes it held.
    refused: Arc<Mutex<Vec<usize>>>,
    /// Transactions waiting at the closed gate right now.
    held: Arc<std::sync::atomic::AtomicUsize>,
}

impl Switch {
    pub fn fail(&self, on: bool) {
        self.fail.store(on, Ordering::SeqCst);
    }

    /// Holds every transaction at its start until [`Switch::open_gate`].
    pub fn close_gate(&self) {
        *self.gate.0.lock().expect("gate") = false;
    }

    pub fn open_gate(&self) {
        *self.gate.0.lock().expect("gate") = true;
        self.gate.1.notify_all();
    }

    /// Transactions waiting at the closed gate right now.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::SeqCst)
    }

    /// How many writes each refused commit held.
    pub fn refused(&self) -> Vec<usize> {
        self.refused.lock().expect("refused").clone()
    }
}

pub struct FailingStore {
    inner: SqliteStore,
    switch: Switch,
}

impl FailingStore {
    pub fn new(inner: SqliteStore, switch: Switch) -> FailingStore {
        switch.open_gate();
        FailingStore { inner, switch }
    }
}

impl Store for FailingStore {
    fn load(&mut self) -> Result<Loaded, StoreError> {
        self.inner.load()
    }

    fn begin(&mut self) -> Result<Box<dyn Txn + '_>, StoreError> {
        let (open, wake) = &*self.switch.gate;
        let mut open = open.lock().expect("gate");
        if !*open {
            self.switch.held.fetch_add(1, Ordering::SeqCst);
            while !*open {
                open = wake.wait(open).expect("gate");
            }
            self.switch.held.fetch_sub(1, Ordering::SeqCst);
        }
        drop(open);
        Ok(Box::new(FailingTxn {
            inner: self.inner.begin()?,
            switch: self.switch.clone(),
            writes: 0,
        }))
    }

    fn ballots(&mut self, session: Uuid) -> Result<Vec<BallotRecord>, StoreError> {
        self.inner.ballots(session)
    }

    fn secret(&mut self, session: Uuid) -> Result<(Vec<SecretBallot>, Vec<String>), StoreError> {
        self.inner.secret(session)
    }

    fn scrub(&mut self) -> Result<bool, StoreError> {
        self.inner.scrub()
    }

    fn log(&mut self, session: Uuid) -> Result<LogRecord, StoreError> {
        self.inner.log(session)
    }
}

struct FailingTxn<'a> {
    inner: Box<dyn Txn + 'a>,
    switch: Switch,
    writes: usize,
}

impl Txn for FailingTxn<'_> {
    fn lock_sessions(&mut self, ids: &[Uuid], roll: bool) -> Result<Locked, StoreError> {
        self.inner.lock_sessions(ids, roll)
    }

    fn now(&mut self) -> Result<Time, StoreError> {
        self.inner.now()
    }

    fn session(&mut self, id: Uuid) -> Result<Option<StoredSession>, StoreError> {
        self.inner.session(id)
    }

    fn ballot(&mut self, session: Uuid, voter: &str) -> Result<Option<BallotRecord>, StoreError> {
        self.inner.ballot(session, voter)
    }

    fn voted(&mut self, session: Uuid, member: &str) -> Result<Option<Voted>, StoreError> {
        self.inner.voted(session, member)
    }

    fn secret_all(
        &mut self,
        session: Uuid,
    ) -> Result<(Vec<SecretBallot>, Vec<SecretVoter>), StoreError> {
        self.inner.secret_all(session)
    }

    fn answer(
        &mut self,
        session: Uuid,
        voter: &str,
        ballot_id: &str,
    ) -> Result<Option<String>, StoreError> {
        self.inner.answer(session, voter, ballot_id)
    }

    fn write(&mut self, write: &Write) -> Result<(), StoreError> {
        self.writes += 1;
        self.inner.write(write)
    }

    fn commit(self: Box<Self>) -> Result<(), StoreError> {
        if self.switch.fail.load(Ordering::SeqCst) {
            self.switch
                .refused
                .lock()
                .expect("refused")
                .push(self.writes);
            // Dropping the inner transaction rolls it back.
            return Err(StoreError::Injected("the disk is full (injected)".into()));
        }
        self.inner.commit()
    }
}
