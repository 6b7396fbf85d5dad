//! The voter roll: members, their voting codes, groups and weights, and
//! the proxies they give one another. Codes are made here and accepted as
//! people type them; a code is a credential and can be reissued, so a
//! member is known inside the hub by an id that never changes and is
//! never shown.

use std::collections::HashMap;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::core::error::HubError;
use crate::core::limits::{Limits, MAX_GROUP_NAME, MAX_NAME, MAX_WEIGHT};

/// A person to put on the roll.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewVoter {
    pub name: String,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub weight: Option<serde_json::Value>,
}

/// What editing a member changes (only the fields given).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberEdit {
    pub name: Option<String>,
    pub groups: Option<Vec<String>>,
    pub weight: Option<serde_json::Value>,
}

/// A member of the roll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Never changes, never leaves the hub: ballots are kept under it.
    pub id: String,
    /// The credential the member votes with.
    pub code: String,
    pub name: String,
    pub groups: Vec<String>,
    /// Shares, mandates: a whole number from 1 to 1 000 000.
    pub weight: u64,
    /// The member whose proxy this one holds: that member votes for it.
    pub proxy_to: Option<String>,
}

/// A member as moderators see it (`GET /api/voters`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Voter {
    pub name: String,
    pub code: String,
    pub groups: Vec<String>,
    pub weight: u64,
    /// Present at the current meeting.
    pub present: bool,
    /// The code of the member who holds this one's proxy.
    pub proxy_to: Option<String>,
    /// The codes of the members whose proxies this one holds.
    pub proxies: Vec<String>,
}

/// A member as they see themselves with their code (the participant
/// page): the members they vote for by proxy are named, never given by
/// code.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SelfView {
    pub name: String,
    pub code: String,
    pub groups: Vec<String>,
    pub weight: u64,
    pub present: bool,
    /// The name of whoever votes for this member, if someone does.
    pub represented_by: Option<String>,
    /// Whom this member votes for by proxy.
    pub mandates: Vec<Mandate>,
}

/// A row of the window's roll table: the member, and the names behind the
/// codes of their proxies.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RollRow {
    #[serde(flatten)]
    pub voter: Voter,
    pub proxy_to_name: Option<String>,
    pub proxies_names: Vec<String>,
}

/// The rows a search finds, the first `limit` of them: a roll of thousands
/// is never sent whole to the window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RollPage {
    pub rows: Vec<RollRow>,
    /// How many members the search matches.
    pub matches: usize,
    /// How many members are on the roll.
    pub total: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mandate {
    pub name: String,
    pub weight: u64,
}

/// The roll as the writer keeps it: members in registration order, found
/// by id, code and name.
#[derive(Debug, Default, Clone)]
pub struct Roll {
    members: Vec<Member>,
    by_id: HashMap<String, usize>,
    by_code: HashMap<String, usize>,
    by_name: HashMap<String, usize>,
    /// Holder id → the members whose proxies it holds (their indexes), so
    /// that listing a roll of thousands stays linear.
    held: HashMap<String, Vec<usize>>,
}

/// Why a proxy cannot be given: each says so in words.
fn refuse(why: &str) -> HubError {
    HubError::ProxyRefused(why.to_owned())
}

/// A weight as sent: a whole number from 1 to 1 000 000.
pub fn weight(value: &serde_json::Value) -> Result<u64, HubError> {
    value
        .as_u64()
        .filter(|w| (1..=MAX_WEIGHT).contains(w))
        .ok_or_else(|| {
            HubError::InvalidRoll(format!(
                "a weight is a whole number from 1 to {MAX_WEIGHT} (got {value})"
            ))
        })
}

pub(crate) fn check_name(name: &str) -> Result<String, HubError> {
    let name = name.trim().to_owned();
    if name.is_empty() || name.chars().count() > MAX_NAME {
        return Err(HubError::InvalidRoll(format!(
            "each name must have 1 to {MAX_NAME} characters"
        )));
    }
    Ok(name)
}

pub(crate) fn check_groups(groups: &[String]) -> Result<Vec<String>, HubError> {
    let mut groups: Vec<String> = groups.iter().map(|g| g.trim().to_owned()).collect();
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
    Ok(groups)
}

impl Roll {
    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// The member of a code in its normal form.
    pub fn by_code(&self, code: &str) -> Option<&Member> {
        self.by_code.get(code).map(|&i| &self.members[i])
    }

    pub fn by_id(&self, id: &str) -> Option<&Member> {
        self.by_id.get(id).map(|&i| &self.members[i])
    }

