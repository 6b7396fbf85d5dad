// The page's own crypto, checked without a browser: ui/vendor/noble.js is
// what scripts/vendor-noble builds from the pinned packages, byte for byte,
// and ui/audit.js verifies the published RFC 6962 vectors as the hub does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './harness.mjs';
import { verifyConsistency, verifyInclusion } from '../../ui/audit.js';
import { sha256 } from '../../ui/vendor/noble.js';

test('the vendored noble bundle is what the pinned packages build', () => {
  const out = join(mkdtempSync(join(tmpdir(), 'votehub-vendor-')), 'noble.js');
  execFileSync(join(ROOT, 'scripts', 'vendor-noble'), [out], { cwd: ROOT, stdio: 'pipe' });
  assert.ok(readFileSync(out).equals(readFileSync(join(ROOT, 'ui', 'vendor', 'noble.js'))),
    'run scripts/vendor-noble and commit ui/vendor/noble.js');
});

function vectors(kind) {
  const dir = join(ROOT, 'hub', 'tests', 'data', 'merkle', 'testdata', kind);
  const files = [];
  const walk = (d) => {
    for (const f of readdirSync(d)) {
      const p = join(d, f);
      if (statSync(p).isDirectory()) walk(p); else files.push([p, JSON.parse(readFileSync(p, 'utf8'))]);
    }
  };
  walk(dir);
  assert.ok(files.length > 50);
  return files;
}

const b64 = (s) => (typeof s === 'string' ? new Uint8Array(Buffer.from(s, 'base64')) : null);
const hash = (s) => { const b = b64(s); return b && b.length === 32 ? b : null; };
// The "additional" vectors use short stand-ins for roots: only equality matters.
const root = (s) => { const b = b64(s); return b && (b.length === 32 ? b : sha256(b)); };
const proofOf = (v) => {
  if (v == null) return [];
  const hs = v.map(hash);
  return hs.every(Boolean) ? hs : null;
};

test('ui/audit.js verifies the inclusion vectors of transparency-dev/merkle', () => {
  for (const [name, v] of vectors('inclusion')) {
    const [leaf, r, proof] = [hash(v.leafHash), hash(v.root), proofOf(v.proof)];
    const ok = !!(leaf && r && proof) && verifyInclusion(v.leafIdx, v.treeSize, leaf, proof, r);
    assert.equal(ok, !v.wantErr, `${name}: ${v.desc}`);
  }
});

test('ui/audit.js verifies the consistency vectors of transparency-dev/merkle', () => {
  for (const [name, v] of vectors('consistency')) {
    const [r1, r2, proof] = [root(v.root1), root(v.root2), proofOf(v.proof)];
    // The empty tree has one head, the hash of nothing.
    const emptyOk = v.size1 !== 0 || (r1 && Buffer.from(r1).equals(Buffer.from(sha256(new Uint8Array()))));
    const ok = !!(r1 && r2 && proof) && emptyOk && (v.size1 === 0 ? false : verifyConsistency(v.size1, v.size2, r1, r2, proof));
    assert.equal(ok, !v.wantErr, `${name}: ${v.desc}`);
  }
});
