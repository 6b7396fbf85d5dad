//! Every stable error code of the hub, in one enum that HTTP, `/live` and
//! the desktop commands all answer with, and the core's own error type.
//! The doors decide how a code travels (an HTTP status, a live message);
//! the code and its meaning are decided here, once.

use std::sync::Arc;

use crate::core::rules::RuleError;
use crate::core::store::StoreError;

/// A machine-readable error code, as clients see it in `"code"`. Listed
/// in docs/PROTOCOL.md; add one only when a client needs to tell it apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    // Requests
    InvalidBody,
    BodyTooLarge,
    NotFound,
    MethodNotAllowed,
    AdminTokenRequired,
    AdminTokenInvalid,
    // Sessions and ballots
    InvalidSession,
    InvalidRule,
    InvalidBallot,
    SessionNotFound,
    SessionClosed,
    SessionNotDraft,
    SessionNotOpen,
    DeadlinePassed,
    VotesStillOpen,
    LimitReached,
    // The roll
    InvalidVoters,
    VoterNotOnRoll,
    VoterRepresented,
    NotAProxy,
    ProxyRefused,
    AlreadyVoted,
    // The hub itself
    StorageUnavailable,
    ShuttingDown,
    HubNotRunning,
    InvalidSettings,
    ExportFailed,
    InvalidQr,
    // The live door
    OriginNotAllowed,
    WebsocketRequired,
    InvalidJson,
    MissingFields,
    InvalidSessionId,
    UnknownAction,
    BinaryNotSupported,
    TooManySubscriptions,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::InvalidBody => "invalid_body",
            Code::BodyTooLarge => "body_too_large",
            Code::NotFound => "not_found",
            Code::MethodNotAllowed => "method_not_allowed",
            Code::AdminTokenRequired => "admin_token_required",
            Code::AdminTokenInvalid => "admin_token_invalid",
            Code::InvalidSession => "invalid_session",
            Code::InvalidRule => "invalid_rule",
            Code::InvalidBallot => "invalid_ballot",
            Code::SessionNotFound => "session_not_found",
            Code::SessionClosed => "session_closed",
            Code::SessionNotDraft => "session_not_draft",
            Code::SessionNotOpen => "session_not_open",
            Code::DeadlinePassed => "deadline_passed",
            Code::VotesStillOpen => "votes_still_open",
            Code::LimitReached => "limit_reached",
            Code::InvalidVoters => "invalid_voters",
            Code::VoterNotOnRoll => "voter_not_on_roll",
            Code::VoterRepresented => "voter_represented",
            Code::NotAProxy => "not_a_proxy",
            Code::ProxyRefused => "proxy_refused",
            Code::AlreadyVoted => "already_voted",
            Code::StorageUnavailable => "storage_unavailable",
            Code::ShuttingDown => "shutting_down",
            Code::HubNotRunning => "hub_not_running",
            Code::InvalidSettings => "invalid_settings",
            Code::ExportFailed => "export_failed",
            Code::InvalidQr => "invalid_qr",
            Code::OriginNotAllowed => "origin_not_allowed",
            Code::WebsocketRequired => "websocket_required",
            Code::InvalidJson => "invalid_json",
            Code::MissingFields => "missing_fields",
            Code::InvalidSessionId => "invalid_session_id",
            Code::UnknownAction => "unknown_action",
            Code::BinaryNotSupported => "binary_not_supported",
            Code::TooManySubscriptions => "too_many_subscriptions",
        }
    }

    /// Every code, for the documentation test.
    pub const ALL: &[Code] = &[
        Code::InvalidBody,
        Code::BodyTooLarge,
        Code::NotFound,
        Code::MethodNotAllowed,
        Code::AdminTokenRequired,
        Code::AdminTokenInvalid,
        Code::InvalidSession,
        Code::InvalidRule,
        Code::InvalidBallot,
        Code::SessionNotFound,
        Code::SessionClosed,
        Code::SessionNotDraft,
        Code::SessionNotOpen,
        Code::DeadlinePassed,
        Code::VotesStillOpen,
        Code::LimitReached,
        Code::InvalidVoters,
        Code::VoterNotOnRoll,
        Code::VoterRepresented,
        Code::NotAProxy,
        Code::ProxyRefused,
        Code::AlreadyVoted,
        Code::StorageUnavailable,
        Code::ShuttingDown,
        Code::HubNotRunning,
        Code::InvalidSettings,
        Code::ExportFailed,
        Code::InvalidQr,
        Code::OriginNotAllowed,
        Code::WebsocketRequired,
        Code::InvalidJson,
        Code::MissingFields,
        Code::InvalidSessionId,
        Code::UnknownAction,
        Code::BinaryNotSupported,
        Code::TooManySubscriptions,
    ];
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the core refused or failed a call. The text is for people and is
/// sent as is, except for storage failures, whose details are logged and
/// never sent (see [`HubError::public_message`]).
#[derive(Debug, Clone, thiserror::Error)]
pub enum HubError {
    #[error("no session with this id")]
    SessionNotFound,
    #[error("this vote is closed")]
    SessionClosed,
    #[error("only a draft can be edited or deleted")]
    NotDraft,
    #[error("this vote is not open")]
    NotOpen,
    #[error("the deadline of this draft has passed: set another before opening it")]
    DeadlinePassed,
    #[error("a vote of this meeting is still open: close it before closing the day")]
    VotesStillOpen,
    #[error("{0}")]
    InvalidBody(String),
    /// A ballot from a code that is not on the roll: not allowed to vote.
    #[error("this code is not on the voter roll")]
    NotOnRoll,
    /// A roll entry looked up by a code that names no one.
    #[error("this code is not on the voter roll")]
    UnknownCode,
    #[error("this member's proxy is given: the holder votes for them")]
    Represented,
    #[error("this member does not hold that proxy")]
    NotAProxy,
    #[error("{0}")]
    ProxyRefused(String),
    #[error("this member has already voted, and a secret ballot cannot be changed")]
    AlreadyVoted,
    #[error("{0}")]
    InvalidBallot(String),
    #[error("{0}")]
    InvalidSession(String),
    #[error(transparent)]
    Rule(#[from] RuleError),
    #[error("{0}")]
    InvalidRoll(String),
    #[error("limit reached: {0}")]
    Full(&'static str),
    #[error("the hub is shutting down")]
    ShuttingDown,
    #[error("cannot start the writer thread: {0}")]
    Writer(Arc<std::io::Error>),
    /// The store failed; the change was not recorded.
    #[error("storage failure: {0}")]
    Store(Arc<StoreError>),
    /// An export could not be written (the cause is for the log).
    #[error("the export could not be written: {0}")]
    Export(String),
    /// Something asked of a session's log that it does not hold.
    #[error("{0}")]
    NotInLog(&'static str),
    /// An admin-only read of something not public yet.
    #[error("{0}")]
    AdminOnly(&'static str),
}

impl From<StoreError> for HubError {
    fn from(e: StoreError) -> HubError {
        HubError::Store(Arc::new(e))
    }
}

impl HubError {
    pub fn code(&self) -> Code {
        match self {
            HubError::SessionNotFound => Code::SessionNotFound,
            HubError::SessionClosed => Code::SessionClosed,
            HubError::NotDraft => Code::SessionNotDraft,
            HubError::NotOpen => Code::SessionNotOpen,
            HubError::DeadlinePassed => Code::DeadlinePassed,
            HubError::VotesStillOpen => Code::VotesStillOpen,
            HubError::InvalidBody(_) => Code::InvalidBody,
            HubError::NotOnRoll | HubError::UnknownCode => Code::VoterNotOnRoll,
            HubError::Represented => Code::VoterRepresented,
            HubError::NotAProxy => Code::NotAProxy,
            HubError::ProxyRefused(_) => Code::ProxyRefused,
            HubError::AlreadyVoted => Code::AlreadyVoted,
            HubError::InvalidBallot(_) => Code::InvalidBallot,
            HubError::InvalidSession(_) => Code::InvalidSession,
            HubError::Rule(_) => Code::InvalidRule,
            HubError::InvalidRoll(_) => Code::InvalidVoters,
            HubError::Full(_) => Code::LimitReached,
            HubError::ShuttingDown | HubError::Writer(_) => Code::ShuttingDown,
            HubError::Store(_) => Code::StorageUnavailable,
            HubError::Export(_) => Code::ExportFailed,
            HubError::NotInLog(_) => Code::NotFound,
            HubError::AdminOnly(_) => Code::AdminTokenRequired,
        }
    }

    /// What a client is told. Storage failures say only that nothing was
    /// recorded: their details (paths, database messages) stay in the log.
    pub fn public_message(&self) -> String {
        match self {
            HubError::Store(_) => {
                "the hub could not save this change; nothing was recorded, try again".to_owned()
            }
            HubError::Writer(_) => "the hub is shutting down".to_owned(),
            HubError::Export(_) => "the export could not be written".to_owned(),
            other => other.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_details_never_reach_the_client() {
        let e = HubError::from(StoreError::Inconsistent(
            "/home/organiser/secret/path".into(),
        ));
        assert_eq!(e.code(), Code::StorageUnavailable);
        assert!(!e.public_message().contains("secret"));
        assert!(e.to_string().contains("secret"), "but the log keeps them");
    }

    #[test]
    fn every_code_is_listed_in_the_protocol() {
        let protocol = include_str!("../../../docs/PROTOCOL.md");
        for code in Code::ALL {
            assert!(
                protocol.contains(&format!("`{code}`")),
                "docs/PROTOCOL.md does not list `{code}`"
            );
        }
        let distinct: std::collections::HashSet<_> = Code::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(distinct.len(), Code::ALL.len());
    }
}
