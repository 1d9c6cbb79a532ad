// Keypad locked (screens/locked.js): five wrong codes lock it; a countdown runs on the
// injected clock; at the end the edge is asked before the keypad comes back.
import assert from 'node:assert/strict';
import test from 'node:test';

import { openPage } from './page.js';

async function lockedOut() {
  const p = await openPage();
  for (let i = 0; i < 5; i++) await p.pickup('99999999', '0000');
  return p;
}

test('the fifth wrong code locks the keypad, with a countdown', async () => {
  const p = await lockedOut();
  assert.equal(p.screen(), 'locked');
  assert.equal(p.text('#locked-countdown'), '请在 5:00 后再试');
  assert.equal(p.banner(), '键盘已锁定，请 5 分钟后再试。');
  assert.equal(p.$('#driver-link').hidden, true);
  await p.advance(1000);
  assert.equal(p.text('#locked-countdown'), '请在 4:59 后再试');
  await p.advance(60000);
  assert.equal(p.text('#locked-countdown'), '请在 3:59 后再试');
});

test('keys do nothing while locked, and a right code waits too', async () => {
  const p = await lockedOut();
  await p.tap('12345678');
  await p.key('1');
  assert.equal(p.k.state.entry.code, '');
  assert.equal(p.requests('/api/pickup').length, 5);
});

test('at the end of the countdown the edge is asked, then the keypad is back', async () => {
  const p = await lockedOut();
  const infos = p.requests('/api/info').length;
  await p.advance(300000);
  assert.equal(p.requests('/api/info').length, infos + 1);
  assert.equal(p.k.state.screen, 'code');
  assert.equal(p.banner(), '');
  await p.pickup('12345678', '1234');
  assert.equal(p.screen(), 'doors');
});

test('locked again meanwhile: the countdown starts over from what the edge says', async () => {
  const p = await lockedOut();
  p.edge.state.lockedUntil += 60000;
  await p.advance(300000);
  assert.equal(p.screen(), 'locked');
  assert.equal(p.text('#locked-countdown'), '请在 1:00 后再试');
  await p.advance(60000);
  assert.equal(p.k.state.screen, 'code');
});

test('a page opened while the edge is locked shows the lock at once', async () => {
  const p = await openPage({ edge: (e) => { e.state.lockedUntil = e.state.now() + 120000; } });
  assert.equal(p.screen(), 'locked');
  assert.equal(p.text('#locked-countdown'), '请在 2:00 后再试');
  assert.equal(p.banner(), '键盘已锁定，请 2 分钟后再试。');
});
