// The whole kiosk page for node tests: the real modules on the real index.html, parsed
// into test/fake-dom.js, talking to test/fake-edge.js in-process on a fake clock.
//
// node --test runs every file in test/; loaded that way this one only exports.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { createApi } from '../api.js';
import { createKiosk } from '../kiosk.js';
import { createFakeClock, settle } from './fake-clock.js';
import { createFakeEdge } from './fake-edge.js';
import { FakeEvent, parseDocument } from './fake-dom.js';

const WEB = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const HTML = fs.readFileSync(path.join(WEB, 'index.html'), 'utf8');
const T0 = Date.UTC(2026, 10, 25, 18, 0, 0);

// openPage starts the page; opts.edge changes the fake edge before the page loads.
export async function openPage(opts) {
  const o = opts || {};
  const clock = createFakeClock(T0);
  const edge = createFakeEdge({ now: clock.now });
  if (o.edge) o.edge(edge);
  const doc = parseDocument(HTML);
  const api = createApi({ base: 'http://edge.test', fetch: edge.fetch });
  const k = createKiosk({ document: doc, window: { scrollTo() {} }, api, clock });
  await k.start();
  await settle();
  const $ = (sel) => {
    const n = doc.querySelector(sel);
    if (!n) throw new Error('no element ' + sel);
    return n;
  };
  const page = {
    k, doc, edge, clock, $,
    // screen is what body[data-screen] says (the section shown); state the machine's.
    screen: () => doc.body.dataset.screen,
    text: (sel) => $(sel).innerText,
    banner: () => $('#announcer').innerText,
    async click(sel) {
      $(sel).click();
      await settle();
    },
    // tap presses on-screen keys: digits, then 'ok' presses Next / Open.
    async tap(keys) {
      for (const ch of keys) $(`#keypad button[data-key="${ch}"]`).click();
      await settle();
    },
    async ok() {
      await page.click('#key-ok');
    },
    // key types on a physical keyboard, at whatever has the focus.
    async key(name, init) {
      (doc.activeElement || doc.body).dispatchEvent(new FakeEvent('keydown', Object.assign({ key: name }, init)));
      await settle();
    },
    async advance(ms) {
      await clock.advance(ms);
    },
    // pickup types a code and a phone on the keypad and presses Open.
    // pickup types a whole attempt from the first step (Start over first when a wrong
    // answer left the code on the phone step).
    async pickup(code, factor) {
      if (page.k.state.screen === 'phone') await page.key('Escape');
      await page.tap(code);
      await page.ok();
      await page.tap(factor);
      await page.ok();
    },
    requests: (p) => edge.state.requests.filter((r) => r.path === p)
  };
  return page;
}
