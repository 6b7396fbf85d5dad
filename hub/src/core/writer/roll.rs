//! The roll as the writer changes it: registration, edits, lost cards,
//! proxies, and who is present at the meeting.

use std::collections::HashSet;

use super::{Batch, Core, Decided};
use crate::core::error::HubError;
use crate::core::roll::{Member, MemberEdit, NewVoter, normalise_code};
use crate::core::rules::Presence;
use crate::core::store::{StoreError, Txn, Write};

/// Attendance at the current meeting, by people and by weight.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Attendance {
    pub present: u64,
    /// Absent members whose proxy is held by a present one.
    pub represented: u64,
    pub absent: u64,
    pub weight_present: u64,
    pub weight_represented: u64,
    pub weight_total: u64,
}

impl Attendance {
    /// Counts attendance from the roll and who is present.
    pub fn of(members: &[Member], present: &HashSet<String>) -> Attendance {
        let mut a = Attendance::default();
        for m in members {
            a.weight_total += m.weight;
            if present.contains(&m.id) {
                a.present += 1;
                a.weight_present += m.weight;
            } else if m.proxy_to.as_ref().is_some_and(|h| present.contains(h)) {
                a.represented += 1;
                a.weight_represented += m.weight;
            } else {
                a.absent += 1;
            }
        }
        a
    }

    /// The weight there (present or represented), for `quorum_present`.
    pub fn presence(&self) -> Presence {
        Presence {
            weight: self.weight_present + self.weight_represented,
            total: self.weight_total,
        }
    }
}

impl Core {
    /// The member of a code as typed.
    fn member(&self, code: &str) -> Result<&Member, HubError> {
        normalise_code(code)
            .and_then(|c| self.roll.by_code(&c))
            .ok_or(HubError::UnknownCode)
    }

    /// Puts a changed member in the roll and the store, keeping what it
    /// was for an undo.
    fn change(
        &mut self,
        member: Member,
        txn: &mut dyn Txn,
        batch: &mut Batch,
    ) -> Result<Member, StoreError> {
        let before = self.roll.by_id(&member.id).cloned();
        if let Some(before) = &before {
            batch.members_before.push(before.clone());
        }
        txn.write(&Write::Member(member.clone()))?;
        self.roll.put(member.clone());
        // What an open vote on the roll checks ballots against (a new code
        // is nothing it shows).
        fn logged(m: &Member) -> (&str, u64, &[String], Option<&str>) {
            (&m.name, m.weight, &m.groups, m.proxy_to.as_deref())
        }
        if before.as_ref().is_none_or(|b| logged(b) != logged(&member)) {
            let was = before.as_ref().map(|b| b.name.as_str());
            self.log_member(&member, was, txn, batch)?;
        }
        Ok(member)
    }

    pub fn attendance(&self) -> Attendance {
        Attendance::of(self.roll.members(), &self.present)
    }

