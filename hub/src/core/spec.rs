//! What creating or editing a session takes (`SessionSpec`: the API's
//! body, the window's form, an agenda file's line), and its checks: a spec
//! that passes becomes a `Checked` session, one that does not is refused
//! whole with the field that is wrong.

use serde::{Deserialize, Deserializer};

use crate::core::clock::Time;
use crate::core::error::HubError;
use crate::core::limits::{
    MAX_DESCRIPTION, MAX_DURATION_S, MAX_OPTION_NAME, MAX_OPTIONS, MAX_TITLE,
};
use crate::core::rules::{Method, Rule, RuleSpec};
use crate::core::session::{
    Deadline, Election, Electorate, KindName, Secrecy, SessionKind, SessionMeta, Status,
};
use crate::core::tally::Scale;

/// Reads a field that may be absent (`None`), `null` (`Some(None)`) or a
/// value (`Some(Some(v))`): an edit tells "leave it" from "clear it".
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// What creating a session takes (`POST /api/sessions`, the window's form,
/// an agenda file), and what editing a draft changes (`PATCH`: only the
/// fields given). Unknown fields are refused: a misspelt "electorate" must
/// not quietly open a roll vote to everyone.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionSpec {
    pub title: Option<String>,
    pub description: Option<String>,
    pub rule: Option<RuleSpec>,
    pub electorate: Option<Electorate>,
    pub secrecy: Option<Secrecy>,
    pub scale: Option<Scale>,
    pub kind: Option<KindName>,
    #[serde(default, deserialize_with = "nullable")]
    pub options: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "nullable")]
    pub seats: Option<Option<u64>>,
    #[serde(default, deserialize_with = "nullable")]
    pub method: Option<Option<Method>>,
    #[serde(default, deserialize_with = "nullable")]
    pub min: Option<Option<u64>>,
    #[serde(default, deserialize_with = "nullable")]
    pub max: Option<Option<u64>>,
    /// `draft` or `open` (the default) at creation; not for edits.
    pub status: Option<Status>,
    #[serde(default, deserialize_with = "nullable")]
    pub closes_at: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub duration_s: Option<Option<u64>>,
}

/// A checked spec, ready to become a session.
pub struct Checked {
    pub title: String,
    pub description: String,
    pub kind: SessionKind,
    pub rule: Rule,
    /// See [`SessionMeta::w_from_roll`].
    pub w_from_roll: bool,
    pub electorate: Electorate,
    pub secrecy: Secrecy,
    pub deadline: Option<Deadline>,
}

fn invalid(message: impl Into<String>) -> HubError {
    HubError::InvalidSession(message.into())
}

impl SessionSpec {
    /// This spec laid over a draft's settings: what the draft becomes.
    pub fn over(self, meta: &SessionMeta) -> SessionSpec {
        let mut base = SessionSpec::of(meta);
        let kind = self.kind.unwrap_or(match meta.kind {
            SessionKind::Motion { .. } => KindName::Motion,
            SessionKind::Election(_) => KindName::Election,
        });
        // Switching kind drops what only the other kind has.
        match kind {
            KindName::Motion => {
                base.options = None;
                base.seats = None;
                base.method = None;
                base.min = None;
                base.max = None;
            }
            KindName::Election => base.scale = None,
        }
        if self.closes_at.is_some() || self.duration_s.is_some() {
            base.closes_at = None;
            base.duration_s = None;
        }
        SessionSpec {
            title: self.title.or(base.title),
            description: self.description.or(base.description),
            rule: self.rule.or(base.rule),
            electorate: self.electorate.or(base.electorate),
            secrecy: self.secrecy.or(base.secrecy),
            scale: self.scale.or(base.scale),
            kind: Some(kind),
            options: self.options.or(base.options),
            seats: self.seats.or(base.seats),
            method: self.method.or(base.method),
            min: self.min.or(base.min),
            max: self.max.or(base.max),
            status: self.status,
            closes_at: self.closes_at.or(base.closes_at),
            duration_s: self.duration_s.or(base.duration_s),
        }
    }

