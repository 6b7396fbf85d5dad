//! Vote rules: what a session's ballots must look like for a proposal to be
//! adopted, and how many approvals that takes at the current turnout.
//! Pure code — no IO, no clock — so every figure here can be tested exactly.

mod election;
mod groups;
mod inertia;
#[cfg(test)]
mod oracle;

use serde::{Deserialize, Serialize};

use crate::core::tally::{Halves, Tally};

pub use election::{Elected, Method, elect};
pub use groups::GroupMinimum;
pub use inertia::Inertia;

/// Relative slack for floating-point comparisons of thresholds: a ratio of
/// 2/3 must accept 2 approvals out of 3 even though `2/3 * 3` is not exactly 2
/// in binary floating point.
const EPSILON: f64 = 1e-9;

/// The largest group size or electorate a rule accepts: far beyond any
/// assembly, small enough that every count stays exact in an `f64`.
const MAX_COUNT: u64 = 1 << 40;

/// How a session decides, validated. Built from [`RuleSpec`] (the wire form).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RuleSpec", into = "RuleSpec")]
pub struct Rule {
    pub kind: RuleKind,
    /// Fewer ballots than this (abstentions included; weights in weighted
    /// roll sessions) means rejected.
    pub quorum: Option<u64>,
    /// Fewer than this share of the roll's weight present or represented
    /// at the close means rejected.
    pub quorum_present: Option<f64>,
    /// Approvals a group must give on top of the main threshold.
    pub groups: Vec<GroupMinimum>,
}

/// Who is there, by weight: present or represented, of the roll's whole.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Presence {
    pub weight: u64,
    pub total: u64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RuleKind {
    /// Adopted when approvals exceed rejections.
    Majority,
    /// Adopted when approvals reach `ratio` of the expressed ballots.
    Supermajority { ratio: f64 },
    /// The Duniter inertia threshold: few voters need near-unanimity.
    Inertia(Inertia),
}

/// Why a rule was refused; the text is shown to the organiser as is.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RuleError {
    #[error("unknown rule kind {0:?}: use majority, supermajority or inertia")]
    UnknownKind(String),
    #[error("the {kind} rule does not take {field:?}")]
    FieldNotAllowed {
        kind: &'static str,
        field: &'static str,
    },
    #[error("the supermajority rule needs a ratio above 0.5 and at most 1")]
    BadRatio,
    #[error("{0}")]
    BadInertia(&'static str),
    #[error(
        "the inertia rule needs an electorate size: give \"electorate\" or register the voter roll first"
    )]
    NoElectorate,
    #[error(
        "group minimums need a group name, a size of at least 1 and an exponent between 0 and 1"
    )]
    BadGroup,
    #[error("a rule may list at most {0} group minimums")]
    TooManyGroups(usize),
    #[error("{0}")]
    NotForElections(&'static str),
    #[error("\"quorum_present\" is a share of the roll's weight: above 0 and at most 1")]
    BadQuorumPresent,
}

pub const MAX_GROUPS: usize = 16;

/// The wire form of a rule: every field optional, checked by `TryFrom`.
/// Unknown fields are refused so that a typo ("ration") cannot silently
/// turn a supermajority into something else.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratio: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub electorate: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub majority: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gradient: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constant: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum_present: Option<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupMinimum>,
}

impl RuleSpec {
    /// Fills what the organiser left to the hub: the inertia electorate
    /// defaults to the size of the voter roll at the time the session is made,
    /// so a session's threshold never shifts under the room's feet.
    pub fn resolve(mut self, roll_size: u64) -> Result<Rule, RuleError> {
        if self.kind == "inertia" && self.electorate.is_none() {
            if roll_size == 0 {
                return Err(RuleError::NoElectorate);
            }
            self.electorate = Some(roll_size);
        }
        Rule::try_from(self)
    }
}

impl TryFrom<RuleSpec> for Rule {
    type Error = RuleError;

