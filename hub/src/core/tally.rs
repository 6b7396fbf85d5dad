//! Ballots and the running count of a session. Pure code: the hub adds and
//! removes ballots as they are cast and replaced, the rules read the counts.

use std::collections::HashMap;

use serde::{Deserialize, Serialize, Serializer, ser::SerializeStruct};

/// A ballot on the plain scale.
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
}

/// The scale a session's ballots are cast on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scale {
    /// for / against / abstain
    #[default]
    Choice,
    /// a grade from −3 ("absolutely against") to +3 ("absolutely for")
    Nuanced,
}

impl Scale {
    pub fn as_str(self) -> &'static str {
        match self {
            Scale::Choice => "choice",
            Scale::Nuanced => "nuanced",
        }
    }
}

pub const MIN_GRADE: i8 = -3;
pub const MAX_GRADE: i8 = 3;
const GRADES: usize = (MAX_GRADE - MIN_GRADE + 1) as usize;

/// One voter's ballot, on either scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ballot {
    Choice(Choice),
    /// Always within `MIN_GRADE..=MAX_GRADE` (checked where ballots enter).
    Grade(i8),
}

impl Ballot {
    /// Where the ballot falls on the seed's three-way count: positive grades
    /// are for, negative against, zero abstain.
    pub fn side(self) -> Choice {
        match self {
            Ballot::Choice(c) => c,
            Ballot::Grade(g) if g > 0 => Choice::For,
            Ballot::Grade(g) if g < 0 => Choice::Against,
            Ballot::Grade(_) => Choice::Abstain,
        }
    }

    /// A nuanced ballot, if `grade` is a whole grade from −3 to +3.
    pub fn grade(grade: i64) -> Option<Ballot> {
        i8::try_from(grade)
            .ok()
            .filter(|g| (MIN_GRADE..=MAX_GRADE).contains(g))
            .map(Ballot::Grade)
    }

    pub fn scale(self) -> Scale {
        match self {
            Ballot::Choice(_) => Scale::Choice,
            Ballot::Grade(_) => Scale::Nuanced,
        }
    }
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
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    pub votes_for: u64,
    pub votes_against: u64,
    pub votes_abstain: u64,
    /// Count per grade, −3 first; `Some` for nuanced sessions only.
    grades: Option<[u64; GRADES]>,
    /// Approvals per voter group, for group minimums.
    group_approvals: HashMap<String, u64>,
}

impl Tally {
    pub fn new(scale: Scale) -> Tally {
        Tally {
            grades: (scale == Scale::Nuanced).then_some([0; GRADES]),
            ..Tally::default()
        }
    }

    pub fn total(&self) -> u64 {
        self.votes_for + self.votes_against + self.votes_abstain
    }

    fn side_mut(&mut self, side: Choice) -> &mut u64 {
        match side {
            Choice::For => &mut self.votes_for,
            Choice::Against => &mut self.votes_against,
            Choice::Abstain => &mut self.votes_abstain,
        }
    }

    pub fn add(&mut self, ballot: &Ballot, groups: &[String]) {
        *self.side_mut(ballot.side()) += 1;
        if let (Ballot::Grade(g), Some(grades)) = (ballot, self.grades.as_mut()) {
            grades[(g - MIN_GRADE) as usize] += 1;
        }
        if ballot.side() == Choice::For {
            for group in groups {
                *self.group_approvals.entry(group.clone()).or_default() += 1;
            }
        }
    }

    /// Undoes `add` of the same ballot with the same groups.
    pub fn remove(&mut self, ballot: &Ballot, groups: &[String]) {
        let side = self.side_mut(ballot.side());
        *side = side.saturating_sub(1);
        if let (Ballot::Grade(g), Some(grades)) = (ballot, self.grades.as_mut()) {
            let slot = &mut grades[(g - MIN_GRADE) as usize];
            *slot = slot.saturating_sub(1);
        }
        if ballot.side() == Choice::For {
            for group in groups {
                if let Some(n) = self.group_approvals.get_mut(group) {
                    *n = n.saturating_sub(1);
                }
            }
        }
    }

    pub fn group_approvals(&self, group: &str) -> u64 {
        self.group_approvals.get(group).copied().unwrap_or(0)
    }