    pub fn by_name(&self, name: &str) -> Option<&Member> {
        self.by_name.get(name.trim()).map(|&i| &self.members[i])
    }

    /// The members whose proxies `holder` holds, in registration order.
    pub fn represented_by(&self, holder: &str) -> impl Iterator<Item = &Member> {
        self.held
            .get(holder)
            .into_iter()
            .flatten()
            .map(|&i| &self.members[i])
    }

    fn hold(&mut self, i: usize) {
        if let Some(holder) = self.members[i].proxy_to.clone() {
            let givers = self.held.entry(holder).or_default();
            let at = givers.partition_point(|&g| g < i);
            givers.insert(at, i);
        }
    }

    fn unhold(&mut self, i: usize, holder: Option<&str>) {
        if let Some(holder) = holder
            && let Some(givers) = self.held.get_mut(holder)
        {
            givers.retain(|&g| g != i);
            if givers.is_empty() {
                self.held.remove(holder);
            }
        }
    }

    /// The roll's total weight.
    pub fn total_weight(&self) -> u64 {
        self.members.iter().map(|m| m.weight).sum()
    }

    /// Adds a member or puts a changed one in its place.
    pub fn put(&mut self, member: Member) {
        match self.by_id.get(&member.id).copied() {
            Some(i) => {
                let old = std::mem::replace(&mut self.members[i], member);
                self.by_code.remove(&old.code);
                self.by_name.remove(&old.name);
                self.unhold(i, old.proxy_to.as_deref());
                let new = &self.members[i];
                self.by_code.insert(new.code.clone(), i);
                self.by_name.insert(new.name.clone(), i);
                self.hold(i);
            }
            None => {
                let i = self.members.len();
                self.by_id.insert(member.id.clone(), i);
                self.by_code.insert(member.code.clone(), i);
                self.by_name.insert(member.name.clone(), i);
                self.members.push(member);
                self.hold(i);
            }
        }
    }

    /// Forgets every member after the first `len` (an undone registration).
    pub fn truncate(&mut self, len: usize) {
        let from = len.min(self.members.len());
        for i in (from..self.members.len()).rev() {
            let holder = self.members[i].proxy_to.clone();
            self.unhold(i, holder.as_deref());
        }
        for m in self.members.drain(from..) {
            self.by_id.remove(&m.id);
            self.by_code.remove(&m.code);
            self.by_name.remove(&m.name);
        }
    }

    /// The members added since the roll had `len` of them.
    pub fn added_since(&self, len: usize) -> &[Member] {
        &self.members[len.min(self.members.len())..]
    }

    fn fresh_code(&self) -> String {
        loop {
            let c = new_code();
            if !self.by_code.contains_key(&c) {
                return c;
            }
        }
    }

    /// Checks `voters` as a whole and adds the new ones. Returns every
    /// voter's member (a name already on the roll keeps its entry) and how
    /// many were added, for [`Roll::truncate`] to undo.
    pub fn register(
        &mut self,
        voters: Vec<NewVoter>,
        at_once: usize,
        limits: &Limits,
    ) -> Result<(Vec<Member>, usize), HubError> {
        if voters.is_empty() {
            return Err(HubError::InvalidRoll("give at least one name".into()));
        }
        if voters.len() > at_once {
            return Err(HubError::InvalidRoll(format!(
                "at most {at_once} names at once"
            )));
        }
        let mut checked = Vec::with_capacity(voters.len());
        for v in voters {
            let weight = match &v.weight {
                None => 1,
                Some(w) => weight(w)?,
            };
            checked.push((check_name(&v.name)?, check_groups(&v.groups)?, weight));
        }
        let before = self.members.len();
        let mut answer = Vec::with_capacity(checked.len());
        for (name, groups, weight) in checked {
            if let Some(&i) = self.by_name.get(&name) {
                answer.push(self.members[i].clone());
                continue;
            }
            if self.members.len() >= limits.max_roll {
                self.truncate(before);
                return Err(HubError::Full("the voter roll is full"));
            }
            let member = Member {
                id: new_member_id(),
                code: self.fresh_code(),
                name,
                groups,
                weight,
                proxy_to: None,
            };
            answer.push(member.clone());
            self.put(member);
        }
        Ok((answer, self.members.len() - before))
    }

