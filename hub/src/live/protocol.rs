//! The `/live` wire protocol, declared once: what clients send and what
//! the hub sends them. Parsing follows the seed (`websocket.py`) rule for
//! rule, minus its crashes.

use std::fmt::Write as _;

use serde::{
    Deserialize, Deserializer, Serialize,
    de::{IgnoredAny, MapAccess, SeqAccess, Visitor},
};
use serde_json::Value;
use uuid::Uuid;

use crate::core::clock::Time;
use crate::core::error::Code;
use crate::core::rules::{GroupStanding, Outcome};
use crate::core::tally::{Halves, OptionCounts};

// ── /live: client → server ────────────────────────────────────────────────

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Subscribe,
    Unsubscribe,
    /// votehub's addition: `{"action": "ping"}` is answered `{"event":
    /// "pong"}`, so that a page can tell a silent network from a quiet
    /// session (browsers answer the server's pings without telling it).
    Ping,
}

/// A well-formed request from a live client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveRequest {
    pub action: Action,
    pub session_id: Uuid,
}

/// Everything a live client can get wrong. The texts are the seed's, word
/// for word, so that its clients keep showing the same messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LiveError {
    #[error("JSON invalide")]
    InvalidJson,
    #[error("Champs 'action' et 'session_id' requis")]
    MissingFields,
    #[error("session_id invalide")]
    InvalidSessionId,
    #[error("Action inconnue: {0}")]
    UnknownAction(String),
    #[error("Messages binaires non pris en charge: envoyez du JSON en texte")]
    BinaryNotSupported,
    #[error("Trop d'abonnements sur cette connexion (maximum {0})")]
    TooManySubscriptions(usize),
}

/// The top level of a client message, read without building a full JSON
/// tree: fields other than `action` and `session_id` are skipped unparsed,
/// so huge numbers or deep values there cost nothing and cannot fail.
struct Incoming {
    object: bool,
    action: Option<Value>,
    session_id: Option<Value>,
}

impl<'de> Deserialize<'de> for Incoming {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Incoming;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Incoming, A::Error> {
                let mut out = Incoming {
                    object: true,
                    action: None,
                    session_id: None,
                };
                // Like Python's json.loads, a repeated key keeps its last value.
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    match key.as_ref() {
                        "action" => out.action = Some(map.next_value()?),
                        "session_id" => out.session_id = Some(map.next_value()?),
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(out)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Incoming, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Incoming::not_object())
            }
            fn visit_bool<E>(self, _: bool) -> Result<Incoming, E> {
                Ok(Incoming::not_object())
            }
            fn visit_i64<E>(self, _: i64) -> Result<Incoming, E> {
                Ok(Incoming::not_object())
            }
            fn visit_u64<E>(self, _: u64) -> Result<Incoming, E> {
                Ok(Incoming::not_object())
            }
            fn visit_f64<E>(self, _: f64) -> Result<Incoming, E> {
                Ok(Incoming::not_object())
            }
            fn visit_str<E>(self, _: &str) -> Result<Incoming, E> {
                Ok(Incoming::not_object())
            }
            fn visit_unit<E>(self) -> Result<Incoming, E> {
                Ok(Incoming::not_object())
            }
        }
        d.deserialize_any(V)
    }
}

impl Incoming {
    fn not_object() -> Incoming {
        Incoming {
            object: false,
            action: None,
            session_id: None,
        }
    }
}

/// Python's truthiness, which the seed applies to `action` and `session_id`.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// `str(value)` as Python prints it, for "Action inconnue: …".
fn python_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => {
            let mut out = String::new();
            python_repr(other, &mut out);
            out
        }
    }
}

fn python_repr(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("None"),
        Value::Bool(true) => out.push_str("True"),
        Value::Bool(false) => out.push_str("False"),
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or_default();
            if f.fract() == 0.0 && f.abs() < 1e16 {
                let _ = write!(out, "{f:.1}");
            } else {
                let _ = write!(out, "{f}");
            }
        }
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::String(s) => {
            out.push('\'');
            for c in s.chars() {
                match c {
                    '\'' => out.push_str("\\'"),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    c => out.push(c),
                }
            }
            out.push('\'');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                python_repr(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                python_repr(&Value::String(k.clone()), out);
                out.push_str(": ");
                python_repr(item, out);
            }
            out.push('}');
        }
    }
}

