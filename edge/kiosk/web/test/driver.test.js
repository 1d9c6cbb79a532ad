// Driver mode (screens/driver.js): sign in, the manifest, loading a door, a problem with a
// door, taking an expired order back, signing out, and the ways a session ends.
import assert from 'node:assert/strict';
import test from 'node:test';

import { TIMING } from '../timers.js';
import { openPage } from './page.js';

async function signIn(credential) {
  const p = await openPage();
  await p.click('#driver-link');
  p.$('#credential').value = credential === undefined ? 'DRIVER-OK' : credential;
  await p.click('#driver-login-form button[type="submit"]');
  return p;
}

const button = (p, focus) => p.$('#manifest').querySelectorAll('button[data-focus]').find((b) => b.dataset.focus === focus);

test('the driver link opens sign-in with the focus in the credential field', async () => {
  const p = await openPage();
  await p.click('#driver-link');
  assert.equal(p.screen(), 'driver-login');
  assert.equal(p.doc.activeElement, p.$('#credential'));
  assert.equal(p.$('#driver-link').hidden, true);
});

test('sign-in refusals say why and keep the sign-in screen', async () => {
  const cases = [['', '请先扫描或输入凭证。'], ['nope', '凭证无效，请重新扫描。'], ['DRIVER-OLD', '凭证已过期，请在配送员页面重新获取。']];
  for (const [credential, said] of cases) {
    const p = await signIn(credential);
    assert.equal(p.screen(), 'driver-login', credential);
    assert.equal(p.banner(), said, credential);
    assert.equal(p.$('#credential').value, '', 'the credential does not stay on screen');
  }
});

test('a QR scanner typing while the focus is elsewhere lands in the credential field', async () => {
  const p = await openPage();
  await p.click('#driver-link');
  p.$('#lang-toggle').focus();
  await p.key('D');
  assert.equal(p.doc.activeElement, p.$('#credential'));
});

test('signed in: the manifest, grouped as the driver works', async () => {
  const p = await signIn();
  assert.equal(p.screen(), 'driver');
  assert.deepEqual(p.requests('/api/driver/login').at(-1).body, { credential: 'DRIVER-OK' });
  assert.equal(p.text('#driver-who'), '配送员 drv_42');
  const heads = p.$('#manifest').querySelectorAll('h2').map((h) => h.textContent);
  assert.deepEqual(heads, ['待装货（2）', '过期待取回（1）', '已装货（1）']);
  assert.match(p.text('#manifest'), /订单 ord_9QX2LM冷冻 · 无障碍：低位柜门/);
  assert.equal(button(p, 'open:ord_7F3K2A:12').textContent, '打开12号门', 'an open button per door to load');
  assert.equal(button(p, 'problem:ord_7F3K2A:12').textContent, '12号门有问题');
  assert.equal(button(p, 'return:ord_OLD001').textContent, '取回这份订单', 'a return button per expired order');
});

test('load: the door opens, the banner names it, the order moves to loaded', async () => {
  const p = await signIn();
  button(p, 'open:ord_7F3K2A:12').click();
  await p.advance(0);
  assert.deepEqual(p.requests('/api/driver/open').at(-1).body, { order: 'ord_7F3K2A', compartment: 12 });
  assert.equal(p.banner(), '12号门已打开：最下排，左边请放入货物，然后关好柜门。');
  assert.match(p.$('#manifest .group-loaded').innerText, /ord_7F3K2A/);
  assert.deepEqual(p.$('#manifest').querySelectorAll('h2').map((h) => h.textContent), ['待装货（1）', '过期待取回（1）', '已装货（2）']);
});

