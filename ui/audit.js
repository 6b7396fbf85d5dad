// Checks a ballot's receipt against the session's published log, in the
// voter's own browser: RFC 9162 inclusion and consistency proofs over
// SHA-256, and the hub's Ed25519 signature on each head (docs/AUDIT.md).
// Pages on a plain http:// LAN address have no WebCrypto, so the hashing
// and the signature come from the noble libraries served with the page.
import { ed25519, sha256 } from './vendor/noble.js';

export function hexToBytes(hex) {
  if (typeof hex !== 'string' || hex.length % 2 || /[^0-9a-f]/i.test(hex)) throw new Error('not hex');
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function equal(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function nodeHash(left, right) {
  const buf = new Uint8Array(65);
  buf[0] = 1;
  buf.set(left, 1);
  buf.set(right, 33);
  return sha256(buf);
}

/** RFC 9162 §2.1.3.2. Sizes and indexes as BigInt: JavaScript's bit
 *  operators are 32-bit. */
export function verifyInclusion(index, size, leaf, proof, root) {
  let fn = BigInt(index);
  let sn = BigInt(size) - 1n;
  if (fn > sn) return false;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0n) return false;
    if ((fn & 1n) === 1n || fn === sn) {
      r = nodeHash(p, r);
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return sn === 0n && equal(r, root);
}

/** RFC 9162 §2.1.4.2. */
export function verifyConsistency(size1, size2, root1, root2, proof) {
  const m = BigInt(size1);
  const n = BigInt(size2);
  if (m > n || m === 0n) return false;
  if (m === n) return proof.length === 0 && equal(root1, root2);
  const path = (m & (m - 1n)) === 0n ? [root1, ...proof] : [...proof];
  if (!path.length) return false;
  let fn = m - 1n;
  let sn = n - 1n;
  while ((fn & 1n) === 1n) { fn >>= 1n; sn >>= 1n; }
  let fr = path[0];
  let sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0n) return false;
    if ((fn & 1n) === 1n || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return equal(fr, root1) && equal(sr, root2) && sn === 0n;
}

/** The bytes the hub signs for a head: RFC 8785 canonical JSON, which for
 *  these four members is exactly this text. */
export function headBytes(session, size, root) {
  return new TextEncoder().encode(
    `{"root":"${root}","session":"${session}","size":${size},"type":"votehub-tree-head/1"}`);
}

export function verifyHead(publicKey, session, head) {
  try {
    return ed25519.verify(hexToBytes(head.signature), headBytes(session, head.size, head.root), hexToBytes(publicKey));
  } catch {
    return false;
  }
}

/** A receipt kept by the page, checked against the proof the hub serves
 *  after the close: the head it was given is signed, the ballot is in the
 *  final head, the final head is signed and extends the receipt's. Returns
 *  `null` when all holds, else what does not. */
export function checkReceipt(kept, proof, publicKey) {
  const { session, receipt } = kept;
  try {
    if (!verifyHead(publicKey, session, receipt.head)) return 'the receipt’s head is not signed by the hub’s key';
    if (!verifyHead(publicKey, session, proof.head)) return 'the published head is not signed by the hub’s key';
    if (proof.index !== receipt.index || proof.size !== proof.head.size) return 'the proof is not for this ballot';
    const leaf = hexToBytes(receipt.leaf);
    const root = hexToBytes(proof.head.root);
    if (!verifyInclusion(receipt.index, proof.size, leaf, proof.inclusion.map(hexToBytes), root)) {
      return 'the ballot is not in the published log';
    }
    if (!verifyConsistency(receipt.head.size, proof.size, hexToBytes(receipt.head.root), root,
      proof.consistency.map(hexToBytes))) {
      return 'the published log does not extend the one the ballot was recorded in';
    }
    return null;
  } catch (e) {
    return `the proof is unreadable (${e.message})`;
  }
}
