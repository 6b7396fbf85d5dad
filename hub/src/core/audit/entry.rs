//! The entries of a session's log, as they are hashed into its tree: serde
//! types whose RFC 8785 canonical JSON is the leaf's bytes. They name roll
//! members by name, open voters by a per-session pseudonym, secret ballots
//! by their tracker — never by a code.

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

use crate::core::audit::tree::{Hash, leaf_hash};
use crate::core::rules::{Method, Outcome, Presence, Rule};
use crate::core::session::{Electorate, KindName, Secrecy, SessionKind, SessionMeta};
use crate::core::tally::{Ballot, BallotInput, Choice, Scale};

/// One leaf of a session's log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
// (No `deny_unknown_fields` on types with flattened parts: serde cannot
// have both. An entry with a field added would not hash to its leaf.)
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Entry {
    /// The session's settings, fixed when it opens.
    Created(Created),
    Opened {
        at: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        closes_at: Option<String>,
    },
    Ballot(BallotEntry),
    /// A roll member added or changed while the vote is open (a name, a
    /// weight, groups, a proxy given or taken back).
    Member(MemberEntry),
    Extended {
        closes_at: String,
    },
    /// A secret vote's members who voted, by name, apart from the ballots.
    Voted {
        members: Vec<VotedMember>,
    },
    Closed(ClosedEntry),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Created {
    pub session: Uuid,
    pub at: String,
    pub title: String,
    pub description: String,
    pub kind: KindName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<Scale>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seats: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<Method>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u16>,
    pub rule: Rule,
    pub electorate: Electorate,
    pub secrecy: Secrecy,
    /// Roll sessions: proxies one member may hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_proxies: Option<u64>,
    /// Roll sessions: SHA-256 of the canonical JSON of the bundle's `roll`
    /// (the roll as it was when the vote opened).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roll: Option<String>,
}

/// A ballot as the API takes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BallotWire {
    Choice { choice: Choice },
    Grade { grade: i8 },
    Options { options: Vec<u16> },
    Marks { marks: BTreeMap<String, Choice> },
}

impl BallotWire {
    pub fn of(ballot: &Ballot) -> BallotWire {
        match ballot {
            Ballot::Choice(c) => BallotWire::Choice { choice: *c },
            Ballot::Grade(g) => BallotWire::Grade { grade: *g },
            Ballot::Selection(ids) => BallotWire::Options {
                options: ids.clone(),
            },
            Ballot::Approval(marks) => BallotWire::Marks {
                marks: marks
                    .iter()
                    .enumerate()
                    .map(|(i, m)| (i.to_string(), *m))
                    .collect(),
            },
        }
    }