    /// The member `id` with `edit` applied (nothing changes here yet).
    pub fn edited(&self, id: &str, edit: MemberEdit) -> Result<Member, HubError> {
        let mut member = self.by_id(id).cloned().ok_or(HubError::UnknownCode)?;
        if let Some(name) = edit.name {
            let name = check_name(&name)?;
            if self
                .by_name
                .get(&name)
                .is_some_and(|&i| self.members[i].id != id)
            {
                return Err(HubError::InvalidRoll(format!(
                    "{name:?} is already on the roll"
                )));
            }
            member.name = name;
        }
        if let Some(groups) = edit.groups {
            member.groups = check_groups(&groups)?;
        }
        if let Some(w) = edit.weight {
            member.weight = weight(&w)?;
        }
        Ok(member)
    }

    /// The member `id` with a new code: the old one stops working.
    pub fn reissued(&self, id: &str) -> Result<Member, HubError> {
        let mut member = self.by_id(id).cloned().ok_or(HubError::UnknownCode)?;
        member.code = self.fresh_code();
        Ok(member)
    }

    /// The giver with its proxy given to `holder`, if the roll allows it:
    /// not to oneself, no chain, at most `max` per holder.
    pub fn with_proxy(&self, giver: &str, holder: &str, max: usize) -> Result<Member, HubError> {
        let g = self.by_id(giver).ok_or(HubError::UnknownCode)?;
        let h = self.by_id(holder).ok_or(HubError::UnknownCode)?;
        if g.id == h.id {
            return Err(refuse("a member cannot hold their own proxy"));
        }
        if h.proxy_to.is_some() {
            return Err(refuse(
                "no chains: the holder has given their own proxy to someone else",
            ));
        }
        if self.represented_by(&g.id).next().is_some() {
            return Err(refuse(
                "no chains: the giver holds proxies of others and must vote for them",
            ));
        }
        let held = self.represented_by(&h.id).filter(|m| m.id != g.id).count();
        if held >= max {
            return Err(refuse(&format!(
                "the holder already holds {held} proxies, the most allowed ({max})"
            )));
        }
        let mut member = g.clone();
        member.proxy_to = Some(h.id.clone());
        Ok(member)
    }

    /// A member as moderators see it.
    pub fn voter(&self, m: &Member, present: bool) -> Voter {
        Voter {
            name: m.name.clone(),
            code: m.code.clone(),
            groups: m.groups.clone(),
            weight: m.weight,
            present,
            proxy_to: m
                .proxy_to
                .as_deref()
                .and_then(|h| self.by_id(h))
                .map(|h| h.code.clone()),
            proxies: self.represented_by(&m.id).map(|g| g.code.clone()).collect(),
        }
    }

    /// The members whose name contains `query` (any case) or whose code
    /// starts with it (as people type codes), in registration order: the
    /// first `limit` of them.
    pub fn search(
        &self,
        query: &str,
        present: &std::collections::HashSet<String>,
        limit: usize,
    ) -> RollPage {
        let q = query.trim().to_lowercase();
        let code: String = q
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let found = self.members.iter().filter(|m| {
            q.is_empty()
                || m.name.to_lowercase().contains(&q)
                || (!code.is_empty() && m.code.replace('-', "").starts_with(&code))
        });
        let mut rows = Vec::new();
        let mut matches = 0;
        for m in found {
            matches += 1;
            if rows.len() < limit {
                rows.push(RollRow {
                    voter: self.voter(m, present.contains(&m.id)),
                    proxy_to_name: m
                        .proxy_to
                        .as_deref()
                        .and_then(|h| self.by_id(h))
                        .map(|h| h.name.clone()),
                    proxies_names: self.represented_by(&m.id).map(|g| g.name.clone()).collect(),
                });
            }
        }
        RollPage {
            rows,
            matches,
            total: self.members.len(),
        }
    }

