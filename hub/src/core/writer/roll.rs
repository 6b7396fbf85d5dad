//! The roll as the writer changes it.

use super::{Core, Decided};
use crate::core::roll::{NewVoter, RollEntry};
use crate::core::store::{Txn, Write};

impl Core {
    pub fn register(
        &mut self,
        voters: Vec<NewVoter>,
        txn: &mut dyn Txn,
    ) -> Decided<Vec<RollEntry>> {
        let (entries, added) = match self.roll.register(voters, &self.limits) {
            Ok(done) => done,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let fresh = self.roll.added_since(self.roll.len() - added);
        for entry in fresh {
            txn.write(&Write::Voter(entry.clone()))?;
        }
        Ok(Ok(entries))
    }
}
