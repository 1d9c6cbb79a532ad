// Door open (screens/door-open.js): after a pickup the page names each door in words,
// follows the doors as the resident empties them, and copes with a compromised order, a
// hardware fault, a lost session and a silent edge.
import assert from 'node:assert/strict';
import test from 'node:test';

import { TIMING } from '../timers.js';
import { openPage } from './page.js';

test('the doors screen names each door and where it is, in both languages', async () => {
  const p = await openPage();
  await p.pickup('12345678', '1234');
  assert.equal(p.screen(), 'doors');
  assert.equal(p.banner(), '12号门已打开：最下排，左边15号门已打开：中间排，右边');
  assert.equal(p.$('#announcer').className, 'banner banner-door banner-on');
  const items = p.$('#door-list').querySelectorAll('li');
  assert.equal(items.length, 2);
  assert.equal(items[0].querySelector('.door-name').textContent, '12号门');
  assert.equal(items[0].querySelector('.door-where').textContent, '最下排，左边');
  assert.equal(items[0].querySelector('.door-state').textContent, '已打开，请取出物品');
  assert.equal(p.text('#doors-ref'), '订单尾号 A1B2');
  assert.equal(p.$('#doors-compromised').hidden, true);
  await p.click('#lang-toggle');
  assert.equal(p.banner(), 'Door 12 is open — bottom row, leftDoor 15 is open — middle row, right');
  assert.equal(items.length, 2);
  assert.match(p.text('#door-list'), /Door 12bottom row, leftOpen: please take your items/);
});

test('the doors follow the session until every door is closed and empty', async () => {
  const p = await openPage();
  await p.pickup('12345678', '1234');
  await p.advance(TIMING.pollMs * 3);
  assert.equal(p.screen(), 'doors');
  assert.match(p.text('#door-list'), /12号门最下排，左边已关好，已取空/);
  await p.advance(TIMING.pollMs * 2);
  assert.equal(p.screen(), 'thanks');
  assert.ok(p.requests('/api/sessions/sess-1').length >= 5);
});

test('a compromised order: the choice first; Open anyway resends with accept_compromised', async () => {
  const p = await openPage();
  await p.pickup('11111111', '1111');
  assert.equal(p.screen(), 'compromised');
  assert.equal(p.text('#compromised-body'), '这份订单有 42 分钟不在安全温度内，吃了可能不安全。');
  assert.equal(p.doc.activeElement, p.$('#compromised-title'));
  await p.click('#open-anyway');
  assert.deepEqual(p.requests('/api/pickup').at(-1).body, { code: '11111111', factor: '1111', accept_compromised: true });
  assert.equal(p.screen(), 'doors');
  assert.equal(p.$('#doors-compromised').hidden, false);
  assert.match(p.banner(), /30号门已打开：中间排，中间提醒：这份订单可能已经不能吃了，请不要食用。/);
  assert.equal(p.k.state.pending, null, 'the digits are forgotten');
});

test('a compromised order left in the locker', async () => {
  const p = await openPage();
  await p.pickup('11111111', '1111');
  await p.click('#leave-it');
  assert.equal(p.screen(), 'message');
  assert.equal(p.text('#message-title'), '订单留在柜子里');
  assert.equal(p.requests('/api/pickup').length, 1);
  assert.equal(p.k.state.pending, null);
});

test('answers that end the attempt show their message', async () => {
  const cases = [
    ['22222222', '2222', '取件时间已过'],
    ['33333333', '3333', '订单已经取走了'],
    ['55555555', '5555', '订单还没有放进柜子'],
    ['44444444', '4444', '柜门没有打开']
  ];
  for (const [code, factor, title] of cases) {
    const p = await openPage();
    await p.pickup(code, factor);
    assert.equal(p.screen(), 'message', code);
    assert.equal(p.text('#message-title'), title, code);
    assert.equal(p.banner(), p.text('#message-body'), 'the banner says the body');
    await p.click('.screen[data-screen="message"] button[data-action="home"]');
    assert.equal(p.k.state.screen, 'code');
  }
});

test('the edge down during a pickup: the network message', async () => {
  const p = await openPage();
  await p.tap('12345678');
  await p.ok();
  await p.tap('1234');
  p.edge.state.down = true;
  await p.ok();
  assert.equal(p.text('#message-title'), '柜子暂时没有响应');
});

test('polls failing three times say the page is reconnecting, and stop saying it after', async () => {
  const p = await openPage();
  await p.pickup('12345678', '1234');
  p.edge.state.down = true;
  await p.advance(TIMING.pollMs * 2);
  assert.match(p.banner(), /12号门已打开/);
  await p.advance(TIMING.pollMs);
  assert.equal(p.banner(), '正在重新连接柜子…');
  p.edge.state.down = false;
  await p.advance(TIMING.pollMs);
  assert.equal(p.banner(), '');
  assert.equal(p.screen(), 'doors');
});

test('a session the edge no longer knows goes back to the start', async () => {
  const p = await openPage();
  await p.pickup('12345678', '1234');
  p.edge.state.sessions.clear();
  await p.advance(TIMING.pollMs);
  assert.equal(p.k.state.screen, 'code');
});

test('doors that never change: back to the start after the quiet time', async () => {
  const p = await openPage();
  await p.pickup('12345678', '1234');
  p.edge.state.sessions.get('sess-1').polls = -100000; // the doors stay open
  await p.advance(TIMING.doorsQuietMs - 1000);
  assert.equal(p.screen(), 'doors');
  await p.advance(1000);
  assert.equal(p.k.state.screen, 'code');
});
