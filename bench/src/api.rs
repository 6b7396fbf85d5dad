//! The target hub's HTTP API, as the load generator uses it.

use std::sync::Arc;

use serde_json::json;

use crate::target::Target;

#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
    /// The node sessions and the roll are made on (the first).
    pub target: Arc<Target>,
    /// Every node: ballot k goes to node k mod n.
    pub nodes: Arc<Vec<Arc<Target>>>,
    pub token: String,
    /// Ballots are for an election of this many candidates, instead of a
    /// motion.
    pub election: Option<u16>,
    /// Ballots come from members of the roll, not from anonymous voters.
    pub roll: Option<OnRoll>,
}

/// Members registered for the run: ballot k is member k's (each votes
/// once), and member i weighs 1, 2 or 3 in turn.
#[derive(Clone)]
pub struct OnRoll {
    pub codes: Arc<Vec<String>>,
    /// The session is a secret vote.
    pub secret: bool,
}

/// Members registered in one call at most (the hub's own bound).
const ROLL_CHUNK: u64 = 10_000;

/// The weight of the member who casts ballot `k` (from 1).
pub fn weight(k: u64) -> u64 {
    1 + (k.saturating_sub(1)) % 3
}

impl Api {
    /// The node that takes ballot (or subscriber) `i`.
    pub fn node(&self, i: usize) -> &Target {
        &self.nodes[i % self.nodes.len().max(1)]
    }

    pub async fn create_session(&self, title: &str) -> Result<String, String> {
        let resp = self
            .http
            .post(format!("{}/api/sessions", self.target.base))
            .bearer_auth(&self.token)
            .header("content-type", "application/json")
            .body(self.session_body(title).to_string())
            .send()
            .await
            .map_err(|e| format!("create session: {e}"))?;
        let status = resp.status();
        let body: serde_json::Value = resp
            .json()
            .await
            .map_err(|e| format!("create session: {e}"))?;
        if !status.is_success() {
            return Err(format!("create session: {status} {body}"));
        }
        body["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| "create session: no id".to_owned())
    }

    fn session_body(&self, title: &str) -> serde_json::Value {
        let mut body = match self.election {
            None => json!({ "title": title }),
            Some(n) => json!({
                "title": title,
                "kind": "election",
                "options": (0..n).map(|i| format!("Candidate {i}")).collect::<Vec<_>>(),
                "seats": 1,
            }),
        };
        if let Some(roll) = &self.roll {
            body["electorate"] = json!("roll");
            if roll.secret {
                body["secrecy"] = json!("secret");
            }
        }
        body
    }

    /// Registers `n` members (weights 1, 2, 3 in turn); their codes, in
    /// order.
    pub async fn register_roll(&self, n: u64) -> Result<Vec<String>, String> {
        let mut codes = Vec::with_capacity(n as usize);
        let mut from = 0;
        while from < n {
            let to = (from + ROLL_CHUNK).min(n);
            let voters: Vec<serde_json::Value> = (from..to)
                .map(|i| json!({"name": format!("bench member {i}"), "weight": weight(i + 1)}))
                .collect();
            let resp = self
                .http
                .post(format!("{}/api/voters", self.target.base))
                .bearer_auth(&self.token)
                .header("content-type", "application/json")
                .body(json!({ "voters": voters }).to_string())
                .send()
                .await
                .map_err(|e| format!("register the roll: {e}"))?;
            let status = resp.status();
            let body: serde_json::Value = resp
                .json()
                .await
                .map_err(|e| format!("register the roll: {e}"))?;
            if !status.is_success() {
                return Err(format!("register the roll: {status} {body}"));
            }
            let issued = body.as_array().ok_or("register the roll: not a list")?;
            for v in issued {
                codes.push(
                    v["code"]
                        .as_str()
                        .ok_or("register the roll: no code")?
                        .to_owned(),
                );
            }
            from = to;
        }
        Ok(codes)
    }

    /// The `votes_for` every subscriber must end on after `ballots`: the
    /// weights of the ballots for on the roll, 0 in a secret vote (its
    /// counts show at the close only).
    pub fn expected_for(&self, ballots: u64) -> u64 {
        match &self.roll {
            None => expected_for(ballots),
            Some(roll) if roll.secret => 0,
            Some(_) => (1..=ballots).filter(|&k| for_ballot(k)).map(weight).sum(),
        }
    }

    /// Casts ballot number `k`; true when the hub acknowledged it.
    pub async fn vote(&self, session: &str, k: u64) -> bool {
        let voter = match &self.roll {
            None => format!("b{k}"),
            Some(roll) => {
                let i = (k.saturating_sub(1) as usize) % roll.codes.len().max(1);
                roll.codes.get(i).cloned().unwrap_or_default()
            }
        };
        // A secret ballot carries its tracker (16 characters at least).
        let tracker = match &self.roll {
            Some(roll) if roll.secret => format!(r#","tracker":"bench-tracker-{k:08}""#),
            _ => String::new(),
        };
        let body = match self.election {
            None => {
                let choice = if for_ballot(k) { "for" } else { "against" };
                format!(r#"{{"voter":"{voter}","choice":"{choice}"{tracker}}}"#)
            }
            Some(n) => format!(
                r#"{{"voter":"{voter}","options":[{}]{tracker}}}"#,
                candidate(k, n)
            ),
        };
        let resp = self
            .http
            .post(format!(
                "{}/api/sessions/{session}/votes",
                self.node(k as usize).base
            ))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await;
        match resp {
            Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
            _ => false,
        }
    }
}

/// One ballot in three against, the rest for: a tally that is easy to check.
fn for_ballot(k: u64) -> bool {
    !k.is_multiple_of(3)
}

/// How many of ballots 1..=n are for.
pub fn expected_for(ballots: u64) -> u64 {
    ballots - ballots / 3
}

/// The candidate ballot `k` chooses among `n`: each in turn.
fn candidate(k: u64, n: u16) -> u64 {
    (k - 1) % u64::from(n.max(1))
}

/// How many of ballots 1..=`ballots` choose each of `n` candidates.
pub fn expected_votes(ballots: u64, n: u16) -> Vec<u64> {
    let mut votes = vec![0; usize::from(n.max(1))];
    for k in 1..=ballots {
        votes[candidate(k, n) as usize] += 1;
    }
    votes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_split_is_one_against_in_three() {
        assert_eq!(expected_for(3), 2);
        assert_eq!(expected_for(4), 3);
        assert_eq!(expected_for(1000), 667);
        assert_eq!((1..=1000).filter(|&k| for_ballot(k)).count(), 667);
    }

    #[test]
    fn members_weigh_one_two_three_in_turn() {
        assert_eq!((1..=6).map(weight).collect::<Vec<_>>(), [1, 2, 3, 1, 2, 3]);
    }

    #[test]
    fn candidates_take_turns() {
        assert_eq!(expected_votes(7, 3), vec![3, 2, 2]);
        assert_eq!(expected_votes(0, 2), vec![0, 0]);
    }
}
