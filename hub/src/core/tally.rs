//! Ballots and the running count of a session. Pure code: the hub adds and
//! removes ballots as they are cast and replaced, the rules read the
//! counts. Every count is a sum of weights (each ballot weighs 1 outside
//! weighted roll sessions); `ballots` counts people.

use std::collections::BTreeMap;

use serde::ser::{SerializeMap, SerializeStruct};
use serde::{Deserialize, Serialize, Serializer};

/// A ballot on the plain scale, and a mark on one candidate of an
/// approval election.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Choice {
    For,
    Against,
    Abstain,
}

impl Choice {
    pub fn as_str(self) -> &'static str {
        match self {
            Choice::For => "for",
            Choice::Against => "against",
            Choice::Abstain => "abstain",
        }
    }

    pub fn parse(s: &str) -> Option<Choice> {
        match s {
            "for" => Some(Choice::For),
            "against" => Some(Choice::Against),
            "abstain" => Some(Choice::Abstain),
            _ => None,
        }
    }

    fn index(self) -> usize {
        match self {
            Choice::For => 0,
            Choice::Against => 1,
            Choice::Abstain => 2,
        }
    }
}

/// The scale a motion's ballots are cast on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scale {
    /// for / against / abstain
    #[default]
    Choice,
    /// a grade from −3 ("absolutely against") to +3 ("absolutely for")
    Nuanced,
}

pub const MIN_GRADE: i8 = -3;
pub const MAX_GRADE: i8 = 3;
pub const GRADES: usize = (MAX_GRADE - MIN_GRADE + 1) as usize;

/// One voter's ballot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ballot {
    Choice(Choice),
    /// Always within `MIN_GRADE..=MAX_GRADE` (checked where ballots enter).
    Grade(i8),
    /// A selection election: the ids marked, ascending, without repeats
    /// (checked against the election where ballots enter). Empty: blank.
    Selection(Vec<u16>),
    /// An approval election: one mark per option, in id order. No `for`
    /// and no `against`: blank.
    Approval(Vec<Choice>),
}

impl Ballot {
    /// Where a motion ballot falls on the seed's three-way count: positive
    /// grades are for, negative against, zero abstain.
    pub fn side(&self) -> Option<Choice> {
        match self {
            Ballot::Choice(c) => Some(*c),
            Ballot::Grade(g) if *g > 0 => Some(Choice::For),
            Ballot::Grade(g) if *g < 0 => Some(Choice::Against),
            Ballot::Grade(_) => Some(Choice::Abstain),
            Ballot::Selection(_) | Ballot::Approval(_) => None,
        }
    }

    /// A nuanced ballot, if `grade` is a whole grade from −3 to +3.
    pub fn grade(grade: i64) -> Option<Ballot> {
        i8::try_from(grade)
            .ok()
            .filter(|g| (MIN_GRADE..=MAX_GRADE).contains(g))
            .map(Ballot::Grade)
    }

    /// An election ballot that marks no one.
    pub fn is_blank(&self) -> bool {
        match self {
            Ballot::Selection(ids) => ids.is_empty(),
            Ballot::Approval(marks) => marks.iter().all(|m| *m == Choice::Abstain),
            Ballot::Choice(_) | Ballot::Grade(_) => false,
        }
    }
}

/// A ballot as a voter sent it, before the session it is for checks it
/// (`SessionKind::ballot`): ids and marks not yet known to fit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BallotInput {
    Choice(Choice),
    Grade(i64),
    /// The ids of the options chosen (selection elections).
    Options(Vec<u64>),
    /// A mark per option id (approval elections), in the order given.
    Marks(Vec<(u64, Choice)>),
}

/// A count in half ballots, exact: a nuanced "no opinion" weighs half a
/// ballot each way. On the wire it is a whole number when it is one, and
/// otherwise ends in `.5`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Halves(pub u64);

impl Halves {
    pub fn whole(n: u64) -> Halves {
        Halves(2 * n)
    }

    pub fn as_f64(self) -> f64 {
        self.0 as f64 / 2.0
    }
}

impl std::fmt::Display for Halves {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 % 2 {
            0 => write!(f, "{}", self.0 / 2),
            _ => write!(f, "{}.5", self.0 / 2),
        }
    }
}

