//! The Merkle tree of RFC 9162 (RFC 6962) over SHA-256: leaf and node
//! hashes, the tree head of n leaves, inclusion proofs (§2.1.3) and
//! consistency proofs (§2.1.4), how to check them, and a compact frontier
//! that gives the head of a growing log in O(log n) per leaf. Pure: no IO.
//! Tested against the published vectors of transparency-dev/merkle.

use sha2::{Digest, Sha256};

pub type Hash = [u8; 32];

/// SHA-256(0x00 ‖ bytes).
pub fn leaf_hash(bytes: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(bytes);
    h.finalize().into()
}

/// SHA-256(0x01 ‖ left ‖ right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The hash of the empty tree: SHA-256 of nothing.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two strictly smaller than `n` (n ≥ 2).
fn split(n: usize) -> usize {
    let mut k = 1;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

/// MTH(D[n]): the head of the tree over these leaf hashes.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// Every complete subtree's head, level by level: `levels[0]` holds the
/// leaves, `levels[k][i]` the head of leaves `i·2^k .. (i+1)·2^k`. A leaf
/// costs one hash per subtree it completes (one on average; none when
/// given the heads the writer's `Frontier` already hashed); the head of
/// any range the RFC's recursion asks for is then O(log n), and a proof
/// O(log² n) instead of O(n) — at a close, every phone asks for one.
#[derive(Debug, Clone, Default)]
pub struct Levels {
    levels: Vec<Vec<Hash>>,
}

impl Levels {
    pub fn of(leaves: &[Hash]) -> Levels {
        let mut l = Levels::default();
        for leaf in leaves {
            l.push(*leaf);
        }
        l
    }

    pub fn push(&mut self, leaf: Hash) {
        self.push_hashed(leaf, &[]);
    }

    /// `push`, given the heads of the subtrees the leaf completes, smallest
    /// first, as the writer's `Frontier` hashed them while appending: the
    /// readers' tree then hashes nothing twice. A head not given is hashed
    /// here.
    pub fn push_hashed(&mut self, leaf: Hash, completed: &[Hash]) {
        let mut node = leaf;
        let mut k = 0;
        loop {
            if self.levels.len() == k {
                self.levels.push(Vec::new());
            }
            let level = &mut self.levels[k];
            level.push(node);
            let n = level.len();
            if n % 2 == 1 {
                return;
            }
            node = match completed.get(k) {
                Some(head) => {
                    // Debug builds (every test) check that the heads
                    // given are these leaves' own.
                    debug_assert_eq!(*head, node_hash(&level[n - 2], &level[n - 1]));
                    *head
                }
                None => node_hash(&level[n - 2], &level[n - 1]),
            };
            k += 1;
        }
    }

    /// How many leaves.
    pub fn len(&self) -> usize {
        self.levels.first().map_or(0, Vec::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// MTH of the `n` leaves from `start`. In the RFC's recursion every
    /// left part is a complete subtree aligned on its size: read, not hashed.
    fn mth(&self, start: usize, n: usize) -> Hash {
        match n {
            0 => empty_root(),
            1 => self.levels[0][start],
            _ if n.is_power_of_two() && start.is_multiple_of(n) => {
                self.levels[n.trailing_zeros() as usize][start / n]
            }
            _ => {
                let k = split(n);
                node_hash(&self.mth(start, k), &self.mth(start + k, n - k))
            }
        }
    }

    /// PATH(m, D[n]): the audit path of leaf `index` in the tree of the
    /// first `size` leaves. `None` when the leaf or the size does not exist.
    pub fn inclusion_proof(&self, index: usize, size: usize) -> Option<Vec<Hash>> {
        if size > self.len() || index >= size {
            return None;
        }
        let mut proof = Vec::new();
        self.path(index, 0, size, &mut proof);
        Some(proof)
    }

    fn path(&self, m: usize, start: usize, n: usize, out: &mut Vec<Hash>) {
        if n <= 1 {
            return;
        }
        let k = split(n);
        if m < k {
            self.path(m, start, k, out);
            out.push(self.mth(start + k, n - k));
        } else {
            self.path(m - k, start + k, n - k, out);
            out.push(self.mth(start, k));
        }
    }

    /// PROOF(m, D[n]): that the tree of the first `n` leaves extends the
    /// one of the first `m`. `None` when the sizes do not exist, m > n, or
    /// m = 0 < n (RFC 9162 proves nothing from the empty tree).
    pub fn consistency_proof(&self, m: usize, n: usize) -> Option<Vec<Hash>> {
        if n > self.len() || m > n || (m == 0 && n > 0) {
            return None;
        }
        let mut proof = Vec::new();
        if m > 0 {
            self.subproof(m, 0, n, true, &mut proof);
        }
        Some(proof)
    }

    fn subproof(&self, m: usize, start: usize, n: usize, whole: bool, out: &mut Vec<Hash>) {
        if m == n {
            if !whole {
                out.push(self.mth(start, n));
            }
            return;
        }
        let k = split(n);
        if m <= k {
            self.subproof(m, start, k, whole, out);
            out.push(self.mth(start + k, n - k));
        } else {
            self.subproof(m - k, start + k, n - k, false, out);
            out.push(self.mth(start, k));
        }
    }
}

/// PATH(m, D[n]) over a list of leaf hashes (see `Levels`).
pub fn inclusion_proof(leaves: &[Hash], index: usize, size: usize) -> Option<Vec<Hash>> {
    Levels::of(leaves.get(..size)?).inclusion_proof(index, size)
}

/// PROOF(m, D[n]) over a list of leaf hashes (see `Levels`).
pub fn consistency_proof(leaves: &[Hash], m: usize, n: usize) -> Option<Vec<Hash>> {
    Levels::of(leaves.get(..n)?).consistency_proof(m, n)
}

/// RFC 9162 §2.1.3.2: whether `proof` shows leaf `leaf` at `index` in the
/// tree of `size` leaves whose head is `root`.
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut f_n, mut s_n) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s_n == 0 {
            return false;
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    s_n == 0 && r == *root
}

/// RFC 9162 §2.1.4.2: whether `proof` shows that the tree of `size2`
/// leaves with head `root2` extends the tree of `size1` leaves with head
/// `root1`.
pub fn verify_consistency(
    size1: u64,
    size2: u64,
    root1: &Hash,
    root2: &Hash,
    proof: &[Hash],
) -> bool {
    if size1 > size2 {
        return false;
    }
    if size1 == size2 {
        // The empty tree has one head: the hash of nothing.
        let valid = size1 > 0 || *root1 == empty_root();
        return valid && proof.is_empty() && root1 == root2;
    }
    if size1 == 0 {
        // RFC 9162 proves consistency for 0 < m < n only: from the empty
        // tree there is nothing a proof could show.
        return false;
    }
    let mut path: Vec<Hash> = proof.to_vec();
    if size1.is_power_of_two() {
        path.insert(0, *root1);
    }
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    let (mut f_n, mut s_n) = (size1 - 1, size2 - 1);
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    let (mut f_r, mut s_r) = (*first, *first);
    for c in rest {
        if s_n == 0 {
            return false;
        }
        if f_n & 1 == 1 || f_n == s_n {
            f_r = node_hash(c, &f_r);
            s_r = node_hash(c, &s_r);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            s_r = node_hash(&s_r, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    f_r == *root1 && s_r == *root2 && s_n == 0
}

/// The heads of the complete subtrees a growing log is made of (largest
/// first): enough to append a leaf and to give the head, each in
/// O(log n), without keeping the leaves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    /// (leaves under it, its head), sizes strictly decreasing powers of two.
    subtrees: Vec<(u64, Hash)>,
    size: u64,
}

impl Frontier {
    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn push(&mut self, leaf: Hash) {
        self.push_completing(leaf, |_| {});
    }

    /// `push`, handing `completed` the head of each subtree the leaf
    /// completes, smallest first (what `Levels::push_hashed` takes).
    pub fn push_completing(&mut self, leaf: Hash, mut completed: impl FnMut(Hash)) {
        let mut node = (1u64, leaf);
        // Two complete subtrees of one size merge into one of twice it.
        while let Some(&(size, hash)) = self.subtrees.last() {
            if size != node.0 {
                break;
            }
            self.subtrees.pop();
            node = (size * 2, node_hash(&hash, &node.1));
            completed(node.1);
        }
        self.subtrees.push(node);
        self.size += 1;
    }

    /// The head of the tree over every leaf pushed so far.
    pub fn root(&self) -> Hash {
        let mut iter = self.subtrees.iter().rev();
        let Some(&(_, last)) = iter.next() else {
            return empty_root();
        };
        iter.fold(last, |right, (_, left)| node_hash(left, &right))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The RFC's definitions read literally, over slices: the oracle the
    /// levels must agree with.
    fn path(m: usize, d: &[Hash], out: &mut Vec<Hash>) {
        if d.len() <= 1 {
            return;
        }
        let k = split(d.len());
        if m < k {
            path(m, &d[..k], out);
            out.push(root(&d[k..]));
        } else {
            path(m - k, &d[k..], out);
            out.push(root(&d[..k]));
        }
    }

    fn subproof(m: usize, d: &[Hash], whole: bool, out: &mut Vec<Hash>) {
        if m == d.len() {
            if !whole {
                out.push(root(d));
            }
            return;
        }
        let k = split(d.len());
        if m <= k {
            subproof(m, &d[..k], whole, out);
            out.push(root(&d[k..]));
        } else {
            subproof(m - k, &d[k..], false, out);
            out.push(root(&d[..k]));
        }
    }

    #[test]
    fn levels_prove_what_the_definitions_say_for_every_size_and_leaf() {
        let all: Vec<Hash> = (0..40u32).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let mut levels = Levels::default();
        for n in 1..=all.len() {
            levels.push(all[n - 1]);
            assert_eq!(levels.len(), n);
            for m in 0..n {
                let mut want = Vec::new();
                path(m, &all[..n], &mut want);
                assert_eq!(levels.inclusion_proof(m, n), Some(want), "path {m} of {n}");
                for size in 1..=n {
                    let mut want = Vec::new();
                    path(m.min(size - 1), &all[..size], &mut want);
                    assert_eq!(levels.inclusion_proof(m.min(size - 1), size), Some(want));
                }
            }
            // Between any two sizes, also short of all the leaves held.
            for size in 1..=n {
                for m in 1..=size {
                    let mut want = Vec::new();
                    subproof(m, &all[..size], true, &mut want);
                    assert_eq!(
                        levels.consistency_proof(m, size),
                        Some(want),
                        "proof {m} to {size} of {n}"
                    );
                }
            }
            assert_eq!(levels.inclusion_proof(n, n), None);
            assert_eq!(levels.consistency_proof(n + 1, n), None);
            assert_eq!(levels.consistency_proof(0, n), None);
        }
    }

    /// The leaves of RFC 6962's reference tests.
    fn leaves() -> Vec<Hash> {
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

    fn hex32(s: &str) -> Hash {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).expect("hex");
        out
    }

    #[test]
    fn the_reference_hashes() {
        assert_eq!(
            empty_root(),
            hex32("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        );
        assert_eq!(
            leaf_hash(b""),
            hex32("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
        );
        assert_eq!(
            leaf_hash(b"L123456"),
            hex32("395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56")
        );
        assert_eq!(
            root(&leaves()),
            hex32("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")
        );
    }

    #[test]
    fn levels_given_the_frontiers_heads_are_the_levels_of_the_leaves() {
        let all: Vec<Hash> = (0..70u32).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let mut frontier = Frontier::default();
        let mut levels = Levels::default();
        for leaf in &all {
            let mut completed = Vec::new();
            frontier.push_completing(*leaf, |h| completed.push(h));
            levels.push_hashed(*leaf, &completed);
        }
        assert_eq!(levels.levels, Levels::of(&all).levels);
        assert_eq!(levels.mth(0, all.len()), frontier.root());
    }

    #[test]
    fn the_frontier_gives_every_head() {
        let all = leaves();
        let mut f = Frontier::default();
        assert_eq!(f.root(), empty_root());
        for n in 1..=all.len() {
            f.push(all[n - 1]);
            assert_eq!((f.size(), f.root()), (n as u64, root(&all[..n])));
        }
    }

    #[test]
    fn every_proof_of_every_tree_checks() {
        let all: Vec<Hash> = (0u32..40).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        for n in 1..=all.len() {
            let head = root(&all[..n]);
            for i in 0..n {
                let proof = inclusion_proof(&all, i, n).expect("proof");
                assert!(verify_inclusion(i as u64, n as u64, &all[i], &proof, &head));
                let other = leaf_hash(b"another leaf");
                assert!(!verify_inclusion(i as u64, n as u64, &other, &proof, &head));
            }
            assert!(consistency_proof(&all, 0, n).is_none());
            for m in 1..=n {
                let proof = consistency_proof(&all, m, n).expect("proof");
                let old = root(&all[..m]);
                assert!(
                    verify_consistency(m as u64, n as u64, &old, &head, &proof),
                    "{m} → {n}"
                );
                if m > 0 && m < n {
                    assert!(!verify_consistency(m as u64, n as u64, &head, &old, &proof));
                }
            }
        }
        assert!(inclusion_proof(&all, 5, 5).is_none());
        assert!(consistency_proof(&all, 6, 5).is_none());
    }
}
