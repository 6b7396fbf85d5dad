// What the participant page needs of the noble libraries: SHA-256 and
// Ed25519 verification (no WebCrypto on plain http:// LAN addresses).
export { sha256 } from '@noble/hashes/sha2.js';
export { ed25519 } from '@noble/curves/ed25519.js';