impl Serialize for Halves {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.is_multiple_of(2) {
            s.serialize_u64(self.0 / 2)
        } else {
            s.serialize_f64(self.as_f64())
        }
    }
}

/// The running count of one session. Adding and removing a ballot are exact
/// inverses, so a re-vote is `remove(old)` then `add(new)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Tally {
    /// People whose ballot counts.
    pub ballots: u64,
    /// Their weight together: the tally's `total`.
    pub weight: u64,
    pub counts: Counts,
}

/// What a session counts, by kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Counts {
    Motion(MotionCounts),
    /// Votes per option, in id order.
    Selection {
        blank: u64,
        votes: Vec<u64>,
    },
    /// For, against and abstain per option, in id order.
    Approval {
        blank: u64,
        marks: Vec<[u64; 3]>,
    },
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct MotionCounts {
    pub votes_for: u64,
    pub votes_against: u64,
    pub votes_abstain: u64,
    /// Weight per grade, −3 first; `Some` on the nuanced scale only.
    pub grades: Option<[u64; GRADES]>,
    /// Approving weight per voter group, for group minimums.
    pub groups: BTreeMap<String, u64>,
}

/// What a new tally counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Motion(Scale),
    Selection { options: usize },
    Approval { options: usize },
}

impl Tally {
    pub fn new(shape: Shape) -> Tally {
        let counts = match shape {
            Shape::Motion(scale) => Counts::Motion(MotionCounts {
                grades: (scale == Scale::Nuanced).then_some([0; GRADES]),
                ..MotionCounts::default()
            }),
            Shape::Selection { options } => Counts::Selection {
                blank: 0,
                votes: vec![0; options],
            },
            Shape::Approval { options } => Counts::Approval {
                blank: 0,
                marks: vec![[0; 3]; options],
            },
        };
        Tally {
            ballots: 0,
            weight: 0,
            counts,
        }
    }

    /// All ballots' weight, abstentions and blanks included.
    pub fn total(&self) -> u64 {
        self.weight
    }

    /// What a secret vote shows until it closes: how many have voted and
    /// their weight, every per-choice count zero (watching the counts move
    /// beside the register of who voted would tell each ballot).
    pub fn masked(&self) -> Tally {
        let mut masked = Tally::new(match &self.counts {
            Counts::Motion(m) => Shape::Motion(if m.grades.is_some() {
                Scale::Nuanced
            } else {
                Scale::Choice
            }),
            Counts::Selection { votes, .. } => Shape::Selection {
                options: votes.len(),
            },
            Counts::Approval { marks, .. } => Shape::Approval {
                options: marks.len(),
            },
        });
        masked.ballots = self.ballots;
        masked.weight = self.weight;
        masked
    }

    /// The motion's counts; `None` for elections.
    pub fn motion(&self) -> Option<&MotionCounts> {
        match &self.counts {
            Counts::Motion(m) => Some(m),
            _ => None,
        }
    }

    /// Blank election ballots' weight (0 for motions).
    pub fn blank(&self) -> u64 {
        match &self.counts {
            Counts::Motion(_) => 0,
            Counts::Selection { blank, .. } | Counts::Approval { blank, .. } => *blank,
        }
    }

    /// Counts `ballot` with `weight`; `groups` are the voter's, for group
    /// minimums. The ballot fits the tally's shape (checked where ballots
    /// enter); one that does not is counted as a blank.
    pub fn add(&mut self, ballot: &Ballot, weight: u64, groups: &[String]) {
        self.apply(ballot, weight, groups, true);
    }

    /// Undoes `add` of the same ballot with the same weight and groups.
    pub fn remove(&mut self, ballot: &Ballot, weight: u64, groups: &[String]) {
        self.apply(ballot, weight, groups, false);
    }

