//! The hub core: sessions, ballots, tallies, rules and the roll, kept in
//! step with the store. Pure parts (`rules`, `tally`) know nothing of IO;
//! `writer` is the one thread that changes anything; `hub` is the handle
//! every door holds. Nothing here knows HTTP, WebSocket or Tauri.

pub mod agenda;
pub mod audit;
pub mod cards;
pub mod clock;
pub mod error;
pub mod export;
pub mod hub;
pub mod limits;
pub mod meeting;
pub mod minutes;
pub mod roll;
pub mod roll_file;
pub mod rules;
pub mod session;
pub mod spec;
pub mod store;
pub mod tally;
mod writer;

pub use error::{Code, HubError};
pub use hub::{ConnectionGuard, Hub, Published, Subscription};
pub use limits::Limits;
pub use writer::{Attendance, CastRequest};
