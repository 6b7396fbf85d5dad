//! The Duniter inertia threshold: a proposal that few people vote on must be
//! close to consensus; at full turnout the plain majority is enough.

use super::{MAX_COUNT, RuleError};

/// Parameters of the inertia threshold
/// `C + B^W + (M + (1 − M)·(1 − (T/W)^G))·max(0, T − C)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Inertia {
    /// W: the size of the electorate.
    pub electorate: u64,
    /// M: the majority required at full turnout.
    pub majority: f64,
    /// G: how fast the requirement falls as turnout rises.
    pub gradient: f64,
    /// B: base of the `B^W` term, which keeps zero ballots from adopting.
    pub base: f64,
    /// C: a fixed number of approvals required on top.
    pub constant: f64,
}

impl Inertia {
    pub(super) fn check(&self) -> Result<(), RuleError> {
        if self.electorate == 0 || self.electorate > MAX_COUNT {
            return Err(RuleError::BadInertia(
                "the inertia electorate must be at least 1",
            ));
        }
        if !(self.majority >= 0.5 && self.majority < 1.0) {
            return Err(RuleError::BadInertia(
                "the inertia majority must be at least 0.5 and below 1",
            ));
        }
        if !(self.gradient > 0.0 && self.gradient <= 10.0) {
            return Err(RuleError::BadInertia(
                "the inertia gradient must be above 0 and at most 10",
            ));
        }
        if !(0.0..1.0).contains(&self.base) {
            return Err(RuleError::BadInertia(
                "the inertia base must be at least 0 and below 1",
            ));
        }
        if !(self.constant >= 0.0 && self.constant <= MAX_COUNT as f64) {
            return Err(RuleError::BadInertia(
                "the inertia constant must be zero or more",
            ));
        }
        Ok(())
    }

    /// The number of approvals that must be strictly exceeded with
    /// `turnout` expressed ballots. Turnout above the electorate counts as
    /// full turnout (an open session may draw more voters than expected).
    pub fn threshold(&self, turnout: f64) -> f64 {
        let w = self.electorate as f64;
        let participation = (turnout / w).min(1.0);
        let factor =
            self.majority + (1.0 - self.majority) * (1.0 - participation.powf(self.gradient));
        self.constant + self.base.powf(w) + factor * (turnout - self.constant).max(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn the_share_needed_falls_as_turnout_rises(
            w in 1u64..20_000, m in 0.5f64..0.99, g in 0.05f64..1.0, t in 1u64..20_000,
        ) {
            let i = Inertia { electorate: w, majority: m, gradient: g, base: 0.1, constant: 0.0 };
            let share = |t: u64| i.threshold(t as f64) / t as f64;
            prop_assert!(share(t + 1) <= share(t) + 1e-12);
            // And never below the majority M at full turnout.
            prop_assert!(share(t) >= m - 1e-12);
        }
    }
}
