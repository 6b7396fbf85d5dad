//! Bounds that keep memory finite whatever clients send. The core enforces
//! them, so the HTTP API and the desktop window get the same limits.

/// Characters in a session title.
pub const MAX_TITLE: usize = 200;
/// Characters in a session description.
pub const MAX_DESCRIPTION: usize = 10_000;
/// Characters in a voter id (open sessions) or a typed code.
pub const MAX_VOTER: usize = 128;
/// Characters in a name on the roll.
pub const MAX_NAME: usize = 128;
/// Characters in a group name.
pub const MAX_GROUP_NAME: usize = 64;
/// Options of an election.
pub const MAX_OPTIONS: usize = 100;
/// Characters in an option's name.
pub const MAX_OPTION_NAME: usize = 200;
/// Seconds a timed vote may last, or be extended by at once.
pub const MAX_DURATION_S: u64 = 86_400;
/// Characters in a ballot id.
pub const MAX_BALLOT_ID: usize = 64;
/// A member's weight at most (shares, mandates).
pub const MAX_WEIGHT: u64 = 1_000_000;
/// Characters in a secret ballot's tracker, at least and at most.
pub const MIN_TRACKER: usize = 16;
pub const MAX_TRACKER: usize = 64;

#[derive(Debug, Clone)]
pub struct Limits {
    pub max_sessions: usize,
    pub max_ballots_per_session: u64,
    pub max_roll: usize,
    /// People registered in one call.
    pub max_roll_per_call: usize,
    /// People registered from one roll file.
    pub max_roll_file: usize,
    /// Commands waiting for the writer; senders wait when it is full.
    pub queue: usize,
    /// Commands written in one transaction at most.
    pub max_batch: usize,
    /// Proxies one member may hold at once.
    pub max_proxies: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_sessions: 10_000,
            max_ballots_per_session: 1_000_000,
            max_roll: 200_000,
            max_roll_per_call: 10_000,
            max_roll_file: 50_000,
            queue: 8_192,
            max_batch: 1_024,
            max_proxies: 2,
        }
    }
}
