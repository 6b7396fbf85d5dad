//! Elections of people: who is elected once the vote closes. Selection:
//! the options with the most votes take the seats. Approval: the options
//! whose `for` meets the rule against their `against`, ranked by `for`.
//! A tie across the last seat is never broken: the tied options are named.

use serde::{Deserialize, Serialize};

use super::{EPSILON, Outcome, Presence, Rule, RuleKind};
use crate::core::tally::{Counts, Tally};

/// How an election's ballots mark its options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Each ballot marks between `min` and `max` options.
    #[default]
    Selection,
    /// Each ballot marks each option for, against or abstain.
    Approval,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Selection => "selection",
            Method::Approval => "approval",
        }
    }
}

/// An election's result: who is elected (in rank order, most votes first)
/// and who is tied for the seats that are left (in id order).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Elected {
    pub elected: Vec<u16>,
    pub tied: Vec<u16>,
}

/// The result of an election with `seats` seats under `rule`, with
/// `presence` for a quorum of those present.
pub fn elect(
    rule: &Rule,
    seats: usize,
    tally: &Tally,
    presence: Option<Presence>,
) -> (Outcome, Elected) {
    let seats = seats.max(1);
    if !rule.quorum_met(tally, presence) {
        return (Outcome::NoneElected, Elected::default());
    }
    // (id, score) of every option that may take a seat.
    let mut ranked: Vec<(u16, u64)> = match &tally.counts {
        Counts::Motion(_) => Vec::new(),
        Counts::Selection { votes, .. } => votes
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(id, n)| (id as u16, *n))
            .collect(),
        Counts::Approval { marks, .. } => marks
            .iter()
            .enumerate()
            .filter(|(_, [f, a, _])| approves(rule, *f, *a))
            .map(|(id, [f, _, _])| (id as u16, *f))
            .collect(),
    };
    if ranked.is_empty() {
        return (Outcome::NoneElected, Elected::default());
    }
    // Most votes first; equal votes in id order.
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    if ranked.len() <= seats || ranked[seats - 1].1 > ranked[seats].1 {
        let elected = ranked.iter().take(seats).map(|(id, _)| *id).collect();
        return (
            Outcome::Elected,
            Elected {
                elected,
                tied: Vec::new(),
            },
        );
    }
    // The last seat's score is shared beyond the seats: every option with
    // that score is tied for what is left.
    let boundary = ranked[seats - 1].1;
    let elected = ranked
        .iter()
        .filter(|(_, n)| *n > boundary)
        .map(|(id, _)| *id)
        .collect();
    let mut tied: Vec<u16> = ranked
        .iter()
        .filter(|(_, n)| *n == boundary)
        .map(|(id, _)| *id)
        .collect();
    tied.sort_unstable();
    (Outcome::Tie, Elected { elected, tied })
}