    fn try_from(spec: RuleSpec) -> Result<Self, RuleError> {
        let refuse = |kind: &'static str, field: &'static str, present: bool| {
            if present {
                Err(RuleError::FieldNotAllowed { kind, field })
            } else {
                Ok(())
            }
        };
        let inertia_fields = [
            ("electorate", spec.electorate.is_some()),
            ("majority", spec.majority.is_some()),
            ("gradient", spec.gradient.is_some()),
            ("base", spec.base.is_some()),
            ("constant", spec.constant.is_some()),
        ];
        let kind = match spec.kind.as_str() {
            "majority" => {
                refuse("majority", "ratio", spec.ratio.is_some())?;
                for (field, present) in inertia_fields {
                    refuse("majority", field, present)?;
                }
                RuleKind::Majority
            }
            "supermajority" => {
                for (field, present) in inertia_fields {
                    refuse("supermajority", field, present)?;
                }
                let ratio = spec.ratio.ok_or(RuleError::BadRatio)?;
                // Above one half, so a tie is never adopted.
                if !(ratio > 0.5 && ratio <= 1.0) {
                    return Err(RuleError::BadRatio);
                }
                RuleKind::Supermajority { ratio }
            }
            "inertia" => {
                refuse("inertia", "ratio", spec.ratio.is_some())?;
                let electorate = spec.electorate.ok_or(RuleError::NoElectorate)?;
                let inertia = Inertia {
                    electorate,
                    majority: spec.majority.unwrap_or(0.5),
                    gradient: spec.gradient.unwrap_or(0.2),
                    base: spec.base.unwrap_or(0.1),
                    constant: spec.constant.unwrap_or(0.0),
                };
                inertia.check()?;
                RuleKind::Inertia(inertia)
            }
            other => return Err(RuleError::UnknownKind(other.to_owned())),
        };
        if spec.groups.len() > MAX_GROUPS {
            return Err(RuleError::TooManyGroups(MAX_GROUPS));
        }
        for g in &spec.groups {
            let name_ok = !g.group.trim().is_empty() && g.group.chars().count() <= 64;
            if !name_ok || g.size == 0 || g.size > MAX_COUNT || !(0.0..=1.0).contains(&g.exponent) {
                return Err(RuleError::BadGroup);
            }
        }
        if let Some(r) = spec.quorum_present
            && !(r > 0.0 && r <= 1.0)
        {
            return Err(RuleError::BadQuorumPresent);
        }
        Ok(Rule {
            kind,
            quorum: spec.quorum,
            quorum_present: spec.quorum_present,
            groups: spec.groups,
        })
    }
}

impl From<Rule> for RuleSpec {
    fn from(rule: Rule) -> Self {
        let mut spec = RuleSpec {
            quorum: rule.quorum,
            quorum_present: rule.quorum_present,
            groups: rule.groups,
            ..RuleSpec::default()
        };
        match rule.kind {
            RuleKind::Majority => spec.kind = "majority".into(),
            RuleKind::Supermajority { ratio } => {
                spec.kind = "supermajority".into();
                spec.ratio = Some(ratio);
            }
            RuleKind::Inertia(i) => {
                spec.kind = "inertia".into();
                spec.electorate = Some(i.electorate);
                spec.majority = Some(i.majority);
                spec.gradient = Some(i.gradient);
                spec.base = Some(i.base);
                spec.constant = Some(i.constant);
            }
        }
        spec
    }
}

impl Default for Rule {
    fn default() -> Self {
        Rule {
            kind: RuleKind::Majority,
            quorum: None,
            quorum_present: None,
            groups: Vec::new(),
        }
    }
}

/// Where a session stands under its rule: what the room sees live, and
/// the result if it were closed now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Standing {
    /// Approvals adoption requires at the current turnout: the smallest
    /// count the tally can reach (whole ballots, or halves on the nuanced
    /// scale) that adopts. Adoption is exactly `approvals >= needed`.
    pub needed: Halves,
    pub adopted_if_closed_now: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupStanding>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupStanding {
    pub group: String,
    pub approvals: u64,
    pub needed: u64,
}

/// The outcome recorded at close: a motion is adopted or rejected; an
/// election elects, ends in a tie across the last seat, or elects no one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Adopted,
    Rejected,
    Elected,
    Tie,
    NoneElected,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Adopted => "adopted",
            Outcome::Rejected => "rejected",
            Outcome::Elected => "elected",
            Outcome::Tie => "tie",
            Outcome::NoneElected => "none_elected",
        }
    }

    pub fn parse(s: &str) -> Option<Outcome> {
        [
            Outcome::Adopted,
            Outcome::Rejected,
            Outcome::Elected,
            Outcome::Tie,
            Outcome::NoneElected,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
    }
}

