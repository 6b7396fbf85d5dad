//! Who has a ballot in each session, as far as this node has read, so that
//! a batch asks the database for the earlier ballots only of voters who
//! may have one (a change of mind), not of every voter: that read is made
//! under the session's lock, which every node's ballots wait on.
//!
//! A session's set is complete as of a `seq`: every ballot written before
//! the session reached it. The batch that locks the session at that same
//! `seq` knows that a voter outside the set has no ballot; at a later one,
//! it first reads who voted since (rows are marked with the `seq` of the
//! batch that wrote them, plus one). What a batch learns or writes counts
//! only once it commits.

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

/// One session's voters, complete as of `seq`.
struct Known {
    seq: i64,
    voters: HashSet<String>,
}

/// What a batch read of a session's voters, under its lock at `seq`.
pub(super) enum Seen {
    /// Every voter of the session.
    All { seq: i64, voters: Vec<String> },
    /// The voters who voted since the set's `seq`.
    Since { seq: i64, voters: Vec<String> },
}

impl Seen {
    fn session_seq(&self) -> i64 {
        match self {
            Seen::All { seq, .. } | Seen::Since { seq, .. } => *seq,
        }
    }
}

/// How a batch finds its voters' earlier ballots in one session, locked at
/// `seq`.
pub(super) enum Plan {
    /// Nothing known: read every voter of the session, and all the batch's
    /// voters' ballots.
    All { seq: i64 },
    /// Read who voted since `since`, and the ballots of `ask` (the rest may
    /// have one only if they voted since).
    Since {
        seq: i64,
        since: i64,
        ask: Vec<String>,
    },
    /// The set is current: only `ask` may have a ballot.
    Current { ask: Vec<String> },
}

/// This node's sets, one per session it took ballots for.
#[derive(Default)]
pub(super) struct Voters {
    sessions: HashMap<Uuid, Known>,
}

/// What one batch changed, applied to [`Voters`] once it commits.
#[derive(Default)]
pub(super) struct Changed {
    /// Per session: what was read, and under which `seq`.
    pub seen: Vec<(Uuid, Seen)>,
    /// Per session: the voters whose ballots the batch wrote.
    pub written: HashMap<Uuid, Vec<String>>,
    /// Per session: the `seq` the batch left it at.
    pub states: HashMap<Uuid, i64>,
    /// Per session: the `seq` the batch locked it at.
    pub locked: HashMap<Uuid, i64>,
    /// Sessions deleted or closed (no more ballots): forgotten.
    pub forget: Vec<Uuid>,
}

impl Voters {
    /// How to find the earlier ballots of `voters` in `session`, locked at
    /// `locked`, by a transaction that has already written the ballots of
    /// `written` there (not in the set until it commits).
    pub fn plan(&self, session: Uuid, locked: i64, voters: &[String], written: &[String]) -> Plan {
        match self.sessions.get(&session) {
            None => Plan::All { seq: locked },
            Some(known) if known.seq > locked => Plan::All { seq: locked },
            Some(known) => {
                let ask = voters
                    .iter()
                    .filter(|v| known.voters.contains(*v) || written.contains(v))
                    .cloned()
                    .collect();
                if known.seq == locked {
                    Plan::Current { ask }
                } else {
                    Plan::Since {
                        seq: locked,
                        since: known.seq,
                        ask,
                    }
                }
            }
        }
    }