    /// The spec that would make `meta` again.
    fn of(meta: &SessionMeta) -> SessionSpec {
        let mut spec = SessionSpec {
            title: Some(meta.title.clone()),
            description: Some(meta.description.clone()),
            rule: Some({
                let mut rule = RuleSpec::from(meta.rule.clone());
                if meta.w_from_roll {
                    rule.electorate = None;
                }
                rule
            }),
            electorate: Some(meta.electorate),
            secrecy: Some(meta.secrecy),
            ..SessionSpec::default()
        };
        match &meta.kind {
            SessionKind::Motion { scale } => {
                spec.kind = Some(KindName::Motion);
                spec.scale = Some(*scale);
            }
            SessionKind::Election(e) => {
                spec.kind = Some(KindName::Election);
                spec.options = Some(Some(e.options.clone()));
                spec.seats = Some(Some(u64::from(e.seats)));
                spec.method = Some(Some(e.method));
                if e.method == Method::Selection {
                    spec.min = Some(Some(u64::from(e.min)));
                    spec.max = Some(Some(u64::from(e.max)));
                }
            }
        }
        match meta.deadline {
            Some(Deadline::At(t)) => spec.closes_at = Some(Some(t.to_rfc3339())),
            Some(Deadline::After(s)) => spec.duration_s = Some(Some(u64::from(s))),
            None => {}
        }
        spec
    }

    /// Checks every field and how they fit together. `roll_weight` is what
    /// an inertia rule's electorate defaults to (again when a draft opens);
    /// `now` judges deadlines.
    pub fn check(self, roll_weight: u64, now: Time) -> Result<Checked, HubError> {
        let title = self.title.unwrap_or_default().trim().to_owned();
        if title.is_empty() || title.chars().count() > MAX_TITLE {
            return Err(invalid(format!(
                "a session needs a title of 1 to {MAX_TITLE} characters"
            )));
        }
        let description = self.description.unwrap_or_default();
        if description.chars().count() > MAX_DESCRIPTION {
            return Err(invalid(format!(
                "the description is limited to {MAX_DESCRIPTION} characters"
            )));
        }
        let election_field = [
            (
                "options",
                self.options.as_ref().is_some_and(Option::is_some),
            ),
            ("seats", self.seats.as_ref().is_some_and(Option::is_some)),
            ("method", self.method.as_ref().is_some_and(Option::is_some)),
            ("min", self.min.as_ref().is_some_and(Option::is_some)),
            ("max", self.max.as_ref().is_some_and(Option::is_some)),
        ];
        let kind = match self.kind.unwrap_or(KindName::Motion) {
            KindName::Motion => {
                if let Some((field, _)) = election_field.iter().find(|(_, given)| *given) {
                    return Err(invalid(format!(
                        "a motion takes no \"{field}\": that is for \"kind\": \"election\""
                    )));
                }
                SessionKind::Motion {
                    scale: self.scale.unwrap_or_default(),
                }
            }
            KindName::Election => {
                if self.scale.is_some() {
                    return Err(invalid(
                        "an election takes no \"scale\": its ballots mark options",
                    ));
                }
                SessionKind::Election(check_election(
                    self.options.flatten(),
                    self.seats.flatten(),
                    self.method.flatten(),
                    self.min.flatten(),
                    self.max.flatten(),
                )?)
            }
        };
        let spec = self.rule.unwrap_or(RuleSpec {
            kind: "majority".into(),
            ..RuleSpec::default()
        });
        let w_from_roll = spec.kind == "inertia" && spec.electorate.is_none();
        // A draft may be prepared before the roll: its W is settled at the
        // opening, so any placeholder does until then.
        let draft = self.status == Some(Status::Draft);
        let rule = spec.resolve(if draft {
            roll_weight.max(1)
        } else {
            roll_weight
        })?;
        if let SessionKind::Election(e) = &kind {
            rule.check_election(e.method)?;
        }
        let deadline = match (self.closes_at.flatten(), self.duration_s.flatten()) {
            (Some(_), Some(_)) => {
                return Err(invalid("give \"closes_at\" or \"duration_s\", not both"));
            }
            (Some(at), None) => {
                let at = Time::parse(&at).ok_or_else(|| {
                    invalid("\"closes_at\" must be a time in RFC 3339, like 2026-11-29T15:30:00Z")
                })?;
                if at <= now {
                    return Err(invalid("\"closes_at\" is in the past"));
                }
                Some(Deadline::At(at))
            }
            (None, Some(seconds)) => {
                if !(1..=MAX_DURATION_S).contains(&seconds) {
                    return Err(invalid(format!(
                        "\"duration_s\" must be from 1 to {MAX_DURATION_S} seconds"
                    )));
                }
                Some(Deadline::After(seconds as u32))
            }
            (None, None) => None,
        };
        let electorate = self.electorate.unwrap_or_default();
        let secrecy = self.secrecy.unwrap_or_default();
        if secrecy == Secrecy::Secret && electorate != Electorate::Roll {
            return Err(invalid(
                "a secret vote is for the roll (\"electorate\": \"roll\"): who voted is kept by name",
            ));
        }
        if secrecy == Secrecy::Secret && !rule.groups.is_empty() {
            return Err(invalid(
                "a secret vote cannot count groups apart: a small group's count would show how its members voted",
            ));
        }
        Ok(Checked {
            title,
            description,
            kind,
            rule,
            w_from_roll,
            electorate,
            secrecy,
            deadline,
        })
    }
}