    /// A member as they see themselves.
    pub fn self_view(&self, m: &Member, present: bool) -> SelfView {
        SelfView {
            name: m.name.clone(),
            code: m.code.clone(),
            groups: m.groups.clone(),
            weight: m.weight,
            present,
            represented_by: m
                .proxy_to
                .as_deref()
                .and_then(|h| self.by_id(h))
                .map(|h| h.name.clone()),
            mandates: self
                .represented_by(&m.id)
                .map(|g| Mandate {
                    name: g.name.clone(),
                    weight: g.weight,
                })
                .collect(),
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

/// A member's id: a UUIDv7, ordered by registration (which the roll shows
/// anyway) and so by nothing that happens in a vote. Rows kept under it
/// (ballots, attendance, who voted in a secret vote) land in the tables in
/// that order, which keeps their indexes compact.
fn new_member_id() -> String {
    format!("m-{}", uuid::Uuid::now_v7().simple())
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
            weight: None,
        }
    }

    fn roll(names: &[&str]) -> Roll {
        let mut roll = Roll::default();
        roll.register(
            names.iter().map(|n| voter(n)).collect(),
            10,
            &Limits::default(),
        )
        .expect("register");
        roll
    }

    fn id(roll: &Roll, name: &str) -> String {
        roll.by_name(name).expect("member").id.clone()
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
            .register(vec![voter("Ann"), voter("Bob")], 10, &limits)
            .expect("register");
        assert_eq!(added, 2);
        assert_eq!(first[0].weight, 1);
        let (again, added) = roll
            .register(vec![voter(" Ann "), voter("Cy")], 10, &limits)
            .expect("register");
        assert_eq!(added, 1);
        assert_eq!(again[0].code, first[0].code);
        let before = roll.len();
        assert!(
            roll.register(vec![voter("Dee"), voter("")], 10, &limits)
                .is_err()
        );
        assert!(roll.register(vec![], 10, &limits).is_err());
        let heavy = NewVoter {
            weight: Some(serde_json::json!(0)),
            ..voter("Eve")
        };
        assert!(roll.register(vec![heavy], 10, &limits).is_err());
        assert_eq!(roll.len(), before);
        roll.truncate(2);
        assert!(roll.by_code(&again[1].code).is_none());
        assert_eq!(roll.len(), 2);
    }

    #[test]
    fn weights_are_whole_and_bounded() {
        for bad in [
            serde_json::json!(0),
            serde_json::json!(-1),
            serde_json::json!(1.5),
            serde_json::json!(1_000_001),
            serde_json::json!("3"),
        ] {
            assert!(weight(&bad).is_err(), "{bad}");
        }
        assert_eq!(
            weight(&serde_json::json!(1_000_000)).expect("ok"),
            1_000_000
        );
    }

    #[test]
    fn a_full_roll_takes_none_of_the_call() {
        let limits = Limits {
            max_roll: 3,
            ..Limits::default()
        };
        let mut roll = Roll::default();
        roll.register(vec![voter("A"), voter("B")], 10, &limits)
            .expect("register");
        let err = roll.register(vec![voter("C"), voter("D")], 10, &limits);
        assert!(matches!(err, Err(HubError::Full(_))));
        assert_eq!(roll.len(), 2);
    }

    #[test]
    fn proxies_refuse_oneself_chains_and_more_than_the_cap() {
        let mut roll = roll(&["Ann", "Bob", "Cy", "Dee", "Eve"]);
        let (ann, bob, cy, dee, eve) = (
            id(&roll, "Ann"),
            id(&roll, "Bob"),
            id(&roll, "Cy"),
            id(&roll, "Dee"),
            id(&roll, "Eve"),
        );
        assert!(matches!(
            roll.with_proxy(&ann, &ann, 2),
            Err(HubError::ProxyRefused(_))
        ));
        let given = roll.with_proxy(&bob, &ann, 2).expect("Bob to Ann");
        roll.put(given);
        // Ann holds one: she cannot give hers (a chain), and nobody can give
        // theirs to Bob, who gave his.
        assert!(roll.with_proxy(&ann, &cy, 2).is_err());
        assert!(roll.with_proxy(&cy, &bob, 2).is_err());
        roll.put(roll.with_proxy(&cy, &ann, 2).expect("Cy to Ann"));
        let capped = roll.with_proxy(&dee, &ann, 2);
        assert!(
            matches!(&capped, Err(HubError::ProxyRefused(why)) if why.contains("most allowed")),
            "{capped:?}"
        );
        assert!(roll.with_proxy(&dee, &eve, 2).is_ok());
        let view = roll.self_view(roll.by_id(&ann).expect("Ann"), true);
        assert_eq!(view.mandates.len(), 2);
        let bob_view = roll.voter(roll.by_id(&bob).expect("Bob"), false);
        assert_eq!(
            bob_view.proxy_to.as_deref(),
            Some(roll.by_id(&ann).expect("Ann").code.as_str())
        );
    }

    #[test]
    fn a_reissued_code_replaces_the_old_one() {
        let mut roll = roll(&["Ann"]);
        let ann = roll.by_name("Ann").expect("Ann").clone();
        let new = roll.reissued(&ann.id).expect("reissue");
        assert_ne!(new.code, ann.code);
        roll.put(new.clone());
        assert!(
            roll.by_code(&ann.code).is_none(),
            "the old code stops working"
        );
        assert_eq!(roll.by_code(&new.code).expect("new").id, ann.id);
    }
}
