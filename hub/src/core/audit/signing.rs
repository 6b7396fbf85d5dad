//! The hub's Ed25519 key and what it signs: each tree head, as the exact
//! bytes docs/AUDIT.md gives — the canonical JSON of
//! `{"root": hex, "session": uuid, "size": n, "type": "votehub-tree-head/1"}`.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::core::audit::tree::Hash;

/// What a head's signature covers.
pub const HEAD_TYPE: &str = "votehub-tree-head/1";

/// A tree head and the hub's signature of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedHead {
    pub size: u64,
    pub root: Hash,
    pub signature: [u8; 64],
}

/// A signed head on the wire: hashes and signatures in lowercase hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadWire {
    pub size: u64,
    pub root: String,
    pub signature: String,
}

impl From<&SignedHead> for HeadWire {
    fn from(h: &SignedHead) -> HeadWire {
        HeadWire {
            size: h.size,
            root: lower_hex(&h.root),
            signature: lower_hex(&h.signature),
        }
    }
}

/// Lowercase hex through a table: every receipt carries three hashes, and
/// `hex::encode`'s character iterator showed in the writer's profile.
pub fn lower_hex(bytes: &[u8]) -> String {
    let mut out = vec![0u8; bytes.len() * 2];
    match hex::encode_to_slice(bytes, &mut out) {
        Ok(()) => String::from_utf8(out).unwrap_or_default(),
        Err(_) => hex::encode(bytes),
    }
}

impl HeadWire {
    pub fn parse(&self) -> Option<SignedHead> {
        let mut root = [0u8; 32];
        hex::decode_to_slice(&self.root, &mut root).ok()?;
        let mut signature = [0u8; 64];
        hex::decode_to_slice(&self.signature, &mut signature).ok()?;
        Some(SignedHead {
            size: self.size,
            root,
            signature,
        })
    }
}

/// The bytes signed for the head of `session`'s tree of `size` leaves: the
/// RFC 8785 canonical JSON of `{"type", "session", "size", "root"}`. Every
/// commit signs one, so it is written directly rather than through the
/// canonicaliser: the members in sorted order, and nothing in them that
/// JSON escapes (hex, a UUID, an integer, a constant). A test holds it
/// equal to the canonicaliser's.
pub fn head_bytes(session: Uuid, size: u64, root: &Hash) -> Vec<u8> {
    format!(
        r#"{{"root":"{}","session":"{}","size":{},"type":"{}"}}"#,
        hex::encode(root),
        session.as_hyphenated(),
        size,
        HEAD_TYPE
    )
    .into_bytes()
}

/// A short, readable fingerprint of some bytes: the first 8 bytes of their
/// SHA-256, as four groups of four hex digits (`3f2a 91bc 07de 44f1`).
pub fn fingerprint(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let hex = hex::encode(&digest[..8]);
    hex.as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The shorter fingerprint of a head shown on screens: its root's first 4
/// bytes (`5dc9 da79`).
pub fn head_fingerprint(root: &Hash) -> String {
    let hex = hex::encode(&root[..4]);
    format!("{} {}", &hex[..4], &hex[4..])
}

/// The hub's signing key.
#[derive(Clone)]
pub struct Key {
    signing: SigningKey,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("public", &self.public_hex())
            .finish_non_exhaustive()
    }
}

impl Key {
    /// A new key from the operating system's randomness.
    pub fn generate() -> Key {
        let seed: [u8; 32] = rand::rng().random();
        Key::from_seed(&seed)
    }

    pub fn from_seed(seed: &[u8; 32]) -> Key {
        Key {
            signing: SigningKey::from_bytes(seed),
        }
    }

