// Keypad waiting (screens/locked.js): after four wrong codes the edge waits 1 s, 2 s, 4 s
// … at most 60 s before it checks another; the page shows each wait as a countdown on the
// injected clock, and at the end asks the edge before the keypad comes back.
import assert from 'node:assert/strict';
import test from 'node:test';

import { delayAfter } from './fake-edge.js';
import { openPage } from './page.js';

// wrongCodes types n wrong codes, each once the keypad is back.
async function wrongCodes(p, n) {
  for (let i = 1; i <= n; i++) {
    await p.pickup('99999999', '0000');
    await p.advance(delayAfter(i) * 1000);
  }
}

test('the fifth wrong code makes the keypad wait a second, with a countdown', async () => {
  const p = await openPage();
  await wrongCodes(p, 4);
  assert.equal(p.screen(), 'keypad');
  await p.pickup('99999999', '0000');
  assert.equal(p.screen(), 'locked');
  assert.equal(p.text('#locked-countdown'), '请在 1 秒后再试');
  assert.equal(p.banner(), '取件码或手机后 4 位不对，请重新输入。请在 1 秒后再试。');
  assert.equal(p.$('#driver-link').hidden, true);
  await p.advance(1000);
  assert.equal(p.k.state.screen, 'code');
});

test('the countdown reads as minutes and seconds, not a clock time', async () => {
  const p = await openPage({ edge: (e) => { e.state.lockedUntil = e.state.now() + 298000; } });
  assert.equal(p.text('#locked-countdown'), '请在 4 分 58 秒后再试');
  await p.click('#lang-toggle');
  assert.equal(p.text('#locked-countdown'), 'Try again in 4 min 58 s');
});

test('the lock screen offers help in its body', async () => {
  const p = await openPage({ edge: (e) => { e.state.lockedUntil = e.state.now() + 45000; } });
  assert.match(p.text('#locked-help-text'), /工作人员会来帮您/);
  await p.click('#locked-help');
  assert.deepEqual(p.edge.state.helps, ['pickup']);
  assert.equal(p.banner(), '已通知工作人员，请在柜子旁稍候。');
});

test('the waits double up to a minute, never more', async () => {
  const p = await openPage();
  await wrongCodes(p, 10);
  await p.pickup('99999999', '0000'); // the 11th: 60 s
  assert.equal(p.text('#locked-countdown'), '请在 1 分钟后再试');
  assert.equal(p.banner(), '取件码或手机后 4 位不对，请重新输入。请在 60 秒后再试。');
  await p.advance(60000);
  await p.pickup('99999999', '0000'); // the 12th: still 60 s
  assert.equal(p.text('#locked-countdown'), '请在 1 分钟后再试');
  await p.advance(15000);
  assert.equal(p.text('#locked-countdown'), '请在 45 秒后再试');
});

test('keys do nothing while waiting, and a right code waits too', async () => {
  const p = await openPage();
  await wrongCodes(p, 10);
  await p.pickup('99999999', '0000');
  const sent = p.requests('/api/pickup').length;
  await p.tap('12345678');
  await p.key('1');
  assert.equal(p.k.state.entry.code, '');
  assert.equal(p.requests('/api/pickup').length, sent);
});

test('at the end of the countdown the edge is asked, then the right code opens', async () => {
  const p = await openPage();
  await wrongCodes(p, 10);
  await p.pickup('99999999', '0000');
  const infos = p.requests('/api/info').length;
  await p.advance(60000);
  assert.equal(p.requests('/api/info').length, infos + 1);
  assert.equal(p.k.state.screen, 'code');
  assert.equal(p.banner(), '');
  await p.pickup('12345678', '1234');
  assert.equal(p.screen(), 'doors');
});

test('waiting again meanwhile: the countdown starts over from what the edge says', async () => {
  const p = await openPage();
  await wrongCodes(p, 10);
  await p.pickup('99999999', '0000');
  p.edge.state.lockedUntil += 30000; // another attempt elsewhere started a new wait
  await p.advance(60000);
  assert.equal(p.screen(), 'locked');
  assert.equal(p.text('#locked-countdown'), '请在 30 秒后再试');
  await p.advance(30000);
  assert.equal(p.k.state.screen, 'code');
});

test('a pickup refused as locked shows the seconds the edge says', async () => {
  const p = await openPage();
  await p.tap('12345678');
  await p.ok();
  p.edge.state.lockedUntil = p.edge.state.now() + 42000; // the wait began after the page looked
  await p.tap('1234');
  await p.ok();
  assert.equal(p.screen(), 'locked');
  assert.equal(p.text('#locked-countdown'), '请在 42 秒后再试');
  assert.equal(p.banner(), '请在 42 秒后再试。');
});

test('a page opened while the edge waits shows the wait at once', async () => {
  const p = await openPage({ edge: (e) => { e.state.lockedUntil = e.state.now() + 45000; } });
  assert.equal(p.screen(), 'locked');
  assert.equal(p.text('#locked-countdown'), '请在 45 秒后再试');
  assert.equal(p.banner(), '请在 45 秒后再试。');
});