/// Parses one text message the way the seed does: JSON first, then both
/// fields present and truthy, then a UUID, then the action.
pub fn parse_live_request(text: &str) -> Result<LiveRequest, LiveError> {
    let incoming: Incoming = serde_json::from_str(text).map_err(|_| LiveError::InvalidJson)?;
    // The seed calls `data.get(...)` and crashes on a non-object; votehub
    // answers as if the fields were missing.
    if !incoming.object {
        return Err(LiveError::MissingFields);
    }
    // A ping needs no session (the seed knows no ping: its clients never
    // send one).
    if incoming.action.as_ref().and_then(Value::as_str) == Some("ping") {
        return Ok(LiveRequest {
            action: Action::Ping,
            session_id: Uuid::nil(),
        });
    }
    let (Some(action), Some(session_id)) = (incoming.action, incoming.session_id) else {
        return Err(LiveError::MissingFields);
    };
    if !truthy(&action) || !truthy(&session_id) {
        return Err(LiveError::MissingFields);
    }
    let session_id = match &session_id {
        Value::String(s) => parse_uuid(s).ok_or(LiveError::InvalidSessionId)?,
        _ => return Err(LiveError::InvalidSessionId),
    };
    let action = match action.as_str() {
        Some("subscribe") => Action::Subscribe,
        Some("unsubscribe") => Action::Unsubscribe,
        _ => return Err(LiveError::UnknownAction(python_str(&action))),
    };
    Ok(LiveRequest { action, session_id })
}

/// The UUID spellings Python's `uuid.UUID(str)` accepts in practice: plain,
/// hyphenated, braced and `urn:uuid:` — ASCII hex digits only (Python also
/// takes other Unicode digits, which is a bug, not a feature).
pub fn parse_uuid(s: &str) -> Option<Uuid> {
    Uuid::try_parse(s).ok()
}

// ── /live: server → client ────────────────────────────────────────────────

/// The events the server sends on `/live`.
#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum LiveEvent<'a> {
    Subscribed {
        session_id: Uuid,
    },
    Unsubscribed {
        session_id: Uuid,
    },
    VoteUpdate {
        session_id: Uuid,
        #[serde(flatten)]
        counts: LiveCounts<'a>,
    },
    SessionClosed {
        session_id: Uuid,
        result: Outcome,
        #[serde(flatten)]
        counts: LiveCounts<'a>,
        /// Elections: who was elected, in rank order.
        #[serde(skip_serializing_if = "Option::is_none")]
        elected: Option<&'a [u16]>,
        /// Elections: who is tied for the seats left, in id order.
        #[serde(skip_serializing_if = "Option::is_none")]
        tied: Option<&'a [u16]>,
    },
    /// To subscribers of the nil UUID: the list or the agenda changed.
    SessionsChanged,
    /// The answer to a client's `ping`.
    Pong,
}

/// The tally fields of `vote_update` and `session_closed`: the seed's names
/// first, votehub's additions after.
#[derive(Debug, Serialize)]
pub struct LiveCounts<'a> {
    pub votes_for: u64,
    pub votes_against: u64,
    pub votes_total: u64,
    pub votes_abstain: u64,
    pub seq: u64,
    /// Motions: where they stand under their rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub needed: Option<Halves>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adopted_if_closed_now: Option<bool>,
    /// How many people's ballots count (the totals are weights).
    pub ballots: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grades: Option<&'a [u64; 7]>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub groups: &'a [GroupStanding],
    /// Elections: each option's count, as in the tally.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<OptionCounts<'a>>,
    /// Timed votes: when it closes, by the hub's clock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closes_at: Option<Time>,
}

/// An error sent on `/live`: the seed's `{"error"}` plus a stable `code`.
#[derive(Debug, Serialize)]
pub struct LiveErrorBody<'a> {
    pub error: String,
    pub code: &'a str,
}

impl LiveError {
    pub fn code(&self) -> Code {
        match self {
            LiveError::InvalidJson => Code::InvalidJson,
            LiveError::MissingFields => Code::MissingFields,
            LiveError::InvalidSessionId => Code::InvalidSessionId,
            LiveError::UnknownAction(_) => Code::UnknownAction,
            LiveError::BinaryNotSupported => Code::BinaryNotSupported,
            LiveError::TooManySubscriptions(_) => Code::TooManySubscriptions,
        }
    }

    pub fn to_json(&self) -> String {
        to_json(&LiveErrorBody {
            error: self.to_string(),
            code: self.code().as_str(),
        })
    }
}

