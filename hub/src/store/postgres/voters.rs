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

/// How a batch finds its voters' earlier ballots in one session.
pub(super) enum Plan {
    /// Nothing known: read every voter of the session, and all these
    /// ballots.
    All,
    /// Read who voted since `since`, and the ballots of `ask` (the rest may
    /// be new only if they voted since).
    Since { since: i64, ask: Vec<String> },
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
    /// Sessions whose ballots may have been written without a mark, or
    /// removed: forgotten.
    pub forget: Vec<Uuid>,
}

impl Voters {
    /// How to find the earlier ballots of `voters` in `session`, locked at
    /// `locked`.
    pub fn plan(&self, session: Uuid, locked: i64, voters: &[String]) -> Plan {
        match self.sessions.get(&session) {
            None => Plan::All,
            Some(known) if known.seq > locked => Plan::All,
            Some(known) => {
                let ask = voters
                    .iter()
                    .filter(|v| known.voters.contains(*v))
                    .cloned()
                    .collect();
                if known.seq == locked {
                    Plan::Current { ask }
                } else {
                    Plan::Since {
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
        // A batch that wrote ballots for a session moved its `seq` on: the
        // set stays complete if it was complete at the `seq` the batch
        // locked the session at.
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
            let from = changed.locked.get(&session);
            match changed.states.get(&session) {
                Some(&seq) if from == Some(&known.seq) && seq >= known.seq => {
                    if let Some(voters) = changed.written.get(&session) {
                        known.voters.extend(voters.iter().cloned());
                    }
                    known.seq = seq;
                }
                // Not a batch this set can follow (ballots with no new
                // state, or changes by others since the set's `seq` that
                // this batch did not read): read whole next time.
                _ => {
                    self.sessions.remove(&session);
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

    #[test]
    fn a_session_never_read_is_read_whole() {
        let voters = Voters::default();
        assert!(matches!(
            voters.plan(Uuid::nil(), 3, &names(&["a"])),
            Plan::All
        ));
    }

    #[test]
    fn a_current_set_asks_only_for_voters_it_holds() {
        let s = Uuid::new_v4();
        let mut voters = Voters::default();
        voters.commit(Changed {
            seen: vec![(
                s,
                Seen::All {
                    seq: 5,
                    voters: names(&["a", "b"]),
                },
            )],
            ..Changed::default()
        });
        let Plan::Current { ask } = voters.plan(s, 5, &names(&["a", "c"])) else {
            panic!("current at the seq it was read at");
        };
        assert_eq!(ask, ["a"]);
        // Another node wrote since: who voted since then is read first.
        let Plan::Since { since, ask } = voters.plan(s, 7, &names(&["b", "c"])) else {
            panic!("behind");
        };
        assert_eq!((since, ask), (5, names(&["b"])));
    }

    #[test]
    fn own_ballots_and_later_voters_join_the_set() {
        let s = Uuid::new_v4();
        let mut voters = Voters::default();
        voters.commit(Changed {
            seen: vec![(
                s,
                Seen::All {
                    seq: 5,
                    voters: names(&["a"]),
                },
            )],
            written: HashMap::from([(s, names(&["b"]))]),
            states: HashMap::from([(s, 6)]),
            locked: HashMap::from([(s, 5)]),
            forget: Vec::new(),
        });
        let Plan::Current { ask } = voters.plan(s, 6, &names(&["a", "b", "c"])) else {
            panic!("current after its own batch");
        };
        assert_eq!(ask, ["a", "b"]);
        voters.commit(Changed {
            seen: vec![(
                s,
                Seen::Since {
                    seq: 9,
                    voters: names(&["c"]),
                },
            )],
            ..Changed::default()
        });
        let Plan::Current { ask } = voters.plan(s, 9, &names(&["c", "d"])) else {
            panic!("current after reading who voted since");
        };
        assert_eq!(ask, ["c"]);
    }

    #[test]
    fn a_change_by_others_the_batch_did_not_read_forgets_the_set() {
        let s = Uuid::new_v4();
        let mut voters = Voters::default();
        voters.commit(Changed {
            seen: vec![(
                s,
                Seen::All {
                    seq: 5,
                    voters: Vec::new(),
                },
            )],
            ..Changed::default()
        });
        // Locked at 7 (another node wrote 6 and 7), closed without reading
        // who voted: the set cannot say who did.
        voters.commit(Changed {
            states: HashMap::from([(s, 8)]),
            locked: HashMap::from([(s, 7)]),
            ..Changed::default()
        });
        assert!(matches!(voters.plan(s, 8, &names(&["a"])), Plan::All));
    }

    #[test]
    fn ballots_written_without_a_new_state_forget_the_set() {
        let s = Uuid::new_v4();
        let mut voters = Voters::default();
        voters.commit(Changed {
            seen: vec![(
                s,
                Seen::All {
                    seq: 5,
                    voters: Vec::new(),
                },
            )],
            ..Changed::default()
        });
        voters.commit(Changed {
            written: HashMap::from([(s, names(&["a"]))]),
            ..Changed::default()
        });
        assert!(matches!(voters.plan(s, 5, &names(&["a"])), Plan::All));
    }
}
