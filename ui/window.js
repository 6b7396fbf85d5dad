// What every part of the moderator's window shares: finding an element,
// saying a hub error, asking to confirm.

export const $ = (id) => document.getElementById(id);

/** The text of an error from the hub (its `error`), or of anything else. */
export function errorText(e) {
  return e?.error ?? String(e);
}

/** Asks `text` in the confirmation dialog, `yes` on its button; runs
 *  `then` if the moderator says yes. */
export function confirmThen(text, yes, then) {
  const dialog = $('confirm');
  $('confirm-text').textContent = text;
  $('confirm-yes').textContent = yes;
  dialog.returnValue = '';
  dialog.onclose = async () => {
    if (dialog.returnValue === 'yes') await then();
  };
  dialog.showModal();
}
