// Thank you (screens/thanks.js): counts down and goes back to the start, in Chinese, for
// the next person.
import assert from 'node:assert/strict';
import test from 'node:test';

import { TIMING } from '../timers.js';
import { openPage } from './page.js';

async function thanked(lang) {
  const p = await openPage();
  if (lang === 'en') await p.click('#lang-toggle');
  await p.pickup('12345678', '1234');
  for (let i = 0; i < 10 && p.screen() !== 'thanks'; i++) await p.advance(TIMING.pollMs);
  assert.equal(p.screen(), 'thanks');
  return p;
}

test('thank you, then back to the start after its timeout', async () => {
  const p = await thanked('en');
  assert.equal(p.text('#thanks-title'), 'Thank you!');
  assert.equal(p.text('#thanks-countdown'), 'Back to the start in 10 seconds');
  assert.equal(p.banner(), '');
  await p.advance(1000);
  assert.equal(p.text('#thanks-countdown'), 'Back to the start in 9 seconds');
  await p.advance(TIMING.thanksMs - 2000);
  assert.equal(p.screen(), 'thanks');
  await p.advance(1000);
  assert.equal(p.k.state.screen, 'code');
  assert.equal(p.doc.documentElement.lang, 'zh-CN', 'Chinese again for the next person');
  assert.equal(p.k.state.session, null);
});

test('Back to start does not wait', async () => {
  const p = await thanked();
  await p.click('.screen[data-screen="thanks"] button[data-action="home"]');
  assert.equal(p.k.state.screen, 'code');
  assert.deepEqual(p.k.timers.pending().filter((n) => n === 'thanks'), []);
});
