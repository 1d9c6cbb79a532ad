// Pickup, step 2: the last 4 digits of the resident's phone, on the same keypad as the
// code (screens/pickup.js), with the code shown above for checking. Open sends the
// attempt to the edge (screens/answer.js takes the reply).
import { FACTOR_LEN, emptyEntry } from '../keypad.js';
import * as answer from './answer.js';

// render paints what differs on step 2; pickup.render paints the keys and digit cells.
export function render(k) {
  const { $, L } = k;
  const e = k.state.entry;
  $('#keypad-hint').textContent = L('enterFactor');
  $('#digits-label').textContent = L('factorLabel');
  const summary = $('#code-summary');
  summary.hidden = false;
  summary.textContent = L('codeSummary', { code: e.code.slice(0, 4) + ' ' + e.code.slice(4) });
  $('#key-ok').textContent = L('confirm');
}

// submit is Open on step 2.
export function submit(k) {
  const e = k.state.entry;
  if (e.factor.length < FACTOR_LEN) {
    k.banner('error', [{ key: 'needMoreDigits', params: { total: FACTOR_LEN } }]);
    return;
  }
  const attempt = { code: e.code, factor: e.factor };
  // Clear the digits at once: the next person must never see them.
  k.state.entry = emptyEntry();
  answer.send(k, attempt, false);
}
