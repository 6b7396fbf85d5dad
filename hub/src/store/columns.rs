//! Column encodings: the one place where typed values become SQLite text
//! and back. A value that does not read back is "inconsistent data", never
//! a guess.

use uuid::Uuid;

use crate::core::clock::Time;
use crate::core::rules::{Method, Outcome, Rule};
use crate::core::session::{Electorate, Secrecy, Status};
use crate::core::store::StoreError;
use crate::core::tally::{Ballot, Choice, Counts, GRADES, MotionCounts, Scale, Tally};

fn bad(what: &str, value: impl std::fmt::Debug) -> StoreError {
    StoreError::Inconsistent(format!("bad {what} {value:?}"))
}

pub fn electorate(e: Electorate) -> &'static str {
    match e {
        Electorate::Open => "open",
        Electorate::Roll => "roll",
    }
}

pub fn electorate_from(s: &str) -> Result<Electorate, StoreError> {
    match s {
        "open" => Ok(Electorate::Open),
        "roll" => Ok(Electorate::Roll),
        other => Err(bad("electorate", other)),
    }
}

pub fn scale(s: Scale) -> &'static str {
    match s {
        Scale::Choice => "choice",
        Scale::Nuanced => "nuanced",
    }
}

pub fn scale_from(s: &str) -> Result<Scale, StoreError> {
    match s {
        "choice" => Ok(Scale::Choice),
        "nuanced" => Ok(Scale::Nuanced),
        other => Err(bad("scale", other)),
    }
}

pub fn secrecy(s: Secrecy) -> &'static str {
    match s {
        Secrecy::Named => "named",
        Secrecy::Secret => "secret",
    }
}

pub fn secrecy_from(s: &str) -> Result<Secrecy, StoreError> {
    match s {
        "named" => Ok(Secrecy::Named),
        "secret" => Ok(Secrecy::Secret),
        other => Err(bad("secrecy", other)),
    }
}

pub fn status_from(s: &str) -> Result<Status, StoreError> {
    match s {
        "draft" => Ok(Status::Draft),
        "open" => Ok(Status::Open),
        "closed" => Ok(Status::Closed),
        other => Err(bad("status", other)),
    }
}

pub fn method_from(s: &str) -> Result<Method, StoreError> {
    match s {
        "selection" => Ok(Method::Selection),
        "approval" => Ok(Method::Approval),
        other => Err(bad("method", other)),
    }
}

pub fn outcome_from(s: &str) -> Result<Outcome, StoreError> {
    Outcome::parse(s).ok_or_else(|| bad("result", s))
}

/// The rule is kept as its JSON wire form, which the rule module owns and
/// validates again when it is read back.
pub fn rule(rule: &Rule) -> Result<String, StoreError> {
    serde_json::to_string(rule).map_err(|e| StoreError::Inconsistent(format!("rule: {e}")))
}

pub fn rule_from(s: &str) -> Result<Rule, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Inconsistent(format!("rule: {e}")))
}

/// A list of names (election options, voter groups) as a JSON array.
pub fn names(names: &[String]) -> Result<String, StoreError> {
    serde_json::to_string(names).map_err(|e| StoreError::Inconsistent(e.to_string()))
}

pub fn names_from(s: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Inconsistent(format!("names: {e}")))
}

/// Option ids (a ballot's choices, who was elected) as `0 3 5`.
pub fn ids(ids: &[u16]) -> String {
    ids.iter().map(u16::to_string).collect::<Vec<_>>().join(" ")
}

pub fn ids_from(s: &str) -> Result<Vec<u16>, StoreError> {
    s.split_whitespace()
        .map(|id| id.parse().map_err(|_| bad("option id", id)))
        .collect()
}

pub fn weight(w: u64) -> Result<i64, StoreError> {
    i64::try_from(w).map_err(|_| bad("weight", w))
}

pub fn weight_from(n: i64) -> Result<u64, StoreError> {
    u64::try_from(n)
        .ok()
        .filter(|w| *w >= 1)
        .ok_or_else(|| bad("weight", n))
}

pub fn time_from(s: &str) -> Result<Time, StoreError> {
    Time::parse(s).ok_or_else(|| bad("time", s))
}

pub fn uuid_from(s: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(s).map_err(|_| bad("id", s))
}

/// The columns a ballot is kept in: `choice`, `grade`, `options` (a
/// selection's ids) or `marks` (an approval's marks, one letter per option:
/// `f`or, `a`gainst, `-` abstain).
pub struct BallotColumns {
    pub choice: Option<&'static str>,
    pub grade: Option<i64>,
    pub options: Option<String>,
    pub marks: Option<String>,
}

pub fn ballot(ballot: &Ballot) -> BallotColumns {
    let mut c = BallotColumns {
        choice: None,
        grade: None,
        options: None,
        marks: None,
    };
    match ballot {
        Ballot::Choice(choice) => c.choice = Some(choice.as_str()),
        Ballot::Grade(g) => c.grade = Some(i64::from(*g)),
        Ballot::Selection(chosen) => c.options = Some(ids(chosen)),
        Ballot::Approval(marks) => {
            c.marks = Some(
                marks
                    .iter()
                    .map(|m| match m {
                        Choice::For => 'f',
                        Choice::Against => 'a',
                        Choice::Abstain => '-',
                    })
                    .collect(),
            )
        }
    }
    c
}