    fn apply(&mut self, ballot: &Ballot, weight: u64, groups: &[String], add: bool) {
        let change = |n: &mut u64| {
            *n = if add {
                n.saturating_add(weight)
            } else {
                n.saturating_sub(weight)
            }
        };
        if add {
            self.ballots += 1;
        } else {
            self.ballots = self.ballots.saturating_sub(1);
        }
        change(&mut self.weight);
        match (&mut self.counts, ballot) {
            (Counts::Motion(m), _) => {
                let side = ballot.side().unwrap_or(Choice::Abstain);
                change(match side {
                    Choice::For => &mut m.votes_for,
                    Choice::Against => &mut m.votes_against,
                    Choice::Abstain => &mut m.votes_abstain,
                });
                if let (Ballot::Grade(g), Some(grades)) = (ballot, m.grades.as_mut()) {
                    change(&mut grades[(g - MIN_GRADE) as usize]);
                }
                if side == Choice::For {
                    for group in groups {
                        change(m.groups.entry(group.clone()).or_default());
                    }
                    m.groups.retain(|_, n| *n > 0);
                }
            }
            (Counts::Selection { votes, .. }, Ballot::Selection(ids)) if !ids.is_empty() => {
                for &id in ids {
                    if let Some(n) = votes.get_mut(usize::from(id)) {
                        change(n);
                    }
                }
            }
            (Counts::Approval { marks, .. }, Ballot::Approval(given))
                if !ballot.is_blank() && given.len() == marks.len() =>
            {
                for (option, mark) in marks.iter_mut().zip(given) {
                    change(&mut option[mark.index()]);
                }
            }
            (Counts::Selection { blank, .. } | Counts::Approval { blank, .. }, _) => change(blank),
        }
    }

    /// Approvals and rejections of a motion as the rules weigh them, in
    /// half ballots: on the nuanced scale a "no opinion" (grade 0) counts
    /// half for and half against; on the plain scale abstentions count for
    /// neither.
    pub fn weighed(&self) -> (Halves, Halves) {
        let Some(m) = self.motion() else {
            return (Halves(0), Halves(0));
        };
        let half = match m.grades {
            Some(_) => m.votes_abstain,
            None => 0,
        };
        (
            Halves(2 * m.votes_for + half),
            Halves(2 * m.votes_against + half),
        )
    }

    /// The smallest step by which approvals can move, in half ballots: a
    /// whole ballot on the plain scale, a half on the nuanced one.
    pub fn step(&self) -> u64 {
        match self.motion().and_then(|m| m.grades) {
            Some(_) => 1,
            None => 2,
        }
    }

    pub fn group_approvals(&self, group: &str) -> u64 {
        self.motion()
            .and_then(|m| m.groups.get(group).copied())
            .unwrap_or(0)
    }

    pub fn grades(&self) -> Option<&[u64; GRADES]> {
        self.motion().and_then(|m| m.grades.as_ref())
    }

    /// The median grade (the mean of the two middle grades when their
    /// total weight is even); `None` without ballots or on the plain scale.
    pub fn median_grade(&self) -> Option<f64> {
        let grades = self.grades()?;
        let n: u64 = grades.iter().sum();
        if n == 0 {
            return None;
        }
        let nth = |k: u64| -> f64 {
            let mut seen = 0;
            for (i, c) in grades.iter().enumerate() {
                seen += c;
                if seen > k {
                    return (i as i8 + MIN_GRADE) as f64;
                }
            }
            MAX_GRADE as f64
        };
        Some((nth((n - 1) / 2) + nth(n / 2)) / 2.0)
    }

    /// The per-option counts of an election, as the wire shows them.
    pub fn options(&self) -> Option<OptionCounts<'_>> {
        match &self.counts {
            Counts::Motion(_) => None,
            Counts::Selection { votes, .. } => Some(OptionCounts::Votes(votes)),
            Counts::Approval { marks, .. } => Some(OptionCounts::Marks(marks)),
        }
    }
}

