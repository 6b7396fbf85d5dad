//! The audit bundle of a session: its log's entries, every signed head,
//! the roll as the vote opened, and the result — everything `votehub
//! verify` needs, offline. docs/AUDIT.md describes every field.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::core::audit::entry::RollMember;
use crate::core::audit::signing::HeadWire;
use crate::core::audit::tree;
use crate::core::rules::Outcome;

pub const FORMAT: &str = "votehub-audit/1";

/// The final head, with the key that signed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalHead {
    pub size: u64,
    pub root: String,
    pub signature: String,
    pub public_key: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bundle {
    pub format: String,
    pub session: Uuid,
    /// The roll as it was when the vote opened, sorted by name (empty for
    /// an open session).
    pub roll: Vec<RollMember>,
    /// The log's entries, in order: each hashes (as RFC 8785 canonical
    /// JSON) to its leaf.
    pub entries: Vec<serde_json::Value>,
    /// Every head the hub signed for this log, oldest first.
    pub heads: Vec<HeadWire>,
    pub head: FinalHead,
    pub result: Option<Outcome>,
    pub tally: serde_json::Value,
}

/// A session's proofs, as `GET /api/sessions/{id}/proof` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proof {
    pub index: u64,
    pub size: u64,
    pub inclusion: Vec<String>,
    pub consistency: Vec<String>,
    pub head: HeadWire,
}

/// Why a proof cannot be given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProofError {
    NoLeaf,
    NoSize,
}

/// The inclusion proof of leaf `index` in the tree of every leaf, and the
/// consistency proof from the tree of the first `from` leaves to it.
pub fn prove(
    tree: &tree::Levels,
    head: &HeadWire,
    index: u64,
    from: Option<u64>,
) -> Result<Proof, ProofError> {
    let size = tree.len();
    let i = usize::try_from(index).map_err(|_| ProofError::NoLeaf)?;
    let inclusion = tree.inclusion_proof(i, size).ok_or(ProofError::NoLeaf)?;
    let consistency = match from {
        None => Vec::new(),
        Some(m) => {
            let m = usize::try_from(m).map_err(|_| ProofError::NoSize)?;
            tree.consistency_proof(m, size).ok_or(ProofError::NoSize)?
        }
    };
    Ok(Proof {
        index,
        size: size as u64,
        inclusion: inclusion.iter().map(hex::encode).collect(),
        consistency: consistency.iter().map(hex::encode).collect(),
        head: head.clone(),
    })
}
