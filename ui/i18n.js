// Words of the participant page and the projector view, in French and
// English, chosen by the browser's language.

const STRINGS = {
  en: {
    title: 'Vote',
    screenTitle: 'votehub — projector',
    online: 'Connected',
    offline: 'Connection lost — reconnecting…',
    connecting: 'Connecting…',
    noSessions: 'No vote is open right now. This page updates by itself.',
    for: 'For', against: 'Against', abstain: 'Abstain',
    grade: { '-3': 'Absolutely against', '-2': 'Against', '-1': 'Rather against', '0': 'No opinion', '1': 'Rather for', '2': 'For', '3': 'Absolutely for' },
    yourBallot: 'Your ballot: {choice} — recorded. You can change it until the vote closes.',
    sending: 'Sending your ballot…',
    pending: 'Not sent yet: no connection. It will be sent as soon as the connection is back.',
    closedRefused: 'This vote is closed: your ballot was not counted.',
    notOnRoll: 'This code is not on the roll.',
    failed: 'Your ballot was not recorded: {error}',
    ballots: '{n} ballots',
    ballots_one: '{n} ballot',
    turnout: '{n} of {of} voters ({pct}%)',
    needed: '{n} more approvals needed',
    needed_one: '{n} more approval needed',
    neededAt: 'Adoption needs {n} approvals at this turnout',
    wouldAdopt: 'Would be adopted if closed now',
    adopted: 'Adopted', rejected: 'Rejected',
    closed: 'Closed',
    open: 'Open',
    codeLabel: 'Your voting code',
    codeHelp: 'The code on your voting card, like K7QF-M2XD.',
    codeSubmit: 'Use this code',
    codeVotingAs: 'Voting as {name}',
    codeChange: 'Change code',
    codeNeeded: 'This vote is for people on the roll: enter your voting code first.',
    join: 'Vote at',
    median: 'Median grade: {m}',
    groupNeed: '{group}: {have} of {need} approvals',
    live: 'Live tally',
  },
  fr: {
    title: 'Vote',
    screenTitle: 'votehub — projection',
    online: 'Connecté',
    offline: 'Connexion perdue — reconnexion…',
    connecting: 'Connexion…',
    noSessions: 'Aucun vote n’est ouvert pour le moment. Cette page se met à jour toute seule.',
    for: 'Pour', against: 'Contre', abstain: 'Abstention',
    grade: { '-3': 'Absolument contre', '-2': 'Contre', '-1': 'Plutôt contre', '0': 'Sans avis', '1': 'Plutôt pour', '2': 'Pour', '3': 'Absolument pour' },
    yourBallot: 'Votre vote : {choice} — enregistré. Vous pouvez le changer jusqu’à la clôture.',
    sending: 'Envoi de votre vote…',
    pending: 'Pas encore envoyé : pas de connexion. Il partira dès que la connexion revient.',
    closedRefused: 'Ce vote est clos : votre bulletin n’a pas été compté.',
    notOnRoll: 'Ce code n’est pas sur la liste électorale.',
    failed: 'Votre vote n’a pas été enregistré : {error}',
    ballots: '{n} bulletins',
    ballots_one: '{n} bulletin',
    turnout: '{n} votants sur {of} ({pct} %)',
    needed: 'encore {n} approbations nécessaires',
    needed_one: 'encore {n} approbation nécessaire',
    neededAt: 'L’adoption demande {n} approbations à cette participation',
    wouldAdopt: 'Serait adoptée si le vote était clos maintenant',
    adopted: 'Adoptée', rejected: 'Rejetée',
    closed: 'Clos',
    open: 'Ouvert',
    codeLabel: 'Votre code de vote',
    codeHelp: 'Le code de votre carte de vote, comme K7QF-M2XD.',
    codeSubmit: 'Utiliser ce code',
    codeVotingAs: 'Vous votez en tant que {name}',
    codeChange: 'Changer de code',
    codeNeeded: 'Ce vote est réservé aux inscrits : saisissez d’abord votre code de vote.',
    join: 'Votez sur',
    median: 'Mention médiane : {m}',
    groupNeed: '{group} : {have} approbations sur {need}',
    live: 'Décompte en direct',
  },
};

export const lang = (navigator.language || 'en').toLowerCase().startsWith('fr') ? 'fr' : 'en';
const table = STRINGS[lang];

const lookup = (key) => key.split('.').reduce((o, k) => (o == null ? o : o[k]), table);

/** The text for `key`, with `{name}` placeholders filled from `vars`; the
 *  `key_one` form when `vars.n` is 1 (French also uses it for 0). */
export function t(key, vars = {}) {
  const one = vars.n === 1 || (lang === 'fr' && vars.n === 0);
  const text = (one && lookup(`${key}_one`)) || lookup(key) || key;
  return String(text).replace(/\{(\w+)\}/g, (_, k) => String(vars[k] ?? ''));
}

/** Fills every `[data-i18n]` element of `root` with its text. */
export function translate(root = document) {
  document.documentElement.lang = lang;
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
}