impl Rule {
    /// The main threshold's requirement: the smallest approvals, in half
    /// ballots and a multiple of `step`, that adopt with `turnout` half
    /// ballots expressed (approvals + rejections). Every rule here adopts
    /// more surely with more approvals at a fixed turnout, so the decision
    /// is exactly `approvals >= needed`.
    fn needed_at(&self, turnout: Halves, step: u64) -> Halves {
        let t2 = turnout.0;
        let least = match self.kind {
            // for > against  ⇔  2·for > T  ⇔  for > T/2
            RuleKind::Majority => t2 / 2 + 1,
            // for ≥ r·T, and for > 0
            RuleKind::Supermajority { ratio } => {
                let exact = ratio * t2 as f64;
                ((exact - EPSILON * exact.max(1.0)).ceil() as u64).max(1)
            }
            // for > threshold(T): strictly greater
            RuleKind::Inertia(i) => {
                let t = 2.0 * i.threshold(turnout.as_f64());
                (t + EPSILON * t.max(1.0)).floor() as u64 + 1
            }
        };
        Halves(least.div_ceil(step) * step)
    }

    /// Where `tally` stands under this rule (with nobody known present).
    pub fn standing(&self, tally: &Tally) -> Standing {
        self.standing_at(tally, None)
    }

    /// Where `tally` stands under this rule, with `presence` for a quorum
    /// of those present.
    pub fn standing_at(&self, tally: &Tally, presence: Option<Presence>) -> Standing {
        let (approvals, rejections) = tally.weighed();
        let needed = self.needed_at(Halves(approvals.0 + rejections.0), tally.step());
        let main = approvals >= needed;
        let quorum = self.quorum_met(tally, presence);
        let groups: Vec<GroupStanding> = self
            .groups
            .iter()
            .map(|g| GroupStanding {
                group: g.group.clone(),
                approvals: tally.group_approvals(&g.group),
                needed: g.required(),
            })
            .collect();
        let groups_met = groups.iter().all(|g| g.approvals >= g.needed);
        Standing {
            needed,
            adopted_if_closed_now: main && quorum && groups_met,
            groups,
        }
    }

    /// Whether this rule can decide an election by `method`: the majority
    /// (the default) or, for approval, a supermajority of each option's
    /// for against its against; a quorum; no inertia, no group minimums.
    pub fn check_election(&self, method: Method) -> Result<(), RuleError> {
        match self.kind {
            RuleKind::Majority => {}
            RuleKind::Supermajority { .. } if method == Method::Approval => {}
            RuleKind::Supermajority { .. } => {
                return Err(RuleError::NotForElections(
                    "a supermajority applies to approval elections only (each option's for against its against)",
                ));
            }
            RuleKind::Inertia(_) => {
                return Err(RuleError::NotForElections(
                    "the inertia rule applies to motions only",
                ));
            }
        }
        if !self.groups.is_empty() {
            return Err(RuleError::NotForElections(
                "group minimums apply to motions only",
            ));
        }
        Ok(())
    }

    /// Whether the quorums are met: the tally's weight against `quorum`,
    /// and the weight present or represented against `quorum_present`
    /// (unknown presence meets no such quorum).
    pub fn quorum_met(&self, tally: &Tally, presence: Option<Presence>) -> bool {
        let ballots = self.quorum.is_none_or(|q| tally.total() >= q);
        let present = self.quorum_present.is_none_or(|r| {
            presence.is_some_and(|p| {
                let bar = r * p.total as f64;
                p.weight as f64 >= bar - EPSILON * bar.max(1.0)
            })
        });
        ballots && present
    }

    pub fn outcome(&self, tally: &Tally) -> Outcome {
        self.outcome_at(tally, None)
    }