    /// The ballot as a client would send it, to be checked against the
    /// session like any ballot.
    pub fn input(&self) -> BallotInput {
        match self {
            BallotWire::Choice { choice } => BallotInput::Choice(*choice),
            BallotWire::Grade { grade } => BallotInput::Grade(i64::from(*grade)),
            BallotWire::Options { options } => {
                BallotInput::Options(options.iter().map(|&o| u64::from(o)).collect())
            }
            BallotWire::Marks { marks } => BallotInput::Marks(
                marks
                    .iter()
                    .map(|(id, m)| (id.parse().unwrap_or(u64::MAX), *m))
                    .collect(),
            ),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BallotEntry {
    /// The member's name (roll) or the voter's pseudonym (open sessions);
    /// absent from a secret ballot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voter: Option<String>,
    /// A secret ballot's tracker, chosen by the voter's device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracker: Option<String>,
    #[serde(flatten)]
    pub ballot: BallotWire,
    pub weight: u64,
    /// The member who cast it by proxy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// When it was cast (not for secret ballots).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
}

/// A member of the roll as the bundle lists it, and as `member` entries
/// change it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollMember {
    pub name: String,
    pub weight: u64,
    pub groups: Vec<String>,
    /// The name of the member who holds their proxy.
    pub proxy: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberEntry {
    #[serde(flatten)]
    pub member: RollMember,
    /// Their name before, when it changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub was: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VotedMember {
    pub name: String,
    /// The weight their ballot counted with.
    pub weight: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClosedEntry {
    pub at: String,
    pub result: Outcome,
    pub tally: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elected: Option<Vec<u16>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tied: Option<Vec<u16>>,
    /// `quorum_present` rules: the weight present or represented, and the
    /// roll's, as the hub counted them at the close.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence: Option<PresenceWire>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresenceWire {
    pub weight: u64,
    pub total: u64,
}

impl From<Presence> for PresenceWire {
    fn from(p: Presence) -> PresenceWire {
        PresenceWire {
            weight: p.weight,
            total: p.total,
        }
    }
}

impl From<PresenceWire> for Presence {
    fn from(p: PresenceWire) -> Presence {
        Presence {
            weight: p.weight,
            total: p.total,
        }
    }
}

/// The bytes hashed into the tree: the entry's RFC 8785 canonical JSON.
pub fn canonical(value: &impl Serialize) -> Vec<u8> {
    // Every type here serialises (no map with non-string keys, no NaN:
    // rules refuse them); an empty object stands for the impossible.
    serde_json_canonicalizer::to_vec(value).unwrap_or_else(|_| b"{}".to_vec())
}

/// The largest integer RFC 8785 writes as plain digits (2^53): beyond it
/// JavaScript numbers, and so the canonical form, lose digits.
const EXACT_INTEGER: u64 = 1 << 53;

/// A ballot entry's canonical JSON, written directly: every ballot passes
/// here, and the generic canonicaliser (which buffers and sorts each
/// object's members) took 1.4 µs of the writer's time per ballot against
/// 0.1 µs for this (docs/BENCHMARKS.md). The members are written in RFC
/// 8785 order — keys sorted, and these keys are ASCII, so UTF-16 order is
/// byte order — and serde_json's strings and integers are RFC 8785's.
/// `None` for a weight beyond 2^53, left to the canonicaliser; the property
/// test below holds this equal to it for every ballot entry.
fn ballot_canonical(b: &BallotEntry) -> Option<Vec<u8>> {
    use std::io::Write as _;
    if b.weight > EXACT_INTEGER {
        return None;
    }
    fn text(out: &mut Vec<u8>, key: &str, value: &str) -> Option<()> {
        write!(out, "\"{key}\":").ok()?;
        serde_json::to_writer(&mut *out, value).ok()
    }
    let mut out = Vec::with_capacity(160);
    out.push(b'{');
    if let Some(at) = &b.at {
        text(&mut out, "at", at)?;
        out.push(b',');
    }
    if let Some(by) = &b.by {
        text(&mut out, "by", by)?;
        out.push(b',');
    }
    match &b.ballot {
        BallotWire::Choice { choice } => text(&mut out, "choice", choice.as_str())?,
        BallotWire::Grade { grade } => write!(out, "\"grade\":{grade}").ok()?,
        BallotWire::Marks { marks } => {
            out.extend_from_slice(b"\"marks\":{");
            for (i, (id, mark)) in marks.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut out, id).ok()?;
                out.push(b':');
                serde_json::to_writer(&mut out, mark.as_str()).ok()?;
            }
            out.push(b'}');
        }
        BallotWire::Options { options } => {
            out.extend_from_slice(b"\"options\":");
            serde_json::to_writer(&mut out, options).ok()?;
        }
    }
    out.push(b',');
    if let Some(tracker) = &b.tracker {
        text(&mut out, "tracker", tracker)?;
        out.push(b',');
    }
    out.extend_from_slice(b"\"type\":\"ballot\",");
    if let Some(voter) = &b.voter {
        text(&mut out, "voter", voter)?;
        out.push(b',');
    }
    write!(out, "\"weight\":{}}}", b.weight).ok()?;
    Some(out)
}

impl Entry {
    /// The canonical JSON of this entry: the bytes its leaf hashes.
    pub fn canonical(&self) -> Vec<u8> {
        match self {
            Entry::Ballot(b) => ballot_canonical(b).unwrap_or_else(|| canonical(self)),
            _ => canonical(self),
        }
    }

    /// The canonical JSON and the leaf hash of this entry.
    pub fn leaf(&self) -> (String, Hash) {
        let bytes = self.canonical();
        let hash = leaf_hash(&bytes);
        (String::from_utf8(bytes).unwrap_or_default(), hash)
    }

    /// The `created` entry of a session, as it opens.
    pub fn created(meta: &SessionMeta, max_proxies: u64, roll: Option<&[RollMember]>) -> Entry {
        let mut created = Created {
            session: meta.id,
            at: meta.created_at.to_rfc3339(),
            title: meta.title.clone(),
            description: meta.description.clone(),
            kind: KindName::Motion,
            scale: None,
            options: None,
            seats: None,
            method: None,
            min: None,
            max: None,
            rule: meta.rule.clone(),
            electorate: meta.electorate,
            secrecy: meta.secrecy,
            max_proxies: None,
            roll: None,
        };
        match &meta.kind {
            SessionKind::Motion { scale } => created.scale = Some(*scale),
            SessionKind::Election(e) => {
                created.kind = KindName::Election;
                created.options = Some(e.options.clone());
                created.seats = Some(e.seats);
                created.method = Some(e.method);
                if e.method == Method::Selection {
                    created.min = Some(e.min);
                    created.max = Some(e.max);
                }
            }
        }
        if meta.electorate == Electorate::Roll {
            created.max_proxies = Some(max_proxies);
            created.roll = roll.map(roll_hash);
        }
        Entry::Created(created)
    }
}

/// SHA-256 (hex) of a roll's canonical JSON.
pub fn roll_hash(roll: &[RollMember]) -> String {
    use sha2::Digest;
    hex::encode(Sha256::digest(canonical(&roll)))
}

/// An open session's voter as its log names them: the first 16 bytes of
/// HMAC-SHA256 under the session's own key, in hex — the same voter gets
/// the same pseudonym within that session only, and no one without the key
/// can tell which id it stands for.
pub fn pseudonym(key: &[u8; 32], voter: &str) -> String {
    Pseudonyms::new(key).of(voter)
}

/// A session's pseudonyms: the HMAC keyed once, so that each ballot hashes
/// only its voter's id (keying hashes two blocks more).
#[derive(Clone)]
pub struct Pseudonyms(Hmac<Sha256>);

impl std::fmt::Debug for Pseudonyms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pseudonyms(..)")
    }
}

