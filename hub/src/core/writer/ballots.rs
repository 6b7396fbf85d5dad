//! Ballots as the writer decides them: who may vote, whether the session
//! takes ballots now, a retry answered as the first, a re-vote replacing
//! the voter's earlier ballot.

use uuid::Uuid;

use super::{Batch, Core, Decided};
use crate::core::error::HubError;
use crate::core::limits::{MAX_BALLOT_ID, MAX_VOTER};
use crate::core::roll::normalise_code;
use crate::core::session::{Electorate, Status, VoteReceipt};
use crate::core::store::{BallotRecord, Txn, Write};
use crate::core::tally::BallotInput;

impl Core {
    /// Records a ballot; the answer is the receipt's JSON, kept with the
    /// ballot's id (when it has one) so that a retry gets the same bytes.
    pub fn cast(
        &mut self,
        id: Uuid,
        voter: String,
        input: BallotInput,
        ballot_id: Option<String>,
        txn: &mut dyn Txn,
        batch: &mut Batch,
    ) -> Decided<String> {
        let refuse = |e: HubError| Ok(Err(e));
        if voter.trim().is_empty() || voter.chars().count() > MAX_VOTER {
            return refuse(HubError::InvalidBallot(format!(
                "\"voter\" must be a non-empty string of at most {MAX_VOTER} characters"
            )));
        }
        if let Some(bid) = &ballot_id
            && (bid.is_empty()
                || bid.chars().count() > MAX_BALLOT_ID
                || bid.chars().any(char::is_control))
        {
            return refuse(HubError::InvalidBallot(format!(
                "\"ballot_id\" must have 1 to {MAX_BALLOT_ID} characters"
            )));
        }
        let Some(session) = self.sessions.get(&id) else {
            return refuse(HubError::SessionNotFound);
        };
        let voter = match session.meta.electorate {
            Electorate::Open => voter,
            Electorate::Roll => match normalise_code(&voter).filter(|c| self.roll.get(c).is_some())
            {
                Some(code) => code,
                None => return refuse(HubError::NotOnRoll),
            },
        };
        // A retry of a ballot already recorded gets its first answer, and
        // changes nothing — whatever happened since.
        if let Some(bid) = &ballot_id
            && let Some(answer) = txn.answer(id, &voter, bid)?
        {
            return Ok(Ok(answer));
        }
        match session.state.status {
            Status::Draft => return refuse(HubError::NotOpen),
            Status::Closed => return refuse(HubError::SessionClosed),
            Status::Open => {}
        }
        let ballot = match session.meta.kind.ballot(input) {
            Ok(ballot) => ballot,
            Err(why) => return refuse(HubError::InvalidBallot(why)),
        };
        let previous = txn.ballot(id, &voter)?;
        if previous.is_none() && session.state.tally.ballots >= self.limits.max_ballots_per_session
        {
            return refuse(HubError::Full("this session has reached its ballot limit"));
        }
        let groups = match session.meta.electorate {
            Electorate::Roll => self.roll.get(&voter).map(|e| e.groups.clone()),
            Electorate::Open => None,
        }
        .unwrap_or_default();
        batch.remember(id, Some(session));
        let record = BallotRecord {
            voter,
            ballot: ballot.clone(),
            cast_at: batch.now(),
        };
        txn.write(&Write::Ballot {
            session: id,
            record: record.clone(),
        })?;
        let Some(session) = self.sessions.get_mut(&id) else {
            return refuse(HubError::SessionNotFound);
        };
        let state = &mut session.state;
        if let Some(old) = previous {
            state.tally.remove(&old, 1, &groups);
        }
        state.tally.add(&ballot, 1, &groups);
        state.seq += 1;
        let answer = serde_json::to_string(&VoteReceipt {
            tally: &state.tally,
            seq: state.seq,
        })
        .map_err(|e| crate::core::store::StoreError::Inconsistent(e.to_string()))?;
        if let Some(ballot_id) = ballot_id {
            txn.write(&Write::Answer {
                session: id,
                voter: record.voter,
                ballot_id,
                answer: answer.clone(),
            })?;
        }
        Ok(Ok(answer))
    }
}
