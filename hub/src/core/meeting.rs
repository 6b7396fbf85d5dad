//! A meeting: an assembly's day. Its agenda, attendance and minutes belong
//! to it; when the day is closed and a new one begins, the earlier one stays
//! readable and exportable, and nothing of it shows on the participant page.

use serde::Serialize;
use uuid::Uuid;

use crate::core::clock::Time;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Meeting {
    pub id: Uuid,
    pub title: String,
    pub started_at: Time,
    /// When the day was closed; `None` for the current meeting.
    pub ended_at: Option<Time>,
}
