// Tally bars, shared by the participant page and the projector view. Built
// with DOM calls only (titles and names come from users: never innerHTML).
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

/** The rows to draw: three sides, or seven grades on the nuanced scale. */
export function rows(state) {
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
export function renderBars(box, state) {
  const total = Math.max(1, rows(state).reduce((a, r) => a + r.n, 0));
  box.replaceChildren(
    ...rows(state).map((r) =>
      el('div', { class: `bar bar-${r.key}`, 'data-side': r.key },
        el('span', { class: 'bar-label', text: r.label }),
        el('span', { class: 'bar-track', 'aria-hidden': 'true' },
          el('span', { class: 'bar-fill', style: `width:${(100 * r.n) / total}%` })),
        el('span', { class: 'bar-count', 'data-count': r.key, text: String(r.n) })),
    ),
  );
}

/** "N more approvals needed", "would be adopted", or the result. */
export function standing(state) {
  if (state.status === 'closed' && state.result) return t(state.result);
  if (state.adopted_if_closed_now) return t('wouldAdopt');
  const approvals = state.grades ? state.for + state.abstain / 2 : state.for;
  const more = Math.max(0, Math.ceil(state.needed - approvals));
  return more > 0 ? t('needed', { n: more }) : t('neededAt', { n: state.needed });
}

/** The state the views draw, from a Session of the HTTP API (the same
 *  shape as the states live.js makes of /live events). */
export function stateOfSession(s) {
  return {
    id: s.id, seq: s.seq,
    for: s.tally.for, against: s.tally.against, abstain: s.tally.abstain, total: s.tally.total,
    grades: s.tally.grades ?? null, median: s.tally.median ?? null,
    needed: s.needed, adopted_if_closed_now: s.adopted_if_closed_now, groups: s.groups ?? [],
    status: s.status, result: s.result,
  };
}

/** `next` laid over `prev`: /live events carry no status or result until
 *  the close, so those are kept from before. */
export function mergeState(prev, next) {
  return { ...prev, ...next, status: next.status ?? prev.status, result: next.result ?? prev.result };
}