/// An election's per-option counts on the wire:
/// `[{"id", "votes"}]` or `[{"id", "for", "against", "abstain"}]`.
#[derive(Debug, Clone, Copy)]
pub enum OptionCounts<'a> {
    Votes(&'a [u64]),
    Marks(&'a [[u64; 3]]),
}

impl Serialize for OptionCounts<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        struct Votes(usize, u64);
        impl Serialize for Votes {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry("id", &self.0)?;
                m.serialize_entry("votes", &self.1)?;
                m.end()
            }
        }
        struct Marks(usize, [u64; 3]);
        impl Serialize for Marks {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(4))?;
                m.serialize_entry("id", &self.0)?;
                m.serialize_entry("for", &self.1[0])?;
                m.serialize_entry("against", &self.1[1])?;
                m.serialize_entry("abstain", &self.1[2])?;
                m.end()
            }
        }
        match self {
            OptionCounts::Votes(votes) => {
                let mut seq = s.serialize_seq(Some(votes.len()))?;
                for (id, n) in votes.iter().enumerate() {
                    seq.serialize_element(&Votes(id, *n))?;
                }
                seq.end()
            }
            OptionCounts::Marks(marks) => {
                let mut seq = s.serialize_seq(Some(marks.len()))?;
                for (id, m) in marks.iter().enumerate() {
                    seq.serialize_element(&Marks(id, *m))?;
                }
                seq.end()
            }
        }
    }
}