test('the problem button: the question, then the order moves to another door', async () => {
  const p = await signIn();
  button(p, 'problem:ord_7F3K2A:12').click();
  await p.advance(0);
  assert.equal(p.screen(), 'driver-problem');
  assert.equal(p.text('#problem-title'), '12号门有什么问题？');
  assert.equal(p.doc.activeElement, p.$('#problem-title'));
  await p.click('[data-reason="jammed"]');
  assert.equal(p.screen(), 'driver');
  assert.deepEqual(p.requests('/api/driver/problem').at(-1).body, { order: 'ord_7F3K2A', compartment: 12, reason: 'jammed' });
  assert.equal(p.banner(), '请改用30号门，已经打开了：中间排，中间');
});

test('a problem with no free door in the zone says to take the order back', async () => {
  const p = await signIn();
  button(p, 'problem:ord_9QX2LM:3').click();
  await p.click('[data-reason="full"]');
  assert.equal(p.banner(), '这个温区没有空柜格了。请把订单带回，并联系运营人员。');
});

test('Cancel on the problem question changes nothing', async () => {
  const p = await signIn();
  button(p, 'problem:ord_7F3K2A:12').click();
  await p.click('#problem-cancel');
  assert.equal(p.screen(), 'driver');
  assert.equal(p.requests('/api/driver/problem').length, 0);
});

test('take an expired order back: its doors open and are named', async () => {
  const p = await signIn();
  button(p, 'return:ord_OLD001').click();
  await p.advance(0);
  assert.deepEqual(p.requests('/api/driver/return').at(-1).body, { order: 'ord_OLD001' });
  assert.equal(p.banner(), '请取出过期订单，然后关门：7号门已打开：中间排，左边');
});

test('sign out: back to the start, told so, and the edge forgets the token', async () => {
  const p = await signIn();
  await p.click('#driver-logout');
  assert.equal(p.k.state.screen, 'code');
  assert.equal(p.banner(), '已退出配送员模式。');
  assert.equal(p.requests('/api/driver/logout').length, 1);
  assert.equal(p.edge.state.tokens.size, 0);
  assert.equal(p.k.state.driver, null);
});

test('the manifest refreshes on its own', async () => {
  const p = await signIn();
  const reads = p.requests('/api/driver/manifest').length;
  await p.advance(TIMING.manifestPollMs);
  assert.equal(p.requests('/api/driver/manifest').length, reads + 1);
});

test('a token the edge no longer takes: back to sign-in with the reason', async () => {
  const p = await signIn();
  p.edge.state.tokens.clear();
  await p.advance(TIMING.manifestPollMs);
  assert.equal(p.screen(), 'driver-login');
  assert.equal(p.banner(), '登录已过期，请重新扫描凭证。');
  assert.equal(p.requests('/api/driver/logout').length, 0, 'no logout call with a dead token');
});

test('idle: the driver is signed out after the driver idle time, with a warning first', async () => {
  const p = await signIn();
  await p.advance(TIMING.driverIdleMs - TIMING.idleWarnMs + 1000);
  assert.match(p.text('#idle-text'), /还在吗？19 秒后退出配送员模式。/);
  assert.equal(p.screen(), 'driver');
  await p.advance(TIMING.idleWarnMs);
  assert.equal(p.screen(), 'driver-login');
  assert.equal(p.banner(), '长时间没有操作，已退出配送员模式。');
  assert.equal(p.requests('/api/driver/logout').length, 1);
});

test('a manifest refresh that changes the list keeps the driver\'s place', async () => {
  const p = await signIn();
  button(p, 'open:ord_9QX2LM:3').focus();
  p.edge.state.orders[0].state = 'loaded'; // someone else loaded ord_7F3K2A
  await p.advance(TIMING.manifestPollMs);
  assert.deepEqual(p.$('#manifest').querySelectorAll('h2').map((h) => h.textContent), ['待装货（1）', '过期待取回（1）', '已装货（2）']);
  assert.equal(p.doc.activeElement.dataset.focus, 'open:ord_9QX2LM:3');
  assert.ok(p.$('#manifest').contains(p.doc.activeElement), 'the focus is on the new button, not a removed one');
});
