//! The rules checked against an oracle written from docs/RULES.md alone,
//! with its own arithmetic (ballot counts as decimals, thresholds from the
//! formulas as printed there), not through `Rule::standing`.

use proptest::prelude::*;

use super::{GroupMinimum, Inertia, Outcome, Rule, RuleKind};
use crate::core::tally::{Ballot, Choice, Scale, Shape, Tally};

/// A tally as the oracle sees it: how many ballots of each kind.
#[derive(Debug, Clone)]
struct Counts {
    nuanced: bool,
    /// Plain: for, against, abstain. Nuanced: positive, negative, zero grades.
    f: u64,
    a: u64,
    z: u64,
    /// Approvals from members of the group "smith".
    smiths: u64,
}

impl Counts {
    /// Approvals and rejections as RULES.md weighs them.
    fn weighed(&self) -> (f64, f64) {
        let half = if self.nuanced {
            self.z as f64 / 2.0
        } else {
            0.0
        };
        (self.f as f64 + half, self.a as f64 + half)
    }

    fn tally(&self) -> Tally {
        let mut t = Tally::new(Shape::Motion(if self.nuanced {
            Scale::Nuanced
        } else {
            Scale::Choice
        }));
        let (yes, no, zero) = if self.nuanced {
            (Ballot::Grade(2), Ballot::Grade(-1), Ballot::Grade(0))
        } else {
            (
                Ballot::Choice(Choice::For),
                Ballot::Choice(Choice::Against),
                Ballot::Choice(Choice::Abstain),
            )
        };
        let smith = ["smith".to_owned()];
        for i in 0..self.f {
            t.add(&yes, 1, if i < self.smiths { &smith } else { &[] });
        }
        for _ in 0..self.a {
            t.add(&no, 1, &smith);
        }
        for _ in 0..self.z {
            t.add(&zero, 1, &smith);
        }
        t
    }
}

/// RULES.md: "threshold = C + B^W + (M + (1 − M)·(1 − (T/W)^G))·max(0, T − C)",
/// T above W counting as W.
fn inertia_threshold(i: &Inertia, t: f64) -> f64 {
    let w = i.electorate as f64;
    let p = if t > w { 1.0 } else { t / w };
    i.constant
        + i.base.powf(w)
        + (i.majority + (1.0 - i.majority) * (1.0 - p.powf(i.gradient))) * (t - i.constant).max(0.0)
}

/// The rule's own condition on approvals `a` at turnout `t`, as RULES.md
/// states it (comparisons with 10⁻⁹ of relative slack).
fn main_condition(kind: &RuleKind, a: f64, t: f64) -> bool {
    const SLACK: f64 = 1e-9;
    match kind {
        RuleKind::Majority => a > t - a,
        RuleKind::Supermajority { ratio } => {
            let bar = ratio * t;
            a > 0.0 && a >= bar - SLACK * bar.max(1.0)
        }
        RuleKind::Inertia(i) => {
            let bar = inertia_threshold(i, t);
            a > bar + SLACK * bar.max(1.0)
        }
    }
}

fn group_minimum(g: &GroupMinimum) -> u64 {
    let exact = (g.size as f64).powf(g.exponent);
    (exact - 1e-9 * exact.max(1.0)).ceil().max(0.0) as u64
}

/// Adopted if closed now, by RULES.md.
fn adopted(rule: &Rule, c: &Counts) -> bool {
    let (a, r) = c.weighed();
    let quorum = rule.quorum.is_none_or(|q| c.f + c.a + c.z >= q);
    let groups = rule.groups.iter().all(|g| c.smiths >= group_minimum(g));
    main_condition(&rule.kind, a, a + r) && quorum && groups
}

/// The smallest number of approvals the tally can reach (whole ballots, or
/// halves on the nuanced scale) that meets the rule's condition at this
/// turnout.
fn needed(rule: &Rule, c: &Counts) -> f64 {
    let (a, r) = c.weighed();
    let t = a + r;
    let step = if c.nuanced { 0.5 } else { 1.0 };
    let mut k = 0.0;
    while !main_condition(&rule.kind, k, t) {
        k += step;
        // The inertia threshold is at most C + B^W + T.
        assert!(k <= t + 100.0, "no approvals adopt {rule:?} at turnout {t}");
    }
    k
}

fn any_kind() -> impl Strategy<Value = RuleKind> {
    prop_oneof![
        Just(RuleKind::Majority),
        (0.501f64..=1.0).prop_map(|ratio| RuleKind::Supermajority { ratio }),
        Just(RuleKind::Supermajority { ratio: 2.0 / 3.0 }),
        (
            1u64..2_000,
            0.5f64..0.99,
            0.05f64..2.0,
            0.0f64..0.9,
            0.0f64..20.0
        )
            .prop_map(
                |(electorate, majority, gradient, base, constant)| RuleKind::Inertia(Inertia {
                    electorate,
                    majority,
                    gradient,
                    base,
                    constant,
                })
            ),
    ]
}

fn any_rule() -> impl Strategy<Value = Rule> {
    (
        any_kind(),
        proptest::option::of(0u64..60),
        proptest::option::of((1u64..500, 0.0f64..=1.0)),
    )
        .prop_map(|(kind, quorum, group)| Rule {
            quorum_present: None,
            kind,
            quorum,
            groups: group
                .map(|(size, exponent)| {
                    vec![GroupMinimum {
                        group: "smith".into(),
                        size,
                        exponent,
                    }]
                })
                .unwrap_or_default(),
        })
}

fn any_counts() -> impl Strategy<Value = Counts> {
    (any::<bool>(), 0u64..300, 0u64..300, 0u64..60).prop_flat_map(|(nuanced, f, a, z)| {
        (0..=f).prop_map(move |smiths| Counts {
            nuanced,
            f,
            a,
            z,
            smiths,
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn the_hub_decides_as_rules_md_says(rule in any_rule(), counts in any_counts()) {
        let tally = counts.tally();
        let standing = rule.standing(&tally);
        let want = adopted(&rule, &counts);
        prop_assert_eq!(standing.adopted_if_closed_now, want, "{:?}", counts);
        prop_assert_eq!(rule.outcome(&tally) == Outcome::Adopted, want);
        prop_assert_eq!(standing.needed.as_f64(), needed(&rule, &counts), "{:?}", counts);
        // `needed` and the decision agree: the rule's own condition holds
        // exactly when the approvals reach `needed`.
        let (a, r) = counts.weighed();
        prop_assert_eq!(a >= standing.needed.as_f64(), main_condition(&rule.kind, a, a + r));
    }
}

/// The worked nuanced examples of RULES.md: (positive, negative, zero
/// grades) → (needed, adopted under the majority rule).
#[test]
fn nuanced_examples() {
    let majority = Rule::default();
    for (f, a, z, want_needed, want_adopted) in [
        (2, 1, 2, 3.0, true),
        (2, 1, 1, 2.5, true),
        (1, 1, 1, 2.0, false),
    ] {
        let c = Counts {
            nuanced: true,
            f,
            a,
            z,
            smiths: 0,
        };
        assert_eq!(adopted(&majority, &c), want_adopted, "{c:?}");
        assert_eq!(needed(&majority, &c), want_needed, "{c:?}");
        let standing = majority.standing(&c.tally());
        assert_eq!(standing.adopted_if_closed_now, want_adopted, "{c:?}");
        assert_eq!(standing.needed.as_f64(), want_needed, "{c:?}");
    }
}
