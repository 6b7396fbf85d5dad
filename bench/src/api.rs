//! The target hub's HTTP API, as the load generator uses it.

use std::sync::Arc;

use serde_json::json;

use crate::target::Target;

#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
    pub target: Arc<Target>,
    pub token: String,
    /// Ballots are for an election of this many candidates, instead of a
    /// motion.
    pub election: Option<u16>,
}

impl Api {
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
        match self.election {
            None => json!({ "title": title }),
            Some(n) => json!({
                "title": title,
                "kind": "election",
                "options": (0..n).map(|i| format!("Candidate {i}")).collect::<Vec<_>>(),
                "seats": 1,
            }),
        }
    }

    /// Casts ballot number `k`; true when the hub acknowledged it.
    pub async fn vote(&self, session: &str, k: u64) -> bool {
        let body = match self.election {
            None => {
                let choice = if for_ballot(k) { "for" } else { "against" };
                format!(r#"{{"voter":"b{k}","choice":"{choice}"}}"#)
            }
            Some(n) => format!(r#"{{"voter":"b{k}","options":[{}]}}"#, candidate(k, n)),
        };
        let resp = self
            .http
            .post(format!("{}/api/sessions/{session}/votes", self.target.base))
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
    fn candidates_take_turns() {
        assert_eq!(expected_votes(7, 3), vec![3, 2, 2]);
        assert_eq!(expected_votes(0, 2), vec![0, 0]);
    }
}
