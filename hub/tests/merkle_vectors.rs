//! The tree checked against published test data: the inclusion and
//! consistency vectors of transparency-dev/merkle (testdata/, Apache-2.0,
//! copied in hub/tests/data/merkle with its licence). Every happy path must
//! verify, and every altered one must fail; where the vector's tree is the
//! reference tree of RFC 6962's tests, our own proofs must equal theirs.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use votehub::core::audit::tree::{
    Hash, consistency_proof, inclusion_proof, leaf_hash, root, verify_consistency, verify_inclusion,
};

fn hash(v: &Value) -> Option<Hash> {
    let bytes = STANDARD.decode(v.as_str()?).ok()?;
    bytes.try_into().ok()
}

/// A root as the vectors give it: the "additional" ones use short
/// stand-ins ("don't care") where only equality matters, which a digest of
/// them keeps.
fn root_of(v: &Value) -> Option<Hash> {
    let bytes = STANDARD.decode(v.as_str()?).ok()?;
    Some(match <[u8; 32]>::try_from(bytes.as_slice()) {
        Ok(h) => h,
        Err(_) => {
            use sha2::Digest;
            sha2::Sha256::digest(&bytes).into()
        }
    })
}

/// A proof's hashes; `None` when one of them is not a 32-byte hash (a
/// malformed proof verifies nothing).
fn hashes(v: &Value) -> Option<Vec<Hash>> {
    match v {
        Value::Null => Some(Vec::new()),
        Value::Array(a) => a.iter().map(hash).collect(),
        _ => None,
    }
}

/// The leaves of RFC 6962's reference tests, whose trees the vectors use.
fn reference_leaves() -> Vec<Hash> {
    let inputs: [&[u8]; 8] = [
        b"",
        b"\x00",
        b"\x10",
        b"\x20\x21",
        b"\x30\x31",
        b"\x40\x41\x42\x43",
        b"\x50\x51\x52\x53\x54\x55\x56\x57",
        b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
    ];
    inputs.iter().map(|i| leaf_hash(i)).collect()
}

fn vectors(kind: &str) -> Vec<(String, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/merkle/testdata")
        .join(kind);
    let mut out = Vec::new();
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("vectors") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let v: Value =
                    serde_json::from_slice(&std::fs::read(&p).expect("read")).expect("json");
                out.push((p.display().to_string(), v));
            }
        }
    }
    assert!(out.len() > 50, "{kind}: {} vectors", out.len());
    out
}

#[test]
fn inclusion_vectors() {
    let leaves = reference_leaves();
    let mut happy = 0;
    for (name, v) in vectors("inclusion") {
        let want_err = v["wantErr"].as_bool().expect("wantErr");
        let (Some(index), Some(size)) = (v["leafIdx"].as_u64(), v["treeSize"].as_u64()) else {
            panic!("{name}")
        };
        let ok = match (hash(&v["leafHash"]), hash(&v["root"]), hashes(&v["proof"])) {
            (Some(leaf), Some(root), Some(proof)) => {
                verify_inclusion(index, size, &leaf, &proof, &root)
            }
            // A missing or malformed hash cannot verify.
            _ => false,
        };
        assert_eq!(ok, !want_err, "{name}: {}", v["desc"]);
        if !want_err {
            happy += 1;
            let (i, n) = (index as usize, size as usize);
            if n <= leaves.len() && hash(&v["root"]) == Some(root(&leaves[..n])) {
                assert_eq!(
                    inclusion_proof(&leaves, i, n).expect("proof"),
                    hashes(&v["proof"]).expect("proof"),
                    "{name}: our proof"
                );
            }
        }
    }
    assert!(happy >= 5);
}

#[test]
fn consistency_vectors() {
    let leaves = reference_leaves();
    let mut happy = 0;
    for (name, v) in vectors("consistency") {
        let want_err = v["wantErr"].as_bool().expect("wantErr");
        let (Some(size1), Some(size2)) = (v["size1"].as_u64(), v["size2"].as_u64()) else {
            panic!("{name}")
        };
        let ok = match (
            root_of(&v["root1"]),
            root_of(&v["root2"]),
            hashes(&v["proof"]),
        ) {
            (Some(r1), Some(r2), Some(proof)) => verify_consistency(size1, size2, &r1, &r2, &proof),
            _ => false,
        };
        assert_eq!(ok, !want_err, "{name}: {}", v["desc"]);
        if !want_err {
            happy += 1;
            let (m, n) = (size1 as usize, size2 as usize);
            if n <= leaves.len() && hash(&v["root2"]) == Some(root(&leaves[..n])) {
                assert_eq!(
                    consistency_proof(&leaves, m, n).expect("proof"),
                    hashes(&v["proof"]).expect("proof"),
                    "{name}: our proof"
                );
            }
        }
    }
    assert!(happy >= 5);
}
