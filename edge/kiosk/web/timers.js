// Timings and the page's named timers. The clock is injected ({now, setTimeout,
// clearTimeout}): the browser passes systemClock, node tests a fake one they advance by
// hand, so that idle returns, the lockout countdown and the thank-you timeout are tested
// without waiting.

// Timings, in milliseconds. Generous on purpose: many residents are elderly.
export const TIMING = {
  idleMs: 90000, // resident screens go back to the start after this long untouched
  idleWarnMs: 20000, // ...with a visible warning this long before
  driverIdleMs: 300000, // driver mode signs out after 5 min untouched (token lives 15 min)
  driverTokenMs: 15 * 60000,
  doorsQuietMs: 600000, // doors screen gives up after 10 min without any change
  fullGraceMs: 3000, // a just-closed door may read "not empty" until the infrared settles
  pollMs: 1000, // session polling while doors are open
  manifestPollMs: 3000,
  thanksMs: 10000,
  infoPollMs: 60000,
  helpRepeatMs: 30000,
  announceStaggerMs: 900, // one chime per door, like the physical stagger
  pickupTimeoutMs: 45000, // doors open one after another before the reply comes
  requestTimeoutMs: 15000
};

export const systemClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (id) => clearTimeout(id)
};

// createTimers keeps at most one pending timer per name: setting a name again replaces
// it, so a screen can re-arm its tick without piling up callbacks.
export function createTimers(clock) {
  const pending = {};
  function later(name, ms, fn) {
    clock.clearTimeout(pending[name]);
    pending[name] = clock.setTimeout(() => {
      delete pending[name];
      fn();
    }, ms);
  }
  function cancel(name) {
    clock.clearTimeout(pending[name]);
    delete pending[name];
  }
  function cancelAll() {
    for (const name of Object.keys(pending)) cancel(name);
  }
  return { later, cancel, cancelAll, pending: () => Object.keys(pending) };
}
