// The receipts a phone keeps of its ballots, and their check after the
// close against the published log: the proofs of a named or open ballot,
// a secret ballot's tracker in the audit file, and the hub's key, which
// must never change under the phone (ui/audit.js does the cryptography).
import { checkEntry, checkReceipt, verifyHead } from './audit.js';
import { t } from './i18n.js';

/** The phone keeps what it knows of its last KEPT ballots: a long day,
 *  or many days, must not fill its storage. */
const KEPT = 500;
export function bound(map, keep = () => false) {
  const keys = Object.keys(map).filter((k) => !keep(k));   // oldest first
  for (const k of keys.slice(0, Math.max(0, keys.length - KEPT))) delete map[k];
}

export class Receipts {
  /**
   * @param store the phone's storage (get/set)
   * @param {{render: (id: string) => void, renderAll: () => void,
   *          status: (id: string) => string|undefined}} page
   */
  constructor(store, page) {
    this.store = store;
    this.page = page;
    // slot → { session, receipt, ballot, public_key } (or { session, tracker })
    this.kept = store.get('receipts') ?? {};
    this.audits = store.get('audits') ?? {};   // session id → 'ok:n' or 'alarm:why'
    // The hub's signing key, as this phone first saw it: a later change is
    // an alarm, not something to trust quietly.
    this.hubKey = store.get('key');
    this.keyAlarm = null;
    this.auditing = new Set();
  }

  save() {
    bound(this.kept);
    bound(this.audits);
    this.store.set('receipts', this.kept);
    this.store.set('audits', this.audits);
  }

  async loadKey() {
    let info;
    try { info = await (await fetch('/api/key', { cache: 'no-store' })).json(); } catch { return; }
    if (!this.hubKey) {
      this.hubKey = info;
      this.store.set('key', info);
    } else if (this.hubKey.public_key !== info.public_key) {
      this.keyAlarm = t('keyChanged', { was: this.hubKey.fingerprint, now: info.fingerprint });
      this.page.renderAll();
    }
  }

  /** Keeps a ballot's receipt; a head not signed by the hub's key, or a
   *  logged ballot that is not the one sent (`ballot`), is an alarm at once. */
  keep(key, session, receipt, ballot) {
    if (!receipt) return;
    // A new ballot: the session is checked again after the close (an alarm
    // stays: a later ballot does not undo what was wrong with an earlier one).
    if (!this.audits[session]?.startsWith('alarm:')) delete this.audits[session];
    // Re-added at the end: the newest are the ones kept (see `bound`).
    delete this.kept[key];
    if (receipt.tracker) {
      this.kept[key] = { session, tracker: receipt.tracker };
    } else {
      const hubKey = this.hubKey;
      this.kept[key] = { session, receipt, ballot, public_key: hubKey?.public_key ?? null };
      if (hubKey && !verifyHead(hubKey.public_key, session, receipt.head)) {
        this.audits[session] = `alarm:${t('auditBadHead')}`;
      }
      const wrong = checkEntry(receipt, ballot);
      if (wrong) this.audits[session] = `alarm:${wrong}`;
    }
    this.save();
  }

  /** After the close: every receipt of this session against the proofs
   *  (or, for a secret ballot, its tracker in the audit file). */
  async audit(session) {
    if (this.auditing.has(session) || this.audits[session]) return;
    const mine = Object.values(this.kept).filter((r) => r.session === session);
    if (!mine.length) return;
    this.auditing.add(session);
    let problem = null;
    try {
      for (const kept of mine) {
        if (kept.tracker) {
          const r = await fetch(`/api/sessions/${session}/audit`, { cache: 'no-store' });
          if (!r.ok) throw new Error(`${r.status}`);
          const bundle = await r.json();
          if (!bundle.entries.some((e) => e.tracker === kept.tracker)) problem = t('auditNoTracker');
          continue;
        }
        if (!kept.public_key && !this.hubKey) await this.loadKey();
        const key = kept.public_key ?? this.hubKey?.public_key;
        // The key could not be read yet (offline at first load): try later,
        // it is no reason for an alarm.
        if (!key) throw new Error('no key yet');
        const q = `index=${kept.receipt.index}&from=${kept.receipt.head.size}`;
        const r = await fetch(`/api/sessions/${session}/proof?${q}`, { cache: 'no-store' });
        if (!r.ok) throw new Error(`${r.status}`);
        problem = (kept.ballot ? checkEntry(kept.receipt, kept.ballot) : null)
          ?? checkReceipt(kept, await r.json(), key) ?? problem;
      }
    } catch {
      // Offline, or the hub did not answer: try again at the next render.
      this.auditing.delete(session);
      return;
    }
    this.audits[session] = problem ? `alarm:${problem}` : `ok:${mine.length}`;
    this.auditing.delete(session);
    this.save();
    this.page.render(session);
  }

  /** What the card says of its check: nothing before the close, then
   *  "checking…", then the ✓ or the alarm. */
  show(session, node) {
    if (this.keyAlarm) {
      node.className = 'audit audit-alarm';
      node.setAttribute('role', 'alert');
      node.textContent = this.keyAlarm;
      return;
    }
    const mine = Object.values(this.kept).some((r) => r.session === session);
    if (!mine || this.page.status(session) !== 'closed') { node.textContent = ''; return; }
    const result = this.audits[session];
    if (!result) {
      node.className = 'audit';
      node.textContent = t('auditChecking');
      this.audit(session);
      return;
    }
    const at = result.indexOf(':');
    const [kind, rest] = [result.slice(0, at), result.slice(at + 1)];
    node.dataset.audit = kind;
    if (kind === 'ok') {
      node.className = 'audit audit-ok';
      node.removeAttribute('role');
      node.textContent = t('auditOk', { n: Number(rest) });
    } else {
      node.className = 'audit audit-alarm';
      node.setAttribute('role', 'alert');
      node.textContent = t('auditAlarm', { why: rest });
    }
  }
}
