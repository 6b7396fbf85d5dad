// The hub's /live protocol for the pages: one WebSocket that follows the
// session list and any number of sessions, reconnects with backoff when the
// network or the hub goes away, resubscribes, and keeps for each session
// only the state with the highest seq.

const LOBBY = '00000000-0000-0000-0000-000000000000';
// A venue's Wi-Fi drops phones silently: no close, no error, just nothing.
// A connection that heard nothing for QUIET asks the hub (`ping`); one that
// stays unanswered DEAD longer, or that takes CONNECT to open, is given up
// and replaced.
const QUIET = 2000;
const DEAD = 3000;
const CONNECT = 5000;

export class Live {
  /**
   * @param {{onState: (s: object) => void, onSessionsChanged: () => void,
   *          onStatus: (status: 'connecting'|'online'|'offline') => void}} handlers
   */
  constructor(handlers) {
    this.handlers = handlers;
    this.followed = new Set();
    this.seqs = new Map();
    this.attempt = 0;
    this.ws = null;
  }

  start() {
    this.handlers.onStatus(this.attempt === 0 ? 'connecting' : 'offline');
    const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/live`;
    const ws = new WebSocket(url);
    this.ws = ws;
    this.heard = Date.now();
    this.asked = null;
    ws.onopen = () => {
      this.attempt = 0;
      this.heard = Date.now();
      this.handlers.onStatus('online');
      this.send(LOBBY, 'subscribe');
      for (const id of this.followed) this.send(id, 'subscribe');
    };
    ws.onmessage = (e) => {
      this.heard = Date.now();
      this.asked = null;
      this.receive(e.data);
    };
    ws.onclose = () => this.lost(ws);
    clearInterval(this.watch);
    this.watch = setInterval(() => this.check(ws), 500);
  }

  /** Gives up a connection that stopped hearing the hub. */
  check(ws) {
    if (this.ws !== ws) return;
    const now = Date.now();
    if (ws.readyState === WebSocket.CONNECTING) {
      if (now - this.heard > CONNECT) this.lost(ws);
    } else if (this.asked !== null) {
      if (now - this.asked > DEAD) this.lost(ws);
    } else if (now - this.heard > QUIET && this.online) {
      this.asked = now;
      ws.send(JSON.stringify({ action: 'ping' }));
    }
  }

  /** The connection is gone (closed, or given up): try again with backoff. */
  lost(ws) {
    if (this.ws !== ws) return;
    this.ws = null;
    clearInterval(this.watch);
    ws.onopen = ws.onmessage = ws.onclose = null;
    // On a dead network this only starts the close; nothing waits for it.
    try { ws.close(); } catch { /* already closing */ }
    this.handlers.onStatus('offline');
    // 0.5 s, 1 s, 2 s … up to 10 s, with jitter so a restarted hub is
    // not hit by every phone in the same millisecond.
    const delay = Math.min(10000, 500 * 2 ** this.attempt++) * (0.75 + Math.random() / 2);
    setTimeout(() => this.start(), delay);
  }

  get online() {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  send(id, action) {
    if (this.online) this.ws.send(JSON.stringify({ action, session_id: id }));
  }

  follow(id) {
    if (this.followed.has(id)) return;
    this.followed.add(id);
    this.send(id, 'subscribe');
  }

  unfollow(id) {
    if (!this.followed.delete(id)) return;
    this.send(id, 'unsubscribe');
  }

  /** Keeps a state from any source (HTTP answer or /live) if it is the newest. */
  offer(state) {
    const seen = this.seqs.get(state.id) ?? -1;
    // Equal seqs carry the same counts (a late joiner of a closed session
    // gets a vote_update and a session_closed with one seq): taking both
    // only adds fields.
    if (state.seq < seen) return;
    this.seqs.set(state.id, state.seq);
    this.handlers.onState(state);
  }

  receive(text) {
    let msg;
    try { msg = JSON.parse(text); } catch { return; }
    if (msg.event === 'sessions_changed') this.handlers.onSessionsChanged();
    if (msg.event === 'vote_update' || msg.event === 'session_closed') {
      this.offer({
        id: msg.session_id,
        seq: msg.seq,
        for: msg.votes_for, against: msg.votes_against, abstain: msg.votes_abstain, total: msg.votes_total,
        ballots: msg.ballots ?? null,
        grades: msg.grades ?? null,
        needed: msg.needed, adopted_if_closed_now: msg.adopted_if_closed_now, groups: msg.groups ?? [],
        // Elections: per-option counts; their blank ballots come as abstentions.
        counts: msg.options ?? null, blank: msg.options ? msg.votes_abstain : null,
        closes_at: msg.closes_at ?? null,
        status: msg.event === 'session_closed' ? 'closed' : undefined,
        result: msg.result ?? null,
        elected: msg.elected ?? null, tied: msg.tied ?? null,
      });
    }
  }
}
