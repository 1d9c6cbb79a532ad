// Pickup, step 1: the numeric keypad and the 8-digit code. The keypad (on-screen keys and
// a physical keyboard) serves both steps; the second step, the last 4 digits of the phone,
// is screens/phone.js. Machine states: code, then phone (machine.js).
//
// A QR scanner on the kiosk is a keyboard wedge: it types the resident's QR payload fast,
// then Enter. On either keypad step, and on the locked screen, a non-digit key starts a
// scan (the keypad would drop it anyway), and the keys that follow, each within
// SCAN_GAP_MS of the last, are the payload, not keypad digits; Enter reads it (readQR).
// The plain payload, larder:v1:{site}:{code}, only fills the code: the edge checks it with
// the phone digits like a typed one. The resident page's device-bound payload,
// larder:v1:{site}:{code}:{expires}:{tag}, goes to the edge as it is (POST /api/pickup
// {"qr"}), which verifies the tag and opens without the phone digits, even while the
// keypad waits.
import { CODE_LEN, FACTOR_LEN, emptyEntry, keypadReduce } from '../keypad.js';
import * as answer from './answer.js';
import * as phone from './phone.js';

// render paints the keypad section for whichever step is up.
export function render(k) {
  const { $, L } = k;
  const e = k.state.entry;
  const isCode = e.step === 'code';
  const total = isCode ? CODE_LEN : FACTOR_LEN;
  const value = isCode ? e.code : e.factor;
  $('#keypad-step').textContent = L('stepOf', { n: isCode ? 1 : 2 });
  const box = $('#digits');
  box.textContent = '';
  box.dataset.len = String(total);
  const cells = k.el('span', { class: 'cells', 'aria-hidden': 'true' });
  for (let i = 0; i < total; i++) {
    if (isCode && i === 4) cells.append(k.el('span', { class: 'cell-gap' }));
    const filled = i < value.length;
    const cls = 'cell' + (filled ? ' cell-filled' : '') + (i === value.length ? ' cell-next' : '');
    cells.append(k.el('span', { class: cls }, filled ? value[i] : ''));
  }
  const spoken = value.length
    ? L('digitsEntered', { count: value.length, total, digits: value.split('').join(' ') })
    : L('digitsNone', { total });
  box.append(cells, k.el('span', { class: 'sr-only' }, spoken));
  const summary = $('#code-summary');
  const ok = $('#key-ok');
  if (isCode) {
    $('#keypad-hint').textContent = L('enterCode');
    $('#digits-label').textContent = L('codeLabel');
    summary.hidden = true;
    summary.textContent = '';
    ok.textContent = L('next');
  } else {
    phone.render(k);
  }
  ok.classList.toggle('key-ready', value.length === total);
}

// SCAN_GAP_MS: a scanner types a character every few milliseconds (tens on a slow
// setting); the margin is for a busy page. A longer pause ends the scan, so a stray letter
// pressed by hand does not swallow the digits typed after it. Taps on the on-screen keys
// are clicks, not keys, and never go through the scan.
export const SCAN_GAP_MS = 250;
// SCAN_MAX bounds the buffer: a payload is at most 10 + 64 + 1 + 8 + 1 + 10 + 1 + 20
// characters (115).
const SCAN_MAX = 128;
const PAYLOAD = new RegExp('^larder:v1:([a-z0-9_-]{1,64}):([0-9]{' + CODE_LEN + '})(:[0-9]{1,19}:[0-9a-f]{20})?$');

// parseQR returns the site and code of a QR payload (cloud.QRPayload), with tagged true
// for the device-bound form, or null.
export function parseQR(text) {
  const m = PAYLOAD.exec(text);
  return m ? { site: m[1], code: m[2], tagged: m[3] !== undefined } : null;
}

// scanKey feeds one key to the scanner buffer (state.scan: {text}); true when it took the
// key. Digits with no scan under way, and keys without a character, are the keypad's. Each
// key re-arms the 'scan' timer; when it fires the scan is over and forgotten (it may hold
// a code).
function scanKey(k, ev) {
  const { state } = k;
  const scan = state.scan;
  if (ev.key === 'Enter' && scan) {
    state.scan = null;
    k.cancel('scan');
    ev.preventDefault();
    readQR(k, scan.text);
    return true;
  }
  if (ev.key.length !== 1) return false;
  if (!scan) {
    // Space is left alone: on a focused button it presses it; no payload has one.
    if (/^[0-9 ]$/.test(ev.key)) return false;
    state.scan = { text: '' };
  }
  ev.preventDefault();
  if (state.scan.text.length < SCAN_MAX) state.scan.text += ev.key;
  k.later('scan', SCAN_GAP_MS, () => { state.scan = null; });
  return true;
}