    /// Registers people: from a call (at most `max_roll_per_call`) or a
    /// roll file (at most `max_roll_file`).
    pub fn register(
        &mut self,
        voters: Vec<NewVoter>,
        from_file: bool,
        txn: &mut dyn Txn,
        batch: &mut Batch,
    ) -> Decided<Vec<Member>> {
        let at_once = if from_file {
            self.limits.max_roll_file
        } else {
            self.limits.max_roll_per_call
        };
        let (members, added) = match self.roll.register(voters, at_once, &self.limits) {
            Ok(done) => done,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let fresh: Vec<Member> = self.roll.added_since(self.roll.len() - added).to_vec();
        for member in &fresh {
            txn.write(&Write::Member(member.clone()))?;
        }
        // Open votes on the roll log who joined it.
        for member in &fresh {
            self.log_member(member, None, txn, batch)?;
        }
        Ok(Ok(members))
    }

    pub fn edit_member(
        &mut self,
        code: &str,
        edit: MemberEdit,
        txn: &mut dyn Txn,
        batch: &mut Batch,
    ) -> Decided<Member> {
        let edited = match self
            .member(code)
            .and_then(|m| self.roll.edited(&m.id.clone(), edit))
        {
            Ok(edited) => edited,
            Err(refusal) => return Ok(Err(refusal)),
        };
        Ok(Ok(self.change(edited, txn, batch)?))
    }

    /// A lost card: a new code; the old one stops working at once, and the
    /// member's ballots (kept under their id) stay counted.
    pub fn reissue(&mut self, code: &str, txn: &mut dyn Txn, batch: &mut Batch) -> Decided<Member> {
        let reissued = match self
            .member(code)
            .and_then(|m| self.roll.reissued(&m.id.clone()))
        {
            Ok(m) => m,
            Err(refusal) => return Ok(Err(refusal)),
        };
        tracing::info!("a voting code was reissued");
        Ok(Ok(self.change(reissued, txn, batch)?))
    }

    pub fn give_proxy(
        &mut self,
        from: &str,
        to: &str,
        txn: &mut dyn Txn,
        batch: &mut Batch,
    ) -> Decided<Member> {
        let given = match self.member(from).and_then(|giver| {
            let holder = self.member(to)?;
            self.roll
                .with_proxy(&giver.id, &holder.id, self.limits.max_proxies)
        }) {
            Ok(given) => given,
            Err(refusal) => return Ok(Err(refusal)),
        };
        Ok(Ok(self.change(given, txn, batch)?))
    }

    pub fn revoke_proxy(
        &mut self,
        from: &str,
        txn: &mut dyn Txn,
        batch: &mut Batch,
    ) -> Decided<Member> {
        let mut member = match self.member(from) {
            Ok(m) => m.clone(),
            Err(refusal) => return Ok(Err(refusal)),
        };
        member.proxy_to = None;
        Ok(Ok(self.change(member, txn, batch)?))
    }

    /// A moderator checks a member in or out of the current meeting; it
    /// is kept as such (a later ballot checks them in again).
    pub fn set_presence(
        &mut self,
        code: &str,
        present: bool,
        txn: &mut dyn Txn,
        batch: &mut Batch,
    ) -> Decided<Member> {
        let member = match self.member(code) {
            Ok(m) => m.clone(),
            Err(refusal) => return Ok(Err(refusal)),
        };
        self.check(&member.id, present, txn, batch)?;
        Ok(Ok(member))
    }

    /// Records a check-in or check-out (nothing if it is already so).
    fn check(
        &mut self,
        member: &str,
        present: bool,
        txn: &mut dyn Txn,
        batch: &mut Batch,
    ) -> Result<(), StoreError> {
        let before = self.checked.get(member).copied();
        if before != Some(present) {
            txn.write(&Write::Presence {
                meeting: self.current_meeting(),
                member: member.to_owned(),
                present,
            })?;
            self.checked.insert(member.to_owned(), present);
            batch.checked.push((member.to_owned(), before));
        }
        self.set_present(member, present, batch);
        Ok(())
    }

    /// A ballot checks its voter in. The ballot itself is the record (the
    /// store counts who cast or held one as present), so nothing more is
    /// written — unless a moderator had checked them out.
    pub fn ballot_checks_in(
        &mut self,
        member: &str,
        txn: &mut dyn Txn,
        batch: &mut Batch,
    ) -> Result<(), StoreError> {
        if self.present.contains(member) {
            return Ok(());
        }
        if self.checked.get(member) == Some(&false) {
            return self.check(member, true, txn, batch);
        }
        self.set_present(member, true, batch);
        Ok(())
    }

    /// A named ballot replaced by one that another member cast (a proxy
    /// taken back, say): the one who cast the first may have no other
    /// ballot to say they came, so their presence is recorded as such.
    pub fn keep_checked_in(
        &mut self,
        member: &str,
        txn: &mut dyn Txn,
        batch: &mut Batch,
    ) -> Result<(), StoreError> {
        if self.present.contains(member) && !self.checked.contains_key(member) {
            self.check(member, true, txn, batch)?;
        }
        Ok(())
    }

    fn set_present(&mut self, member: &str, present: bool, batch: &mut Batch) {
        let changed = if present {
            self.present.insert(member.to_owned())
        } else {
            self.present.remove(member)
        };
        if changed {
            batch.presence.push((member.to_owned(), present));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, weight: u64, proxy_to: Option<&str>) -> Member {
        Member {
            id: id.into(),
            code: format!("C-{id}"),
            name: id.into(),
            groups: vec![],
            weight,
            proxy_to: proxy_to.map(str::to_owned),
        }
    }

    #[test]
    fn attendance_counts_people_and_weight() {
        let members = [
            member("ann", 3, None),
            member("bob", 2, Some("ann")),
            member("cy", 5, Some("dee")),
            member("dee", 1, None),
            member("eve", 4, None),
        ];
        let present: HashSet<String> = ["ann".to_owned(), "eve".to_owned()].into();
        let a = Attendance::of(&members, &present);
        assert_eq!(
            a,
            Attendance {
                present: 2,
                represented: 1,
                absent: 2,
                weight_present: 7,
                weight_represented: 2,
                weight_total: 15,
            }
        );
        assert_eq!(
            a.presence(),
            Presence {
                weight: 9,
                total: 15
            }
        );
    }
}
