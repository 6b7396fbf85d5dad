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

/** RFC 8785 canonical JSON of a parsed log entry. Entries hold strings,
 *  whole numbers, arrays and objects only, for which JSON.stringify's
 *  strings and numbers are RFC 8785's: only the keys need sorting (by
 *  UTF-16 code units, as JavaScript sorts strings). */
export function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The leaf hash of an entry: SHA-256(0x00 ‖ its canonical JSON). */
export function leafOf(entry) {
  const bytes = new TextEncoder().encode(canonical(entry));
  const buf = new Uint8Array(bytes.length + 1);
  buf.set(bytes, 1);
  return sha256(buf);
}

/** `null` when the receipt's entry is a ballot saying what the voter
 *  chose (`ballot`: what the page sent) and hashes to the receipt's leaf;
 *  else what is wrong. Checked as soon as the answer arrives. */
export function checkEntry(receipt, ballot) {
  try {
    const { entry } = receipt;
    if (!entry || entry.type !== 'ballot') return 'the receipt does not show the logged ballot';
    if (!equal(leafOf(entry), hexToBytes(receipt.leaf))) return 'the logged ballot does not hash to the receipt’s leaf';
    const same = (k) => {
      const a = ballot[k];
      const b = entry[k];
      if (k === 'options') return canonical([...a].sort((x, y) => x - y)) === canonical([...(b ?? [])].sort((x, y) => x - y));
      // The log lists a mark for every candidate; the page sent those it set.
      if (k === 'marks') return Object.entries(a).every(([id, mark]) => b?.[id] === mark);
      return canonical(a) === canonical(b);
    };
    if (!Object.keys(ballot).every(same)) return 'the logged ballot is not the one this phone sent';
    return null;
  } catch (e) {
    return `the receipt is unreadable (${e.message})`;
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