impl Pseudonyms {
    pub fn new(key: &[u8; 32]) -> Pseudonyms {
        // HMAC pads a key shorter than its block (64 bytes) with zeros:
        // the padded key is the same key, and one of the block's length
        // leaves no error to handle.
        let mut block = [0u8; 64];
        block[..32].copy_from_slice(key);
        Pseudonyms(<Hmac<Sha256> as hmac::digest::KeyInit>::new(&block.into()))
    }

    pub fn of(&self, voter: &str) -> String {
        let mut mac = self.0.clone();
        mac.update(voter.as_bytes());
        let tag = mac.finalize().into_bytes();
        // "v-" and 16 bytes in hex, written in place: one allocation a
        // ballot.
        let mut out = [0u8; 34];
        out[..2].copy_from_slice(b"v-");
        match hex::encode_to_slice(&tag[..16], &mut out[2..]) {
            Ok(()) => String::from_utf8_lossy(&out).into_owned(),
            Err(_) => format!("v-{}", hex::encode(&tag[..16])),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ballot_entry_is_canonical_json() {
        let e = Entry::Ballot(BallotEntry {
            voter: Some("Zoé".into()),
            tracker: None,
            ballot: BallotWire::Choice {
                choice: Choice::Against,
            },
            weight: 3,
            by: Some("Ann".into()),
            at: Some("2026-11-29T10:00:00.000Z".into()),
        });
        let (json, leaf) = e.leaf();
        assert_eq!(
            json,
            r#"{"at":"2026-11-29T10:00:00.000Z","by":"Ann","choice":"against","type":"ballot","voter":"Zoé","weight":3}"#
        );
        assert_eq!(leaf, leaf_hash(json.as_bytes()));
        let back: Entry = serde_json::from_str(&json).expect("reads back");
        assert_eq!(back, e);
    }

    #[test]
    fn marks_and_options_read_back_as_ballots() {
        for b in [
            Ballot::Selection(vec![0, 3]),
            Ballot::Approval(vec![Choice::For, Choice::Abstain, Choice::Against]),
            Ballot::Grade(-2),
        ] {
            let wire = BallotWire::of(&b);
            let text = String::from_utf8(canonical(&wire)).expect("utf-8");
            let back: BallotWire = serde_json::from_str(&text).expect("json");
            assert_eq!(back, wire, "{text}");
        }
    }

    mod written_directly {
        use super::*;
        use proptest::prelude::*;

        fn choice() -> impl Strategy<Value = Choice> {
            prop_oneof![
                Just(Choice::For),
                Just(Choice::Against),
                Just(Choice::Abstain)
            ]
        }

        fn ballot() -> impl Strategy<Value = BallotWire> {
            prop_oneof![
                choice().prop_map(|choice| BallotWire::Choice { choice }),
                any::<i8>().prop_map(|grade| BallotWire::Grade { grade }),
                proptest::collection::vec(any::<u16>(), 0..6)
                    .prop_map(|options| BallotWire::Options { options }),
                proptest::collection::btree_map("[0-9]{1,3}", choice(), 0..12)
                    .prop_map(|marks| BallotWire::Marks { marks }),
            ]
        }

        // Any text: quotes, backslashes, control characters, non-ASCII
        // and characters beyond the BMP, where escaping rules differ most.
        fn text() -> impl Strategy<Value = Option<String>> {
            proptest::option::of(prop_oneof![
                any::<String>(),
                "[\\x00-\\x1f\"\\\\\u{7f}\u{2028}\u{e9}\u{1f5f3}a-z]{0,12}",
            ])
        }

        proptest! {
            #[test]
            fn equals_the_canonicaliser(
                voter in text(),
                tracker in text(),
                ballot in ballot(),
                weight in prop_oneof![0u64..4, 0..=EXACT_INTEGER, any::<u64>()],
                by in text(),
                at in text(),
            ) {
                let entry = Entry::Ballot(BallotEntry { voter, tracker, ballot, weight, by, at });
                prop_assert_eq!(
                    String::from_utf8(entry.canonical()).expect("utf-8"),
                    String::from_utf8(canonical(&entry)).expect("utf-8")
                );
            }
        }
    }

    #[test]
    fn pseudonyms_are_stable_per_session_and_differ_across() {
        let (a, b) = ([1u8; 32], [2u8; 32]);
        assert_eq!(pseudonym(&a, "p-123"), pseudonym(&a, "p-123"));
        assert_ne!(pseudonym(&a, "p-123"), pseudonym(&b, "p-123"));
        assert_ne!(pseudonym(&a, "p-123"), pseudonym(&a, "p-124"));
        assert_eq!(pseudonym(&a, "x").len(), 2 + 32);
        // The key padded to the block is HMAC's own padding.
        let mut mac = Hmac::<Sha256>::new_from_slice(&a).expect("any length");
        mac.update(b"p-123");
        let tag = mac.finalize().into_bytes();
        assert_eq!(
            pseudonym(&a, "p-123"),
            format!("v-{}", hex::encode(&tag[..16]))
        );
    }
}
