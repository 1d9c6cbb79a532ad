// Help: the button on every screen. It asks the edge to tell staff (POST /api/help) with
// where the person is (pickup, driver or other), and says so in the banner. A second press
// within TIMING.helpRepeatMs repeats the answer without calling staff again.
import { SCREENS } from '../machine.js';
import { TIMING } from '../timers.js';

// context is what the edge is told about where help is needed.
export function context(state) {
  return state.driver ? 'driver' : SCREENS[state.screen].help;
}

export async function press(k) {
  const { state } = k;
  k.ensureAudio();
  const ctx = context(state);
  if (k.now() - state.helpAt < TIMING.helpRepeatMs) {
    k.banner('ok', ['helpSent']);
    return;
  }
  k.banner('info', ['helpPending']);
  const r = await k.api.help(ctx);
  if (r.ok) {
    state.helpAt = k.now();
    k.banner('ok', ['helpSent']);
  } else {
    k.banner('error', ['helpFailed']);
  }
  k.resetIdle();
}
