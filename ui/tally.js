// Tally bars, shared by the participant page, the projector view and the
// desktop window. Built with DOM calls only (titles and names come from
// users: never innerHTML).
import { t } from './i18n.js';

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  node.append(...children.filter((c) => c != null));
  return node;
}

/** The name of option `id` of session `meta`. */
export function optionName(meta, id) {
  return meta?.options?.find((o) => o.id === id)?.name ?? `#${id}`;
}

/** The rows to draw: three sides, seven grades on the nuanced scale, or
 *  one per candidate of an election (its votes, or its `for` in approval). */
export function rows(state, meta) {
  if (state.counts) {
    const elected = new Set(state.elected ?? []);
    const tied = new Set(state.tied ?? []);
    return state.counts.map((o) => ({
      key: `o${o.id}`,
      label: optionName(meta, o.id),
      n: o.votes ?? o.for,
      detail: o.votes === undefined ? t('approvalDetail', { f: o.for, a: o.against }) : null,
      mark: elected.has(o.id) ? 'elected' : tied.has(o.id) ? 'tied' : null,
    }));
  }
  if (state.grades) {
    return state.grades.map((n, i) => ({ key: `g${i - 3}`, label: t(`grade.${i - 3}`), n })).reverse();
  }
  return [
    { key: 'for', label: t('for'), n: state.for },
    { key: 'against', label: t('against'), n: state.against },
    { key: 'abstain', label: t('abstain'), n: state.abstain },
  ];
}

/** Fills `box` with bars for `state`; `box` should be an aria-live region. */
export function renderBars(box, state, meta) {
  const drawn = rows(state, meta);
  const total = Math.max(1, ...drawn.map((r) => r.n), state.counts ? 0 : drawn.reduce((a, r) => a + r.n, 0));
  box.replaceChildren(
    ...drawn.map((r) =>
      el('div', { class: `bar bar-${r.key}${r.mark ? ` bar-${r.mark}` : ''}`, 'data-side': r.key, ...(r.mark ? { 'data-mark': r.mark } : {}) },
        el('span', { class: 'bar-label' }, r.label,
          r.mark ? el('span', { class: 'bar-mark', 'aria-hidden': 'true', text: r.mark === 'elected' ? ' ✓' : ' =' }) : null,
          r.mark ? el('span', { class: 'sr-only', text: ` (${t(r.mark)})` }) : null),
        el('span', { class: 'bar-track', 'aria-hidden': 'true' },
          el('span', { class: 'bar-fill', style: `width:${(100 * r.n) / total}%` })),
        el('span', { class: 'bar-count', 'data-count': r.key, text: r.detail ?? String(r.n) })),
    ),
  );
}

/** "N more approvals needed", "would be adopted", or the result. */
export function standing(state) {
  if (state.status === 'closed' && state.result) return t(state.result);
  if (state.needed === undefined || state.needed === null) return '';
  if (state.adopted_if_closed_now) return t('wouldAdopt');
  const approvals = state.grades ? state.for + state.abstain / 2 : state.for;
  const more = Math.max(0, Math.ceil(state.needed - approvals));
  return more > 0 ? t('needed', { n: more }) : t('neededAt', { n: state.needed });
}

/** The result of a closed election in words: who is elected, who tied. */
export function electionResult(state, meta) {
  const names = (ids) => (ids ?? []).map((id) => optionName(meta, id)).join(', ');
  if (state.result === 'none_elected') return t('none_elected');
  if (state.result === 'tie') {
    const elected = names(state.elected);
    return elected
      ? t('tieAfter', { elected, tied: names(state.tied) })
      : t('tieBetween', { tied: names(state.tied) });
  }
  return t('electedNames', { names: names(state.elected) });
}

/** The state the views draw, from a Session of the HTTP API (the same
 *  shape as the states live.js makes of /live events). */
export function stateOfSession(s) {
  const election = s.kind === 'election';
  return {
    id: s.id, seq: s.seq,
    for: s.tally.for ?? 0, against: s.tally.against ?? 0,
    abstain: election ? s.tally.blank : s.tally.abstain, total: s.tally.total,
    ballots: s.tally.ballots ?? null,
    grades: s.tally.grades ?? null, median: s.tally.median ?? null,
    needed: s.needed ?? null, adopted_if_closed_now: s.adopted_if_closed_now ?? null, groups: s.groups ?? [],
    counts: election ? s.tally.options : null, blank: election ? s.tally.blank : null,
    closes_at: s.status === 'open' ? s.closes_at : null,
    status: s.status, result: s.result,
    elected: s.elected ?? null, tied: s.tied ?? null,
  };
}

/** `next` laid over `prev`: /live events carry no status or result until
 *  the close, so those are kept from before. */
export function mergeState(prev, next) {
  return {
    ...prev, ...next,
    status: next.status ?? prev.status,
    result: next.result ?? prev.result,
    elected: next.elected ?? prev.elected,
    tied: next.tied ?? prev.tied,
  };
}
