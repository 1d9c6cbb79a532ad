// A clock for node tests of the page ({now, setTimeout, clearTimeout}, as timers.js
// wants), moved only by advance(): timers fire in time order, and the page's promises
// settle after each, so a 5-minute lockout is tested in milliseconds.
//
// node --test runs every file in test/; loaded that way this one only exports.

// settle lets every pending promise of the page run. The fake edge answers in-process
// (no sockets), so one macrotask turn drains them; a few turns cover chained calls.
export async function settle() {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}

export function createFakeClock(start) {
  let now = start;
  let seq = 0;
  const timers = new Map();
  return {
    now: () => now,
    setTimeout(fn, ms) {
      const id = ++seq;
      timers.set(id, { at: now + Math.max(0, Number(ms) || 0), fn });
      return id;
    },
    clearTimeout(id) {
      timers.delete(id);
    },
    // advance moves time forward by ms, firing each timer due on the way at its time.
    async advance(ms) {
      const end = now + ms;
      for (let fired = 0; fired < 100000; fired++) {
        let next = null;
        for (const [id, t] of timers) {
          if (t.at <= end && (!next || t.at < next[1].at)) next = [id, t];
        }
        if (!next) break;
        timers.delete(next[0]);
        now = next[1].at;
        next[1].fn();
        await settle();
      }
      now = end;
      await settle();
    }
  };
}