/// Serialises a wire value. The wire types contain nothing that JSON cannot
/// represent (no maps with non-string keys, no non-finite floats reach
/// them), so a failure here is a programming error, logged and answered
/// with an empty object rather than a panic.
pub fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|e| {
        tracing::error!(error = %e, "wire value failed to serialise");
        "{}".to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "6f1c1f5e-8a43-4c4e-9a51-3d0f5f9f2a10";

    fn err(text: &str) -> LiveError {
        parse_live_request(text).expect_err(text)
    }

    #[test]
    fn seed_rules_in_order() {
        assert_eq!(err("not json"), LiveError::InvalidJson);
        assert_eq!(err(""), LiveError::InvalidJson);
        assert_eq!(err("{}"), LiveError::MissingFields);
        assert_eq!(err(r#"{"action":"subscribe"}"#), LiveError::MissingFields);
        assert_eq!(
            err(r#"{"action":"","session_id":"x"}"#),
            LiveError::MissingFields
        );
        assert_eq!(
            err(r#"{"action":0,"session_id":"x"}"#),
            LiveError::MissingFields
        );
        assert_eq!(
            err(r#"{"action":"subscribe","session_id":"nope"}"#),
            LiveError::InvalidSessionId
        );
        assert_eq!(
            err(&format!(r#"{{"action":"dance","session_id":"{ID}"}}"#)),
            LiveError::UnknownAction("dance".into())
        );
        // The invalid id is reported before the unknown action, as in the seed.
        assert_eq!(
            err(r#"{"action":"dance","session_id":"x"}"#),
            LiveError::InvalidSessionId
        );
    }

    #[test]
    fn what_crashes_the_seed_gets_an_answer() {
        assert_eq!(err("[]"), LiveError::MissingFields);
        assert_eq!(err("42"), LiveError::MissingFields);
        assert_eq!(err(r#""subscribe""#), LiveError::MissingFields);
        assert_eq!(err("null"), LiveError::MissingFields);
        assert_eq!(
            err(r#"{"action":"subscribe","session_id":123}"#),
            LiveError::InvalidSessionId
        );
        assert_eq!(
            err(r#"{"action":"subscribe","session_id":["x"]}"#),
            LiveError::InvalidSessionId
        );
        // Non-ASCII digits are not hex digits.
        assert_eq!(
            err(r#"{"action":"subscribe","session_id":"١١١١١١١١١١١١١١١١١١١١١١١١١١١١١١١١"}"#),
            LiveError::InvalidSessionId
        );
        // Deep nesting is skipped without recursion where it is ignored…
        let deep = "[".repeat(100_000) + &"]".repeat(100_000);
        assert_eq!(err(&deep), LiveError::MissingFields);
        let ignored = format!(r#"{{"x":{deep},"action":"subscribe"}}"#);
        assert_eq!(err(&ignored), LiveError::MissingFields);
        // …and refused, not overflowing the stack, where it would be read.
        let action = format!(r#"{{"action":{deep},"session_id":"{ID}"}}"#);
        assert_eq!(err(&action), LiveError::InvalidJson);
    }

    #[test]
    fn unknown_non_string_actions_print_like_python() {
        let unknown =
            |a: &str| err(&format!(r#"{{"action":{a},"session_id":"{ID}"}}"#)).to_string();
        assert_eq!(unknown("1"), "Action inconnue: 1");
        assert_eq!(unknown("true"), "Action inconnue: True");
        assert_eq!(unknown("1.5"), "Action inconnue: 1.5");
        assert_eq!(unknown(r#"["a", 2]"#), "Action inconnue: ['a', 2]");
        assert_eq!(unknown(r#"{"k": null}"#), "Action inconnue: {'k': None}");
    }

    #[test]
    fn accepts_what_the_seed_accepts() {
        let ok = |t: &str| parse_live_request(t).expect(t);
        let r = ok(&format!(r#"{{"action":"subscribe","session_id":"{ID}"}}"#));
        assert_eq!(r.action, Action::Subscribe);
        let upper = ID.to_uppercase();
        ok(&format!(
            r#"{{"action":"unsubscribe","session_id":"{upper}"}}"#
        ));
        ok(&format!(
            r#"{{"action":"subscribe","session_id":"{{{ID}}}"}}"#
        ));
        ok(&format!(
            r#"{{"action":"subscribe","session_id":"urn:uuid:{ID}"}}"#
        ));
        let simple = ID.replace('-', "");
        ok(&format!(
            r#"{{"action":"subscribe","session_id":"{simple}"}}"#
        ));
        // Extra fields, even absurd ones, are ignored as in the seed.
        ok(&format!(
            r#"{{"action":"subscribe","session_id":"{ID}","n":1e999999,"deep":[[[[]]]],"big":123456789012345678901234567890}}"#
        ));
        // A repeated key keeps its last value, as json.loads does.
        let r = ok(&format!(
            r#"{{"action":"x","action":"unsubscribe","session_id":"{ID}"}}"#
        ));
        assert_eq!(r.action, Action::Unsubscribe);
    }

    #[test]
    fn a_ping_needs_no_session_and_is_answered_pong() {
        for text in [
            r#"{"action":"ping"}"#.to_owned(),
            format!(r#"{{"action":"ping","session_id":"{ID}"}}"#),
        ] {
            assert_eq!(
                parse_live_request(&text).expect("ping").action,
                Action::Ping
            );
        }
        assert_eq!(to_json(&LiveEvent::Pong), r#"{"event":"pong"}"#);
        // Still the seed's answer for anything else without a session.
        assert_eq!(err(r#"{"action":"subscribe"}"#), LiveError::MissingFields);
    }

    #[test]
    fn errors_carry_text_and_code() {
        let v: Value = serde_json::from_str(&LiveError::InvalidJson.to_json()).expect("json");
        assert_eq!(
            v,
            serde_json::json!({"error": "JSON invalide", "code": "invalid_json"})
        );
    }
}