    /// The 32 secret bytes, to keep (never to show).
    pub fn seed(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    pub fn public(&self) -> [u8; 32] {
        self.signing.verifying_key().to_bytes()
    }

    pub fn public_hex(&self) -> String {
        hex::encode(self.public())
    }

    pub fn fingerprint(&self) -> String {
        fingerprint(&self.public())
    }

    pub fn sign_head(&self, session: Uuid, size: u64, root: Hash) -> SignedHead {
        let signature = self.signing.sign(&head_bytes(session, size, &root));
        SignedHead {
            size,
            root,
            signature: signature.to_bytes(),
        }
    }
}

/// Whether `head` of `session` is signed by `public`.
pub fn verify_head(public: &[u8; 32], session: Uuid, head: &SignedHead) -> bool {
    let Ok(key) = VerifyingKey::from_bytes(public) else {
        return false;
    };
    let signature = Signature::from_bytes(&head.signature);
    key.verify(&head_bytes(session, head.size, &head.root), &signature)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::audit::entry::canonical;

    #[test]
    fn the_signed_bytes_are_the_canonicalisers() {
        #[derive(Serialize)]
        struct Head<'a> {
            r#type: &'a str,
            session: Uuid,
            size: u64,
            root: String,
        }
        for (size, root) in [
            (0, [0u8; 32]),
            (1, [0xff; 32]),
            (u64::from(u32::MAX), [7; 32]),
        ] {
            let session = Uuid::new_v4();
            let canonical = canonical(&Head {
                r#type: HEAD_TYPE,
                session,
                size,
                root: hex::encode(root),
            });
            assert_eq!(head_bytes(session, size, &root), canonical);
        }
    }

    #[test]
    fn the_signed_bytes_are_canonical_json() {
        let session = Uuid::nil();
        let bytes = head_bytes(session, 3, &[0xab; 32]);
        assert_eq!(
            String::from_utf8(bytes).expect("utf-8"),
            format!(
                r#"{{"root":"{}","session":"00000000-0000-0000-0000-000000000000","size":3,"type":"votehub-tree-head/1"}}"#,
                "ab".repeat(32)
            )
        );
    }

    /// Every value of docs/AUDIT.md's examples, computed again: a reader
    /// who writes a verifier from that page alone gets these bytes.
    #[test]
    fn the_examples_of_audit_md_hold() {
        use crate::core::audit::entry::{BallotEntry, BallotWire, Entry};
        use crate::core::audit::tree::{Frontier, leaf_hash};
        use crate::core::tally::Choice;
        let page = include_str!("../../../../docs/AUDIT.md");
        let entry = Entry::Ballot(BallotEntry {
            voter: Some("Zoé Martin".into()),
            tracker: None,
            ballot: BallotWire::Choice {
                choice: Choice::For,
            },
            weight: 3,
            by: Some("Ann".into()),
            at: Some("2026-11-29T10:00:00.000Z".into()),
        });
        let (json, leaf) = entry.leaf();
        let key = Key::from_seed(&[1; 32]);
        let session = Uuid::parse_str("6f1c1f5e-8a43-4c4e-9a51-3d0f5f9f2a10").expect("uuid");
        let mut tree = Frontier::default();
        tree.push(leaf);
        tree.push(leaf_hash(br#"{"type":"opened","at":"x"}"#));
        let root = tree.root();
        let signed = String::from_utf8(head_bytes(session, 2, &root)).expect("utf-8");
        let head = key.sign_head(session, 2, root);
        for value in [
            json.clone(),
            hex::encode(json.as_bytes()),
            hex::encode(leaf),
            hex::encode(root),
            signed,
            hex::encode(head.signature),
            key.public_hex(),
            key.fingerprint(),
        ] {
            assert!(page.contains(&value), "docs/AUDIT.md lacks {value}");
        }
    }

    #[test]
    fn a_head_verifies_with_its_key_only() {
        let key = Key::from_seed(&[7; 32]);
        let other = Key::from_seed(&[8; 32]);
        let session = Uuid::new_v4();
        let head = key.sign_head(session, 5, [1; 32]);
        assert!(verify_head(&key.public(), session, &head));
        assert!(!verify_head(&other.public(), session, &head));
        assert!(!verify_head(&key.public(), Uuid::new_v4(), &head));
        let moved = SignedHead { size: 6, ..head };
        assert!(!verify_head(&key.public(), session, &moved));
        let wire = HeadWire::from(&head);
        assert_eq!(wire.parse(), Some(head));
        assert_eq!(key.fingerprint().len(), 19);
        assert_eq!(
            head_fingerprint(&[
                0x5d, 0xc9, 0xda, 0x79, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                0, 0, 0, 0, 0, 0, 0, 0
            ]),
            "5dc9 da79"
        );
    }
}
