// Thank you: every door closed and emptied. Counts down TIMING.thanksMs, then back to the
// start for the next person. Machine state: thanks (machine.js).
import { TIMING } from '../timers.js';

export function show(k) {
  const { state } = k;
  k.cancel('poll');
  k.cancel('doorsQuiet');
  state.session = null;
  state.thanksUntil = k.now() + TIMING.thanksMs;
  k.clearBanner();
  k.go('done');
  tick(k);
}

function tick(k) {
  if (k.state.screen !== 'thanks') return;
  const left = k.state.thanksUntil - k.now();
  if (left <= 0) {
    k.home();
    return;
  }
  render(k);
  k.later('thanks', Math.min(1000, left), () => tick(k));
}

export function render(k) {
  const left = Math.max(0, Math.ceil((k.state.thanksUntil - k.now()) / 1000));
  k.$('#thanks-countdown').textContent = k.L('thanksReturn', { s: left });
}