    /// Takes in what a committed batch read and wrote.
    pub fn commit(&mut self, changed: Changed) {
        for (session, seen) in changed.seen {
            let seq = seen.session_seq();
            match seen {
                Seen::All { voters, .. } => {
                    self.sessions.insert(
                        session,
                        Known {
                            seq,
                            voters: voters.into_iter().collect(),
                        },
                    );
                }
                // (Forgotten meanwhile: a later batch reads it all.)
                Seen::Since { voters, .. } => {
                    if let Some(known) = self.sessions.get_mut(&session) {
                        known.voters.extend(voters);
                        known.seq = seq;
                    }
                }
            }
        }
        // The batch's own ballots join the set. A set stays complete as of
        // its `seq` whatever a batch does (every ballot written since is
        // marked above it), and moves on to the batch's new `seq` when the
        // batch locked the session at the set's own.
        let touched: HashSet<Uuid> = changed
            .written
            .keys()
            .chain(changed.states.keys())
            .copied()
            .collect();
        for session in touched {
            let Some(known) = self.sessions.get_mut(&session) else {
                continue;
            };
            let written = changed.written.get(&session);
            let state = changed.states.get(&session);
            match changed.locked.get(&session) {
                // Ballots written without the lock (rows without a mark), or
                // with no new state (a `seq` others would mark theirs with
                // too): not a history this set can follow.
                None => {
                    self.sessions.remove(&session);
                }
                Some(_) if written.is_some() && state.is_none() => {
                    self.sessions.remove(&session);
                }
                Some(&from) => {
                    if let Some(voters) = written {
                        known.voters.extend(voters.iter().cloned());
                    }
                    if let Some(&seq) = state
                        && from == known.seq
                        && seq >= known.seq
                    {
                        known.seq = seq;
                    }
                }
            }
        }
        for session in changed.forget {
            self.sessions.remove(&session);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    /// A set of `voters` read whole at `seq`.
    fn read_at(seq: i64, voters: &[&str]) -> (Voters, Uuid) {
        let s = Uuid::new_v4();
        let mut sets = Voters::default();
        sets.commit(Changed {
            seen: vec![(
                s,
                Seen::All {
                    seq,
                    voters: names(voters),
                },
            )],
            ..Changed::default()
        });
        (sets, s)
    }

    #[test]
    fn a_session_never_read_is_read_whole() {
        let sets = Voters::default();
        assert!(matches!(
            sets.plan(Uuid::nil(), 3, &names(&["a"]), &[]),
            Plan::All { seq: 3 }
        ));
    }

    #[test]
    fn a_current_set_asks_only_for_voters_it_holds_or_the_batch_wrote() {
        let (sets, s) = read_at(5, &["a", "b"]);
        let Plan::Current { ask } = sets.plan(s, 5, &names(&["a", "c", "d"]), &names(&["d"]))
        else {
            panic!("current at the seq it was read at");
        };
        assert_eq!(ask, ["a", "d"]);
        // Another node wrote since: who voted since then is read first.
        let Plan::Since { seq, since, ask } = sets.plan(s, 7, &names(&["b", "c"]), &[]) else {
            panic!("behind");
        };
        assert_eq!((seq, since, ask), (7, 5, names(&["b"])));
    }

    #[test]
    fn own_ballots_and_later_voters_join_the_set() {
        let (mut sets, s) = read_at(5, &["a"]);
        sets.commit(Changed {
            written: HashMap::from([(s, names(&["b"]))]),
            states: HashMap::from([(s, 6)]),
            locked: HashMap::from([(s, 5)]),
            ..Changed::default()
        });
        let Plan::Current { ask } = sets.plan(s, 6, &names(&["a", "b", "c"]), &[]) else {
            panic!("current after its own batch");
        };
        assert_eq!(ask, ["a", "b"]);
        // One batch reads who voted since (c, on another node), writes d's
        // ballot and moves the session from 9 to 10.
        sets.commit(Changed {
            seen: vec![(
                s,
                Seen::Since {
                    seq: 9,
                    voters: names(&["c"]),
                },
            )],
            written: HashMap::from([(s, names(&["d"]))]),
            states: HashMap::from([(s, 10)]),
            locked: HashMap::from([(s, 9)]),
            forget: Vec::new(),
        });
        let Plan::Current { ask } = sets.plan(s, 10, &names(&["b", "c", "d", "e"]), &[]) else {
            panic!("current after reading who voted since and its own ballots");
        };
        assert_eq!(ask, ["b", "c", "d"]);
    }

    #[test]
    fn a_batch_that_did_not_read_others_changes_leaves_the_set_where_it_was() {
        let (mut sets, s) = read_at(5, &["a"]);
        // Locked at 7 (another node wrote 6 and 7), b's ballot written and
        // the session moved to 8 without reading who voted since 5: the set
        // holds b, and is still complete as of 5 only.
        sets.commit(Changed {
            written: HashMap::from([(s, names(&["b"]))]),
            states: HashMap::from([(s, 8)]),
            locked: HashMap::from([(s, 7)]),
            ..Changed::default()
        });
        let Plan::Since { since, ask, .. } = sets.plan(s, 8, &names(&["a", "b", "c"]), &[]) else {
            panic!("still behind");
        };
        assert_eq!((since, ask), (5, names(&["a", "b"])));
    }

    #[test]
    fn ballots_written_without_the_lock_or_a_new_state_forget_the_set() {
        let (mut sets, s) = read_at(5, &[]);
        sets.commit(Changed {
            written: HashMap::from([(s, names(&["a"]))]),
            ..Changed::default()
        });
        assert!(matches!(
            sets.plan(s, 5, &names(&["a"]), &[]),
            Plan::All { .. }
        ));
        let (mut sets, s) = read_at(5, &[]);
        sets.commit(Changed {
            written: HashMap::from([(s, names(&["a"]))]),
            locked: HashMap::from([(s, 5)]),
            ..Changed::default()
        });
        assert!(matches!(
            sets.plan(s, 5, &names(&["a"]), &[]),
            Plan::All { .. }
        ));
    }

    #[test]
    fn a_closed_session_is_forgotten() {
        let (mut sets, s) = read_at(5, &["a"]);
        sets.commit(Changed {
            states: HashMap::from([(s, 6)]),
            locked: HashMap::from([(s, 5)]),
            forget: vec![s],
            ..Changed::default()
        });
        assert!(matches!(
            sets.plan(s, 6, &names(&["a"]), &[]),
            Plan::All { .. }
        ));
    }
}