pub fn ballot_from(
    choice: Option<String>,
    grade: Option<i64>,
    options: Option<String>,
    marks: Option<String>,
) -> Result<Ballot, StoreError> {
    match (choice, grade, options, marks) {
        (Some(c), None, None, None) => Choice::parse(&c)
            .map(Ballot::Choice)
            .ok_or_else(|| bad("choice", c)),
        (None, Some(g), None, None) => Ballot::grade(g).ok_or_else(|| bad("grade", g)),
        (None, None, Some(o), None) => Ok(Ballot::Selection(ids_from(&o)?)),
        (None, None, None, Some(m)) => m
            .chars()
            .map(|c| match c {
                'f' => Ok(Choice::For),
                'a' => Ok(Choice::Against),
                '-' => Ok(Choice::Abstain),
                other => Err(bad("mark", other)),
            })
            .collect::<Result<_, _>>()
            .map(Ballot::Approval),
        other => Err(bad("ballot", other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ballot_reads_back() {
        for b in [
            Ballot::Choice(Choice::Against),
            Ballot::Grade(-2),
            Ballot::Selection(vec![]),
            Ballot::Selection(vec![0, 7, 99]),
            Ballot::Approval(vec![Choice::For, Choice::Abstain, Choice::Against]),
        ] {
            let c = ballot(&b);
            assert_eq!(
                ballot_from(c.choice.map(str::to_owned), c.grade, c.options, c.marks)
                    .expect("reads back"),
                b
            );
        }
        assert!(ballot_from(None, None, None, Some("fx".into())).is_err());
        assert!(ballot_from(Some("for".into()), Some(1), None, None).is_err());
    }
}

/// A tally as a shared store keeps it beside its session's state (JSON of
/// its counts, as they are in memory): a hub that follows another reads it
/// rather than counting every ballot again.
pub fn tally(t: &Tally) -> Result<String, StoreError> {
    serde_json::to_string(&StoredTally::from(t)).map_err(|e| bad("tally", e))
}

pub fn tally_from(s: &str) -> Result<Tally, StoreError> {
    let stored: StoredTally = serde_json::from_str(s).map_err(|e| bad("tally", e))?;
    Ok(stored.into())
}

#[derive(serde::Serialize, serde::Deserialize)]
struct StoredTally {
    ballots: u64,
    weight: u64,
    counts: StoredCounts,
}

#[derive(serde::Serialize, serde::Deserialize)]
enum StoredCounts {
    Motion {
        votes_for: u64,
        votes_against: u64,
        votes_abstain: u64,
        grades: Option<[u64; GRADES]>,
        groups: std::collections::BTreeMap<String, u64>,
    },
    Selection {
        blank: u64,
        votes: Vec<u64>,
    },
    Approval {
        blank: u64,
        marks: Vec<[u64; 3]>,
    },
}

impl From<&Tally> for StoredTally {
    fn from(t: &Tally) -> StoredTally {
        StoredTally {
            ballots: t.ballots,
            weight: t.weight,
            counts: match &t.counts {
                Counts::Motion(m) => StoredCounts::Motion {
                    votes_for: m.votes_for,
                    votes_against: m.votes_against,
                    votes_abstain: m.votes_abstain,
                    grades: m.grades,
                    groups: m.groups.clone(),
                },
                Counts::Selection { blank, votes } => StoredCounts::Selection {
                    blank: *blank,
                    votes: votes.clone(),
                },
                Counts::Approval { blank, marks } => StoredCounts::Approval {
                    blank: *blank,
                    marks: marks.clone(),
                },
            },
        }
    }
}

impl From<StoredTally> for Tally {
    fn from(t: StoredTally) -> Tally {
        Tally {
            ballots: t.ballots,
            weight: t.weight,
            counts: match t.counts {
                StoredCounts::Motion {
                    votes_for,
                    votes_against,
                    votes_abstain,
                    grades,
                    groups,
                } => Counts::Motion(MotionCounts {
                    votes_for,
                    votes_against,
                    votes_abstain,
                    grades,
                    groups,
                }),
                StoredCounts::Selection { blank, votes } => Counts::Selection { blank, votes },
                StoredCounts::Approval { blank, marks } => Counts::Approval { blank, marks },
            },
        }
    }
}

#[cfg(test)]
mod tally_tests {
    use super::*;
    use crate::core::tally::Shape;

    #[test]
    fn every_kind_of_tally_reads_back() {
        let mut motion = Tally::new(Shape::Motion(Scale::Nuanced));
        motion.add(&Ballot::Grade(-2), 3, &["north".into()]);
        motion.add(&Ballot::Grade(1), 1, &[]);
        let mut selection = Tally::new(Shape::Selection { options: 3 });
        selection.add(&Ballot::Selection(vec![0, 2]), 2, &[]);
        let mut approval = Tally::new(Shape::Approval { options: 2 });
        approval.add(
            &Ballot::Approval(vec![Choice::For, Choice::Abstain]),
            1,
            &[],
        );
        for t in [
            motion,
            selection,
            approval,
            Tally::new(Shape::Motion(Scale::Choice)),
        ] {
            assert_eq!(tally_from(&tally(&t).expect("json")).expect("back"), t);
        }
        assert!(tally_from("{\"ballots\":1}").is_err());
    }
}
