//! Results anyone can check: each session's append-only log as an RFC 9162
//! tree (`tree`), its entries in RFC 8785 canonical JSON (`entry`), heads
//! signed with the hub's Ed25519 key (`signing`), the audit bundle
//! (`bundle`) and the offline verifier (`verify`). docs/AUDIT.md gives the
//! exact bytes.

pub mod bundle;
pub mod entry;
pub mod signing;
pub mod tree;
pub mod verify;
