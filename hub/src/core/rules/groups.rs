//! Group minimums: on top of a rule's own threshold, enough approvals from
//! the members of a group (the Ğ1 smith licence's smiths and council).

use serde::{Deserialize, Serialize};

use super::EPSILON;

/// A group that must approve in enough number: at least `ceil(size^exponent)`
/// approvals from voters of `group`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupMinimum {
    pub group: String,
    pub size: u64,
    pub exponent: f64,
}

impl GroupMinimum {
    pub fn required(&self) -> u64 {
        // A tiny slack so that 27^(1/3) needs 3, not 4, despite rounding.
        let exact = (self.size as f64).powf(self.exponent);
        (exact - EPSILON * exact.max(1.0)).ceil().max(0.0) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn smith_licence_minimums() {
        let g = |size, exponent| GroupMinimum {
            group: "g".into(),
            size,
            exponent,
        };
        // ceil(20^0.3) = ceil(2.456) = 3; ceil(1000^0.7) = ceil(125.89) = 126
        assert_eq!(g(20, 0.3).required(), 3);
        assert_eq!(g(1000, 0.7).required(), 126);
        assert_eq!(g(1, 0.3).required(), 1);
        assert_eq!(g(27, 1.0 / 3.0).required(), 3);
        assert_eq!(g(8, 1.0 / 3.0).required(), 2);
    }

    proptest! {
        #[test]
        fn the_minimum_is_the_ceiling(size in 1u64..100_000, exponent in 0.0f64..=1.0) {
            let g = GroupMinimum { group: "smith".into(), size, exponent };
            let req = g.required();
            let exact = (size as f64).powf(exponent);
            prop_assert!(req as f64 >= exact - 1e-6);
            prop_assert!((req as f64) < exact + 1.0);
        }
    }
}