/// Whether an approval option's `for` meets the rule against its `against`.
fn approves(rule: &Rule, votes_for: u64, votes_against: u64) -> bool {
    match rule.kind {
        RuleKind::Supermajority { ratio } => {
            let bar = ratio * (votes_for + votes_against) as f64;
            votes_for > 0 && votes_for as f64 >= bar - EPSILON * bar.max(1.0)
        }
        // Inertia is refused for elections; the majority is the default.
        RuleKind::Majority | RuleKind::Inertia(_) => votes_for > votes_against,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::tally::{Ballot, Choice, Shape};
    use proptest::prelude::*;

    fn selection(options: usize, ballots: &[Vec<u16>]) -> Tally {
        let mut t = Tally::new(Shape::Selection { options });
        for b in ballots {
            t.add(&Ballot::Selection(b.clone()), 1, &[]);
        }
        t
    }

    fn ids(v: &[u16]) -> Vec<u16> {
        v.to_vec()
    }

    #[test]
    fn three_seats_with_a_tie_at_the_third() {
        // Votes: 0 → 4, 1 → 3, 2 → 2, 3 → 2, 4 → 1.
        let t = selection(
            5,
            &[vec![0, 1, 2], vec![0, 1, 3], vec![0, 1, 4], vec![0, 2, 3]],
        );
        let (outcome, result) = elect(&Rule::default(), 3, &t, None);
        assert_eq!(outcome, Outcome::Tie);
        assert_eq!(result.elected, ids(&[0, 1]));
        assert_eq!(result.tied, ids(&[2, 3]));
    }

    #[test]
    fn clear_seats_are_elected_in_rank_order() {
        let t = selection(4, &[vec![2, 1], vec![2, 1], vec![2, 3], vec![2]]);
        let (outcome, result) = elect(&Rule::default(), 2, &t, None);
        assert_eq!(outcome, Outcome::Elected);
        assert_eq!(result.elected, ids(&[2, 1]));
        assert!(result.tied.is_empty());
    }

    #[test]
    fn fewer_candidates_with_votes_than_seats_elects_those() {
        let t = selection(4, &[vec![3], vec![]]);
        assert_eq!(
            elect(&Rule::default(), 2, &t, None),
            (
                Outcome::Elected,
                Elected {
                    elected: vec![3],
                    tied: vec![]
                }
            )
        );
        let blank = selection(4, &[vec![], vec![]]);
        assert_eq!(
            elect(&Rule::default(), 2, &blank, None).0,
            Outcome::NoneElected
        );
    }

    #[test]
    fn a_quorum_not_met_elects_no_one() {
        let rule = Rule {
            quorum: Some(3),
            ..Rule::default()
        };
        let t = selection(3, &[vec![0], vec![1]]);
        assert_eq!(elect(&rule, 1, &t, None).0, Outcome::NoneElected);
    }

    #[test]
    fn approval_under_majority_and_supermajority() {
        use Choice::{Abstain as N, Against as A, For as F};
        let mut t = Tally::new(Shape::Approval { options: 3 });
        // Option 0: 3 for, 1 against. Option 1: 2 for, 2 against.
        // Option 2: 2 for, 1 against, 1 abstain.
        for marks in [[F, F, F], [F, A, F], [F, F, A], [A, A, N]] {
            t.add(&Ballot::Approval(marks.to_vec()), 1, &[]);
        }
        let (outcome, result) = elect(&Rule::default(), 2, &t, None);
        assert_eq!(outcome, Outcome::Elected);
        assert_eq!(result.elected, ids(&[0, 2]), "option 1 ties for/against");
        let two_thirds = Rule {
            kind: RuleKind::Supermajority { ratio: 2.0 / 3.0 },
            ..Rule::default()
        };
        // 3/4 and 2/3 meet two thirds; 2/4 does not.
        let (outcome, result) = elect(&two_thirds, 3, &t, None);
        assert_eq!(outcome, Outcome::Elected);
        assert_eq!(result.elected, ids(&[0, 2]));
        let three_quarters = Rule {
            kind: RuleKind::Supermajority { ratio: 0.75 },
            ..Rule::default()
        };
        assert_eq!(elect(&three_quarters, 3, &t, None).1.elected, ids(&[0]));
    }

    fn ballots() -> impl Strategy<Value = (usize, usize, Vec<Vec<u16>>)> {
        (2usize..8).prop_flat_map(|options| {
            (
                Just(options),
                1..=options,
                proptest::collection::vec(
                    proptest::sample::subsequence(
                        (0..options as u16).collect::<Vec<_>>(),
                        0..=options,
                    ),
                    0..40,
                ),
            )
        })
    }

    proptest! {
        #[test]
        fn the_result_does_not_depend_on_the_order_of_ballots(
            (options, seats, mut cast) in ballots(), seed in any::<u64>(),
        ) {
            let before = elect(&Rule::default(), seats, &selection(options, &cast), None);
            // A deterministic shuffle from the seed.
            let mut state = seed | 1;
            for i in (1..cast.len()).rev() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                cast.swap(i, (state % (i as u64 + 1)) as usize);
            }
            prop_assert_eq!(elect(&Rule::default(), seats, &selection(options, &cast), None), before);
        }

        #[test]
        fn equal_votes_across_the_last_seat_are_always_a_tie(
            (options, seats, cast) in ballots(),
        ) {
            let tally = selection(options, &cast);
            let Counts::Selection { votes, .. } = &tally.counts else { unreachable!() };
            let mut scores: Vec<u64> = votes.iter().copied().filter(|n| *n > 0).collect();
            scores.sort_unstable_by(|a, b| b.cmp(a));
            let (outcome, result) = elect(&Rule::default(), seats, &tally, None);
            if scores.len() > seats && scores[seats - 1] == scores[seats] {
                prop_assert_eq!(outcome, Outcome::Tie);
                let boundary = scores[seats - 1];
                for (id, n) in votes.iter().enumerate() {
                    if *n == boundary {
                        prop_assert!(result.tied.contains(&(id as u16)));
                    }
                }
                prop_assert!(result.elected.len() < seats);
            } else {
                prop_assert_ne!(outcome, Outcome::Tie);
                prop_assert!(result.elected.len() <= seats);
            }
        }
    }
}