// readQR takes a scanned payload. A device-bound payload for this bank goes to the edge
// (answer.send), from the keypad or the locked screen; a plain one fills the code and
// moves to the phone step (not while the keypad waits: it would need the phone digits).
// Anything else says why and changes nothing, and none of it reaches the edge, so it
// counts toward no throttle.
function readQR(k, text) {
  const { state } = k;
  if (state.busy) return;
  k.ensureAudio();
  const qr = parseQR(text);
  if (!qr) k.banner('error', ['qrUnreadable']);
  else if (!state.site) k.banner('error', ['qrNoSite']); // /api/info not answered yet
  else if (qr.site !== state.site) k.banner('error', ['qrOtherSite']);
  else if (qr.tagged) {
    state.entry = emptyEntry();
    answer.send(k, { qr: text }, false);
    return;
  } else if (state.screen === 'locked') k.banner('error', ['qrLockedPlain']);
  else {
    state.entry = { step: 'factor', code: qr.code, factor: '' };
    if (state.screen === 'code') k.go('codeDone', { quiet: true });
    k.banner('ok', ['qrRead']);
  }
  if (k.section() === 'keypad') render(k);
  k.resetIdle();
}

// press handles one key: a digit, 'delete', 'clear' (Start over) or 'enter' (Next/Open).
// Keys count only on the keypad and not while a pickup is on its way.
export function press(k, key) {
  const { state } = k;
  if (k.section() !== 'keypad' || state.busy) return;
  k.ensureAudio();
  if (key === 'enter') {
    if (state.entry.step === 'code') submitCode(k);
    else phone.submit(k);
    return;
  }
  const before = state.entry;
  state.entry = keypadReduce(state.entry, key);
  if (before.step !== state.entry.step) k.go('back', { quiet: true });
  if (key === 'clear' || (key === 'delete' && before.step !== state.entry.step)) k.clearBanner();
  render(k);
  k.resetIdle();
}

// submitCode is Next on step 1: all 8 digits move on to the phone step.
function submitCode(k) {
  const e = k.state.entry;
  if (e.code.length < CODE_LEN) {
    k.banner('error', [{ key: 'needMoreDigits', params: { total: CODE_LEN } }]);
    return;
  }
  k.clearBanner();
  k.state.entry = keypadReduce(e, 'next');
  k.go('codeDone', { quiet: true });
  render(k);
  k.resetIdle();
}

// onKey: a physical keyboard on the keypad screen: digits, Backspace, Enter, Escape, and
// a QR scanner's payload (scanKey). Enter and Space on a focused button keep their normal
// meaning (press that button), except the Enter that ends a scan.
export function onKey(k, ev) {
  const locked = k.state.screen === 'locked';
  if ((k.section() !== 'keypad' && !locked) || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const target = ev.target;
  if (target && (target.tagName === 'INPUT' || target.tagName === 'TEXTAREA')) return;
  if (scanKey(k, ev)) return;
  if (locked) return; // the locked screen takes scans only
  const onButton = target && target.tagName === 'BUTTON';
  let key = null;
  if (/^[0-9]$/.test(ev.key)) key = ev.key;
  else if (ev.key === 'Backspace' || ev.key === 'Delete') key = 'delete';
  else if (ev.key === 'Escape') key = 'clear';
  else if (ev.key === 'Enter' && !onButton) key = 'enter';
  if (!key) return;
  ev.preventDefault();
  // Typing on a physical keypad means "keypad mode": let go of whatever button a finger
  // last touched, so that the following Enter submits instead of pressing, say, Help.
  if (onButton && key !== 'enter') target.blur();
  press(k, key);
}

export function wire(k) {
  k.$('#keypad').addEventListener('click', (ev) => {
    const b = ev.target.closest('button[data-key]');
    if (b) press(k, b.dataset.key);
  });
  k.$('#start-over').addEventListener('click', () => press(k, 'clear'));
}