/// The wire form. Motions: `{"for","against","abstain","total","ballots"}`
/// plus `grades` (−3 first) and `median` on the nuanced scale. Elections:
/// `{"total","ballots","blank","options"}`.
impl Serialize for Tally {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.counts {
            Counts::Motion(m) => {
                let nuanced = m.grades.is_some();
                let mut st = s.serialize_struct("Tally", if nuanced { 7 } else { 5 })?;
                st.serialize_field("for", &m.votes_for)?;
                st.serialize_field("against", &m.votes_against)?;
                st.serialize_field("abstain", &m.votes_abstain)?;
                st.serialize_field("total", &self.weight)?;
                st.serialize_field("ballots", &self.ballots)?;
                if let Some(grades) = &m.grades {
                    st.serialize_field("grades", grades)?;
                    st.serialize_field("median", &self.median_grade())?;
                }
                st.end()
            }
            Counts::Selection { .. } | Counts::Approval { .. } => {
                let mut st = s.serialize_struct("Tally", 4)?;
                st.serialize_field("total", &self.weight)?;
                st.serialize_field("ballots", &self.ballots)?;
                st.serialize_field("blank", &self.blank())?;
                st.serialize_field("options", &self.options())?;
                st.end()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn motion(scale: Scale) -> Tally {
        Tally::new(Shape::Motion(scale))
    }

    #[test]
    fn add_and_remove_are_inverse() {
        let smith = vec!["smith".to_string()];
        let mut t = motion(Scale::Nuanced);
        let before = t.clone();
        for g in MIN_GRADE..=MAX_GRADE {
            t.add(&Ballot::Grade(g), 1, &smith);
        }
        let m = t.motion().expect("motion").clone();
        assert_eq!((m.votes_for, m.votes_against, m.votes_abstain), (3, 3, 1));
        assert_eq!(t.group_approvals("smith"), 3);
        for g in MIN_GRADE..=MAX_GRADE {
            t.remove(&Ballot::Grade(g), 1, &smith);
        }
        assert_eq!(t, before);

        let mut e = Tally::new(Shape::Approval { options: 3 });
        let before = e.clone();
        let ballots = [
            Ballot::Approval(vec![Choice::For, Choice::Against, Choice::Abstain]),
            Ballot::Approval(vec![Choice::Abstain; 3]),
        ];
        for b in &ballots {
            e.add(b, 5, &[]);
        }
        assert_eq!((e.ballots, e.weight, e.blank()), (2, 10, 5));
        for b in &ballots {
            e.remove(b, 5, &[]);
        }
        assert_eq!(e, before);
    }

    #[test]
    fn a_masked_tally_shows_only_how_many() {
        let mut t = motion(Scale::Nuanced);
        t.add(&Ballot::Grade(3), 4, &["smith".into()]);
        t.add(&Ballot::Grade(-1), 1, &[]);
        let m = t.masked();
        assert_eq!((m.ballots, m.total()), (2, 5));
        assert_eq!(m.weighed(), (Halves(0), Halves(0)));
        assert_eq!(m.grades(), Some(&[0; 7]));
        assert_eq!(m.group_approvals("smith"), 0);
    }

    #[test]
    fn weights_are_summed_and_people_counted() {
        let mut t = motion(Scale::Choice);
        t.add(&Ballot::Choice(Choice::For), 3, &["smith".into()]);
        t.add(&Ballot::Choice(Choice::Against), 2, &[]);
        assert_eq!((t.ballots, t.total()), (2, 5));
        assert_eq!(t.group_approvals("smith"), 3);
        assert_eq!(t.weighed(), (Halves(6), Halves(4)));
    }

    #[test]
    fn nuanced_no_opinion_weighs_half_each_way() {
        let mut t = motion(Scale::Nuanced);
        t.add(&Ballot::Grade(0), 1, &[]);
        t.add(&Ballot::Grade(0), 1, &[]);
        t.add(&Ballot::Grade(2), 1, &[]);
        assert_eq!(t.weighed(), (Halves(4), Halves(2)));
        let mut plain = motion(Scale::Choice);
        plain.add(&Ballot::Choice(Choice::Abstain), 1, &[]);
        assert_eq!(plain.weighed(), (Halves(0), Halves(0)));
    }

    #[test]
    fn halves_are_whole_numbers_on_the_wire_when_they_can_be() {
        assert_eq!(serde_json::to_string(&Halves(8)).expect("json"), "4");
        assert_eq!(serde_json::to_string(&Halves(5)).expect("json"), "2.5");
        assert_eq!(Halves(5).to_string(), "2.5");
        assert_eq!(Halves::whole(3).to_string(), "3");
    }

    #[test]
    fn grades_outside_the_scale_are_no_ballot() {
        assert_eq!(Ballot::grade(-3), Some(Ballot::Grade(-3)));
        assert_eq!(Ballot::grade(3), Some(Ballot::Grade(3)));
        assert_eq!(Ballot::grade(4), None);
        assert_eq!(Ballot::grade(-260), None, "no wrap-around into the range");
    }

    #[test]
    fn median_grade() {
        let mut t = motion(Scale::Nuanced);
        assert_eq!(t.median_grade(), None);
        for g in [-3, 1, 2] {
            t.add(&Ballot::Grade(g), 1, &[]);
        }
        assert_eq!(t.median_grade(), Some(1.0));
        t.add(&Ballot::Grade(3), 1, &[]);
        assert_eq!(t.median_grade(), Some(1.5));
    }

    #[test]
    fn wire_form() {
        let mut t = motion(Scale::Choice);
        t.add(&Ballot::Choice(Choice::For), 1, &[]);
        t.add(&Ballot::Choice(Choice::Abstain), 1, &[]);
        assert_eq!(
            serde_json::to_value(&t).expect("json"),
            serde_json::json!({"for": 1, "against": 0, "abstain": 1, "total": 2, "ballots": 2})
        );
        let mut n = motion(Scale::Nuanced);
        n.add(&Ballot::Grade(-1), 1, &[]);
        assert_eq!(
            serde_json::to_value(&n).expect("json"),
            serde_json::json!({"for": 0, "against": 1, "abstain": 0, "total": 1, "ballots": 1,
                               "grades": [0, 0, 1, 0, 0, 0, 0], "median": -1.0})
        );
        let mut s = Tally::new(Shape::Selection { options: 3 });
        s.add(&Ballot::Selection(vec![0, 2]), 1, &[]);
        s.add(&Ballot::Selection(vec![]), 1, &[]);
        assert_eq!(
            serde_json::to_value(&s).expect("json"),
            serde_json::json!({"total": 2, "ballots": 2, "blank": 1, "options": [
                {"id": 0, "votes": 1}, {"id": 1, "votes": 0}, {"id": 2, "votes": 1}]})
        );
        let mut a = Tally::new(Shape::Approval { options: 2 });
        a.add(
            &Ballot::Approval(vec![Choice::For, Choice::Against]),
            1,
            &[],
        );
        assert_eq!(
            serde_json::to_value(&a).expect("json"),
            serde_json::json!({"total": 1, "ballots": 1, "blank": 0, "options": [
                {"id": 0, "for": 1, "against": 0, "abstain": 0},
                {"id": 1, "for": 0, "against": 1, "abstain": 0}]})
        );
    }
}