fn check_election(
    options: Option<Vec<String>>,
    seats: Option<u64>,
    method: Option<Method>,
    min: Option<u64>,
    max: Option<u64>,
) -> Result<Election, HubError> {
    let options: Vec<String> = options
        .unwrap_or_default()
        .into_iter()
        .map(|o| o.trim().to_owned())
        .collect();
    if !(2..=MAX_OPTIONS).contains(&options.len()) {
        return Err(invalid(format!(
            "an election needs 2 to {MAX_OPTIONS} \"options\""
        )));
    }
    if let Some(bad) = options
        .iter()
        .find(|o| o.is_empty() || o.chars().count() > MAX_OPTION_NAME)
    {
        return Err(invalid(format!(
            "each option needs a name of 1 to {MAX_OPTION_NAME} characters (got {bad:?})"
        )));
    }
    for (i, o) in options.iter().enumerate() {
        if options[..i].contains(o) {
            return Err(invalid(format!("the option {o:?} is listed twice")));
        }
    }
    let n = options.len() as u64;
    let seats = seats.unwrap_or(1);
    if !(1..=n).contains(&seats) {
        return Err(invalid(format!(
            "\"seats\" must be from 1 to the number of options ({n})"
        )));
    }
    let method = method.unwrap_or_default();
    let (min, max) = match method {
        Method::Approval => {
            if min.is_some() || max.is_some() {
                return Err(invalid(
                    "\"min\" and \"max\" apply to selection elections, not approval",
                ));
            }
            (0, n)
        }
        Method::Selection => {
            let max = max.unwrap_or(seats);
            let min = min.unwrap_or(0);
            if max == 0 || max > n {
                return Err(invalid(format!(
                    "\"max\" must be from 1 to the number of options ({n})"
                )));
            }
            if min > max {
                return Err(invalid(format!(
                    "\"min\" ({min}) is more than \"max\" ({max})"
                )));
            }
            (min, max)
        }
    };
    Ok(Election {
        options,
        seats: seats as u16,
        method,
        min: min as u16,
        max: max as u16,
    })
}
