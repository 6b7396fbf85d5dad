//! The voter roll: people, their voting codes and groups. Codes are made
//! here and accepted as people type them; registering is validated as a
//! whole before anything changes.

use std::collections::HashMap;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::core::error::HubError;
use crate::core::limits::{Limits, MAX_GROUP_NAME, MAX_NAME};

/// A person to put on the roll.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewVoter {
    pub name: String,
    #[serde(default)]
    pub groups: Vec<String>,
}

/// An entry of the voter roll, with the code its holder votes with.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RollEntry {
    pub name: String,
    pub code: String,
    pub groups: Vec<String>,
}

/// The roll as the writer keeps it: entries in registration order, found
/// by code and by name.
#[derive(Debug, Default)]
pub struct Roll {
    entries: Vec<RollEntry>,
    by_code: HashMap<String, usize>,
    by_name: HashMap<String, usize>,
}

impl Roll {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn entries(&self) -> &[RollEntry] {
        &self.entries
    }

    /// The entry of a code in its normal form.
    pub fn get(&self, code: &str) -> Option<&RollEntry> {
        self.by_code.get(code).map(|&i| &self.entries[i])
    }

    pub fn push(&mut self, entry: RollEntry) {
        let i = self.entries.len();
        self.by_code.insert(entry.code.clone(), i);
        self.by_name.insert(entry.name.clone(), i);
        self.entries.push(entry);
    }

    /// Checks `voters` as a whole and adds the new ones. Returns every
    /// voter's entry (a name already on the roll keeps its code) and how
    /// many entries were added, for [`Roll::truncate`] to undo.
    pub fn register(
        &mut self,
        voters: Vec<NewVoter>,
        limits: &Limits,
    ) -> Result<(Vec<RollEntry>, usize), HubError> {
        if voters.is_empty() {
            return Err(HubError::InvalidRoll("give at least one name".into()));
        }
        if voters.len() > limits.max_roll_per_call {
            return Err(HubError::InvalidRoll(format!(
                "at most {} names per request",
                limits.max_roll_per_call
            )));
        }
        let mut checked = Vec::with_capacity(voters.len());
        for v in voters {
            let name = v.name.trim().to_owned();
            if name.is_empty() || name.chars().count() > MAX_NAME {
                return Err(HubError::InvalidRoll(format!(
                    "each name must have 1 to {MAX_NAME} characters"
                )));
            }
            let mut groups: Vec<String> = v.groups.iter().map(|g| g.trim().to_owned()).collect();
            if groups
                .iter()
                .any(|g| g.is_empty() || g.chars().count() > MAX_GROUP_NAME)
            {
                return Err(HubError::InvalidRoll(format!(
                    "each group name must have 1 to {MAX_GROUP_NAME} characters"
                )));
            }
            groups.sort();
            groups.dedup();
            checked.push((name, groups));
        }
        let before = self.entries.len();
        let mut answer = Vec::with_capacity(checked.len());
        for (name, groups) in checked {
            if let Some(&i) = self.by_name.get(&name) {
                answer.push(self.entries[i].clone());
                continue;
            }
            if self.entries.len() >= limits.max_roll {
                self.truncate(before);
                return Err(HubError::Full("the voter roll is full"));
            }
            let code = loop {
                let c = new_code();
                if !self.by_code.contains_key(&c) {
                    break c;
                }
            };
            let entry = RollEntry { name, code, groups };
            answer.push(entry.clone());
            self.push(entry);
        }
        Ok((answer, self.entries.len() - before))
    }

    /// The entries added since the roll had `len` of them.
    pub fn added_since(&self, len: usize) -> &[RollEntry] {
        &self.entries[len.min(self.entries.len())..]
    }

    /// Forgets every entry after the first `len` (an undone registration).
    pub fn truncate(&mut self, len: usize) {
        for e in self.entries.drain(len.min(self.entries.len())..) {
            self.by_code.remove(&e.code);
            self.by_name.remove(&e.name);
        }
    }
}

/// Roll codes: 8 characters without look-alikes (no I/1, O/0), shown as
/// `XXXX-XXXX`. 32^8 ≈ 10^12 codes: guessing one is hopeless.
const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

fn new_code() -> String {
    let mut rng = rand::rng();
    let mut code = String::with_capacity(9);
    for i in 0..8 {
        if i == 4 {
            code.push('-');
        }
        code.push(CODE_ALPHABET[rng.random_range(0..CODE_ALPHABET.len())] as char);
    }
    code
}

/// Accepts a code as people type it: any case, with or without the dash or
/// spaces.
pub fn normalise_code(input: &str) -> Option<String> {
    let chars: Vec<char> = input
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if chars.len() != 8
        || !chars
            .iter()
            .all(|c| c.is_ascii() && CODE_ALPHABET.contains(&(*c as u8)))
    {
        return None;
    }
    let mut code: String = chars[..4].iter().collect();
    code.push('-');
    code.extend(&chars[4..]);
    Some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn voter(name: &str) -> NewVoter {
        NewVoter {
            name: name.into(),
            groups: vec![],
        }
    }

    #[test]
    fn codes_are_forgiving_to_type() {
        let code = new_code();
        assert_eq!(normalise_code(&code).as_deref(), Some(code.as_str()));
        assert_eq!(normalise_code("abcd efgh").as_deref(), Some("ABCD-EFGH"));
        assert_eq!(normalise_code("ABCDEFGH").as_deref(), Some("ABCD-EFGH"));
        assert_eq!(normalise_code("ABCD-EFG"), None);
        assert_eq!(
            normalise_code("ABCD-EFG0"),
            None,
            "0 is not in the alphabet"
        );
        assert_eq!(normalise_code("ÀBCD-EFGH"), None);
    }

    #[test]
    fn a_name_keeps_its_code_and_a_bad_list_changes_nothing() {
        let limits = Limits::default();
        let mut roll = Roll::default();
        let (first, added) = roll
            .register(vec![voter("Ann"), voter("Bob")], &limits)
            .expect("register");
        assert_eq!(added, 2);
        let (again, added) = roll
            .register(vec![voter(" Ann "), voter("Cy")], &limits)
            .expect("register");
        assert_eq!(added, 1);
        assert_eq!(again[0].code, first[0].code);
        let before = roll.len();
        assert!(
            roll.register(vec![voter("Dee"), voter("")], &limits)
                .is_err()
        );
        assert!(roll.register(vec![], &limits).is_err());
        assert_eq!(roll.len(), before);
        roll.truncate(2);
        assert!(roll.get(&again[1].code).is_none());
        assert_eq!(roll.len(), 2);
    }

    #[test]
    fn a_full_roll_takes_none_of_the_call() {
        let limits = Limits {
            max_roll: 3,
            ..Limits::default()
        };
        let mut roll = Roll::default();
        roll.register(vec![voter("A"), voter("B")], &limits)
            .expect("register");
        let err = roll.register(vec![voter("C"), voter("D")], &limits);
        assert!(matches!(err, Err(HubError::Full(_))));
        assert_eq!(roll.len(), 2);
    }
}