    /// Approvals and rejections as the rules weigh them, in half ballots:
    /// on the nuanced scale a "no opinion" (grade 0) counts half for and
    /// half against; on the plain scale abstentions count for neither.
    pub fn weighed(&self) -> (Halves, Halves) {
        let half = match self.grades {
            Some(_) => self.votes_abstain,
            None => 0,
        };
        (
            Halves(2 * self.votes_for + half),
            Halves(2 * self.votes_against + half),
        )
    }

    /// The smallest step by which approvals can move, in half ballots: a
    /// whole ballot on the plain scale, a half on the nuanced one.
    pub fn step(&self) -> u64 {
        if self.grades.is_some() { 1 } else { 2 }
    }

    pub fn grades(&self) -> Option<&[u64; GRADES]> {
        self.grades.as_ref()
    }

    /// The median grade (the mean of the two middle grades when their number
    /// is even); `None` without ballots or on the plain scale.
    pub fn median_grade(&self) -> Option<f64> {
        let grades = self.grades.as_ref()?;
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
}

/// The wire form: `{"for","against","abstain","total"}`, plus `grades`
/// (−3 first) and `median` on the nuanced scale.
impl Serialize for Tally {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let nuanced = self.grades.is_some();
        let mut st = s.serialize_struct("Tally", if nuanced { 6 } else { 4 })?;
        st.serialize_field("for", &self.votes_for)?;
        st.serialize_field("against", &self.votes_against)?;
        st.serialize_field("abstain", &self.votes_abstain)?;
        st.serialize_field("total", &self.total())?;
        if let Some(grades) = &self.grades {
            st.serialize_field("grades", grades)?;
            st.serialize_field("median", &self.median_grade())?;
        }
        st.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_and_remove_are_inverse() {
        let smith = vec!["smith".to_string()];
        let mut t = Tally::new(Scale::Nuanced);
        let before = t.clone();
        for g in MIN_GRADE..=MAX_GRADE {
            t.add(&Ballot::Grade(g), &smith);
        }
        assert_eq!((t.votes_for, t.votes_against, t.votes_abstain), (3, 3, 1));
        assert_eq!(t.group_approvals("smith"), 3);
        for g in MIN_GRADE..=MAX_GRADE {
            t.remove(&Ballot::Grade(g), &smith);
        }
        assert_eq!(t.total(), before.total());
        assert_eq!(t.grades(), before.grades());
        assert_eq!(t.group_approvals("smith"), 0);
    }

    #[test]
    fn nuanced_no_opinion_weighs_half_each_way() {
        let mut t = Tally::new(Scale::Nuanced);
        t.add(&Ballot::Grade(0), &[]);
        t.add(&Ballot::Grade(0), &[]);
        t.add(&Ballot::Grade(2), &[]);
        assert_eq!(t.weighed(), (Halves(4), Halves(2)));
        let mut plain = Tally::new(Scale::Choice);
        plain.add(&Ballot::Choice(Choice::Abstain), &[]);
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
        let mut t = Tally::new(Scale::Nuanced);
        assert_eq!(t.median_grade(), None);
        for g in [-3, 1, 2] {
            t.add(&Ballot::Grade(g), &[]);
        }
        assert_eq!(t.median_grade(), Some(1.0));
        t.add(&Ballot::Grade(3), &[]);
        assert_eq!(t.median_grade(), Some(1.5));
    }

    #[test]
    fn wire_form() {
        let mut t = Tally::new(Scale::Choice);
        t.add(&Ballot::Choice(Choice::For), &[]);
        t.add(&Ballot::Choice(Choice::Abstain), &[]);
        assert_eq!(
            serde_json::to_value(&t).expect("json"),
            serde_json::json!({"for": 1, "against": 0, "abstain": 1, "total": 2})
        );
        let mut n = Tally::new(Scale::Nuanced);
        n.add(&Ballot::Grade(-1), &[]);
        assert_eq!(
            serde_json::to_value(&n).expect("json"),
            serde_json::json!({"for": 0, "against": 1, "abstain": 0, "total": 1,
                               "grades": [0, 0, 1, 0, 0, 0, 0], "median": -1.0})
        );
    }
}
