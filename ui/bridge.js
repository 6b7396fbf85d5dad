// The only module that touches Tauri's JavaScript API. The monitor page
// talks to the hub through these two functions; a browser build of the same
// page would replace this file with one that uses the HTTP API and /live.

const tauri = window.__TAURI__;

/** Calls a command of the desktop shell; rejects with {error, code}. */
export function call(command, args = {}) {
  return tauri.core.invoke(command, args);
}

/** Calls `handler` with every snapshot of the hub the shell sends. */
export function onSnapshot(handler) {
  return tauri.event.listen('hub-changed', (event) => handler(event.payload));
}
