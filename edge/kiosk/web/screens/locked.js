// The keypad waits after too many wrong codes (a minute at most, docs/kiosk-api.md): a
// countdown to state.lockUntil, then a check with the edge before the keypad comes back.
// Machine state: locked (machine.js).
import { formatCountdown } from '../i18n.js';
import { emptyEntry } from '../keypad.js';

// show puts the locked screen up; opts.announce also says it in the banner, after the
// wrong-code message when opts.wrongCode (the attempt that started the wait).
export function show(k, opts) {
  const { state } = k;
  state.entry = emptyEntry();
  k.go('lock');
  if (opts && opts.announce) {
    const seconds = Math.max(1, Math.ceil((state.lockUntil - k.now()) / 1000));
    const parts = opts.wrongCode ? ['wrongCode'] : [];
    parts.push({ key: 'lockedAnnounce', params: { seconds } });
    k.banner('error', parts);
  }
  tick(k);
}

function tick(k) {
  const { state } = k;
  const left = (state.lockUntil - k.now()) / 1000;
  if (state.screen !== 'locked') return;
  render(k);
  if (left <= 0) {
    state.lockUntil = 0;
    // Ask the edge rather than trust our clock: another attempt may have re-locked it.
    k.loadInfo().then((stillLocked) => {
      if (!stillLocked) k.home();
    });
    return;
  }
  k.later('locked', Math.min(1000, Math.max(50, (left % 1) * 1000 || 1000)), () => tick(k));
}

export function render(k) {
  const left = (k.state.lockUntil - k.now()) / 1000;
  k.$('#locked-countdown').textContent = k.L('lockedCountdown', { time: formatCountdown(left, k.state.lang) });
}