    pub fn outcome_at(&self, tally: &Tally, presence: Option<Presence>) -> Outcome {
        if self.standing_at(tally, presence).adopted_if_closed_now {
            Outcome::Adopted
        } else {
            Outcome::Rejected
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::tally::{Ballot, Choice, Scale, Shape};

    fn spec(json: &str) -> Result<Rule, String> {
        let spec: RuleSpec = serde_json::from_str(json).map_err(|e| e.to_string())?;
        spec.resolve(0).map_err(|e| e.to_string())
    }

    fn tally(f: u64, a: u64, ab: u64) -> Tally {
        let mut t = Tally::new(Shape::Motion(Scale::Choice));
        for _ in 0..f {
            t.add(&Ballot::Choice(Choice::For), 1, &[]);
        }
        for _ in 0..a {
            t.add(&Ballot::Choice(Choice::Against), 1, &[]);
        }
        for _ in 0..ab {
            t.add(&Ballot::Choice(Choice::Abstain), 1, &[]);
        }
        t
    }

    fn inertia(w: u64) -> Rule {
        spec(&format!(r#"{{"kind":"inertia","electorate":{w}}}"#)).expect("valid")
    }

    #[test]
    fn majority_rejects_a_tie_and_adopts_one_more() {
        let r = Rule::default();
        assert_eq!(r.outcome(&tally(3, 3, 5)), Outcome::Rejected);
        assert_eq!(r.outcome(&tally(4, 3, 0)), Outcome::Adopted);
        assert_eq!(r.standing(&tally(4, 3, 0)).needed, Halves::whole(4));
        assert_eq!(r.outcome(&tally(0, 0, 9)), Outcome::Rejected);
    }

    #[test]
    fn supermajority_two_thirds_is_exact_at_the_boundary() {
        let r = spec(r#"{"kind":"supermajority","ratio":0.6666666666666666}"#).expect("valid");
        assert_eq!(r.outcome(&tally(2, 1, 0)), Outcome::Adopted);
        assert_eq!(r.outcome(&tally(20, 10, 0)), Outcome::Adopted);
        assert_eq!(r.outcome(&tally(19, 10, 0)), Outcome::Rejected);
        assert_eq!(r.standing(&tally(19, 10, 0)).needed, Halves::whole(20));
        assert_eq!(r.outcome(&tally(0, 0, 4)), Outcome::Rejected);
    }

    #[test]
    fn supermajority_refuses_ratios_that_would_adopt_a_tie() {
        assert!(spec(r#"{"kind":"supermajority","ratio":0.5}"#).is_err());
        assert!(spec(r#"{"kind":"supermajority","ratio":1.5}"#).is_err());
        assert!(spec(r#"{"kind":"supermajority"}"#).is_err());
    }

    #[test]
    fn quorum_counts_abstentions() {
        let r = spec(r#"{"kind":"majority","quorum":10}"#).expect("valid");
        assert_eq!(r.outcome(&tally(5, 0, 4)), Outcome::Rejected);
        assert_eq!(r.outcome(&tally(5, 0, 5)), Outcome::Adopted);
    }

    #[test]
    fn unknown_fields_and_kinds_are_refused() {
        assert!(spec(r#"{"kind":"majority","ration":0.7}"#).is_err());
        assert!(spec(r#"{"kind":"unanimity"}"#).is_err());
        assert!(spec(r#"{"kind":"majority","ratio":0.7}"#).is_err());
        assert!(spec(r#"{"kind":"inertia"}"#).is_err());
    }

    #[test]
    fn inertia_electorate_defaults_to_the_roll() {
        let spec: RuleSpec = serde_json::from_str(r#"{"kind":"inertia"}"#).expect("json");
        let rule = spec.resolve(7000).expect("valid");
        assert_eq!(rule, inertia(7000));
        let spec: RuleSpec = serde_json::from_str(r#"{"kind":"inertia"}"#).expect("json");
        assert_eq!(spec.resolve(0), Err(RuleError::NoElectorate));
    }

    /// The worked examples of docs/RULES.md; keep the two in step.
    #[test]
    fn inertia_worked_examples() {
        let cases: &[(u64, u64, f64, u64)] = &[
            // (W, T, threshold, needed)
            (7000, 100, 78.623, 79),
            (7000, 1000, 661.195, 662),
            (7000, 3500, 1976.537, 1977),
            (7000, 7000, 3500.0, 3501),
            (100, 10, 6.845, 7),
            (100, 50, 28.236, 29),
            (100, 1, 0.801, 1),
            (10, 3, 1.821, 2),
        ];
        for &(w, t, threshold, needed) in cases {
            let Rule {
                kind: RuleKind::Inertia(i),
                ..
            } = inertia(w)
            else {
                unreachable!()
            };
            let got = i.threshold(t as f64);
            assert!(
                (got - threshold).abs() < 0.001,
                "W={w} T={t}: threshold {got}, expected ≈ {threshold}"
            );
            assert_eq!(
                inertia(w).standing(&tally(0, t, 0)).needed,
                Halves::whole(needed),
                "W={w} T={t}"
            );
        }
        // 79 of 100 adopt, 78 do not.
        assert_eq!(inertia(7000).outcome(&tally(79, 21, 0)), Outcome::Adopted);
        assert_eq!(inertia(7000).outcome(&tally(78, 22, 0)), Outcome::Rejected);
    }

    #[test]
    fn zero_ballots_never_adopt() {
        for rule in [Rule::default(), inertia(1), inertia(5000)] {
            assert_eq!(rule.outcome(&tally(0, 0, 0)), Outcome::Rejected);
        }
    }

    #[test]
    fn group_minimum_is_exact_at_its_boundary() {
        let r = spec(
            r#"{"kind":"majority","groups":[{"group":"smith","size":27,"exponent":0.3333333333333333}]}"#,
        )
        .expect("valid");
        assert_eq!(r.groups[0].required(), 3);
        let mut t = tally(10, 0, 0);
        t.add(&Ballot::Choice(Choice::For), 1, &["smith".into()]);
        t.add(&Ballot::Choice(Choice::For), 1, &["smith".into()]);
        assert_eq!(r.outcome(&t), Outcome::Rejected);
        t.add(&Ballot::Choice(Choice::For), 1, &["smith".into()]);
        assert_eq!(r.outcome(&t), Outcome::Adopted);
    }

    #[test]
    fn rules_round_trip_through_json() {
        for json in [
            r#"{"kind":"majority"}"#,
            r#"{"kind":"supermajority","ratio":0.75,"quorum":3}"#,
            r#"{"kind":"inertia","electorate":12,"majority":0.6,"gradient":0.3,"base":0.2,"constant":1.0}"#,
        ] {
            let rule = spec(json).expect("valid");
            let back: Rule =
                serde_json::from_value(serde_json::to_value(&rule).expect("ser")).expect("de");
            assert_eq!(back, rule);
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn any_rule() -> impl Strategy<Value = Rule> {
            prop_oneof![
                Just(Rule::default()),
                (0.51f64..=1.0).prop_map(|ratio| Rule {
                    kind: RuleKind::Supermajority { ratio },
                    ..Rule::default()
                }),
                (
                    1u64..20_000,
                    0.5f64..0.99,
                    0.05f64..2.0,
                    0.0f64..0.9,
                    0.0f64..20.0
                )
                    .prop_map(
                        |(electorate, majority, gradient, base, constant)| Rule {
                            kind: RuleKind::Inertia(Inertia {
                                electorate,
                                majority,
                                gradient,
                                base,
                                constant,
                            }),
                            ..Rule::default()
                        }
                    ),
            ]
        }

        proptest! {
            #[test]
            fn adding_an_approval_never_turns_adopted_into_rejected(
                rule in any_rule(), f in 0u64..3000, a in 0u64..3000, ab in 0u64..50,
            ) {
                if rule.outcome(&tally(f, a, ab)) == Outcome::Adopted {
                    prop_assert_eq!(rule.outcome(&tally(f + 1, a, ab)), Outcome::Adopted);
                }
            }

            #[test]
            fn zero_ballots_never_adopt(rule in any_rule(), ab in 0u64..100) {
                prop_assert_eq!(rule.outcome(&tally(0, 0, ab)), Outcome::Rejected);
            }

            #[test]
            fn needed_is_the_boundary(rule in any_rule(), t in 0u64..3000) {
                let n = rule.standing(&tally(0, t, 0)).needed.0 / 2;
                // With `needed` approvals among `t` expressed ballots it adopts,
                // with one fewer it does not.
                prop_assume!(n <= t && n >= 1);
                prop_assert_eq!(rule.outcome(&tally(n, t - n, 0)), Outcome::Adopted);
                prop_assert_eq!(rule.outcome(&tally(n - 1, t - n + 1, 0)), Outcome::Rejected);
            }

        }
    }
}
