// Pickup, step 1 (screens/pickup.js) on the whole page: the keypad, the 8-digit code, a
// wrong code's message and count, the physical keyboard, and idle return to the start.
import assert from 'node:assert/strict';
import test from 'node:test';

import { TIMING } from '../timers.js';
import { openPage } from './page.js';

test('the header shows the site\'s name once the edge knows it, not its id', async () => {
  const p = await openPage({ edge: (e) => { e.state.siteName = '3号楼东门'; } });
  assert.equal(p.text('#site-name'), '站点 3号楼东门');
  await p.click('#lang-toggle');
  assert.equal(p.text('#site-name'), 'Site 3号楼东门');
});

test('the header tells the time at the bank in the site\'s zone, named, and keeps it current', async () => {
  const p = await openPage({ edge: (e) => { e.state.siteName = '3号楼东门'; } }); // Asia/Shanghai
  // The page opens at 2026-11-25 18:00 UTC: 02:00 the next morning in Beijing.
  assert.equal(p.text('#site-time'), '现在 02:00（北京时间）');
  await p.advance(60000);
  assert.equal(p.text('#site-time'), '现在 02:01（北京时间）');
  await p.click('#lang-toggle');
  assert.equal(p.text('#site-time'), 'Now 02:01 (Beijing time)');
});

test('no clock until the edge knows the site\'s zone', async () => {
  const p = await openPage();
  assert.equal(p.text('#site-time'), '');
});

test('the start screen asks for the code in Chinese, with the site name', async () => {
  const p = await openPage();
  assert.equal(p.screen(), 'keypad');
  assert.equal(p.k.state.screen, 'code');
  assert.equal(p.doc.documentElement.lang, 'zh-CN');
  assert.equal(p.text('#keypad-step'), '第 1 步，共 2 步');
  assert.equal(p.text('#keypad-hint'), '请输入短信里的 8 位取件码');
  assert.equal(p.text('#key-ok'), '下一步');
  assert.equal(p.text('#site-name'), '站点 courtyard-1');
  assert.equal(p.$('#driver-link').hidden, false);
  assert.equal(p.banner(), '');
});

test('digits fill the cells and are spoken; Delete and Start over take them back', async () => {
  const p = await openPage();
  await p.tap('123');
  assert.equal(p.$('#digits').querySelectorAll('.cell-filled').length, 3);
  assert.equal(p.$('#digits .sr-only').textContent, '已输入 3 位，共 8 位：1 2 3');
  await p.tap(['delete']);
  assert.equal(p.k.state.entry.code, '12');
  await p.click('#start-over');
  assert.equal(p.k.state.entry.code, '');
  assert.equal(p.$('#digits .sr-only').textContent, '还没有输入，共 8 位');
});

test('Next before 8 digits says how many are needed and stays', async () => {
  const p = await openPage();
  await p.tap('1234');
  await p.ok();
  assert.equal(p.k.state.screen, 'code');
  assert.equal(p.banner(), '请输入全部 8 位数字。');
});

test('a wrong answer: the phone step again with the code kept, the message and the tries left', async () => {
  const p = await openPage();
  await p.pickup('12345678', '0000'); // the right code, the wrong phone digits
  assert.equal(p.k.state.screen, 'phone');
  assert.equal(p.screen(), 'keypad');
  assert.match(p.banner(), /取件码或手机后 4 位不对，请重新输入。/);
  assert.match(p.banner(), /还可以再试 4 次/);
  assert.match(p.banner(), /请再输入一次手机号码后 4 位/);
  assert.deepEqual(p.k.state.entry, { step: 'factor', code: '12345678', factor: '' });
  assert.equal(p.text('#code-summary'), '取件码：1234 5678');
  assert.equal(p.doc.activeElement, p.$('#keypad-title'), 'focus on the heading, where a screen reader starts');
  assert.deepEqual(p.requests('/api/pickup').at(-1).body, { code: '12345678', factor: '0000', accept_compromised: false });
  await p.tap('1234'); // only the phone digits again
  await p.ok();
  assert.deepEqual(p.requests('/api/pickup').at(-1).body, { code: '12345678', factor: '1234', accept_compromised: false });
  assert.equal(p.screen(), 'doors');
});

test('a wrong code: Start over on the phone step clears it, and the count goes down', async () => {
  const p = await openPage();
  await p.pickup('99999999', '0000');
  assert.equal(p.k.state.screen, 'phone');
  await p.key('Escape');
  assert.equal(p.k.state.screen, 'code');
  assert.deepEqual(p.k.state.entry, { step: 'code', code: '', factor: '' });
  await p.pickup('99999999', '0000');
  assert.match(p.banner(), /还可以再试 3 次/, 'the count goes down');
});

test('bad_request from the edge: back to the keypad asking for 8 and 4 digits, no tries counted', async () => {
  // The page sends 8 and 4 digits; make the edge receive a 7-digit code, as it would from
  // a client that lost a digit, to see what the page does with the edge's answer.
  const p = await openPage({
    edge: (e) => {
      const f = e.fetch;
      e.fetch = (url, init) => f(url, Object.assign({}, init, {
        body: init && init.body ? init.body.replace('"code":"12345678"', '"code":"1234567"') : undefined
      }));
    }
  });
  await p.click('#lang-toggle');
  await p.pickup('12345678', '1234');
  assert.equal(p.k.state.screen, 'code');
  assert.equal(p.banner(), 'Please enter the 8-digit code and the last 4 digits of your phone.');
  assert.doesNotMatch(p.banner(), /tries|not right/);
  assert.equal(p.doc.documentElement.lang, 'en', 'the language is kept');
  assert.deepEqual(p.k.state.entry, { step: 'code', code: '', factor: '' });
  assert.equal(p.edge.state.failures, 0);
});

test('a wrong code keeps the language the resident chose', async () => {
  const p = await openPage();
  await p.click('#lang-toggle');
  await p.pickup('99999999', '0000');
  assert.equal(p.doc.documentElement.lang, 'en');
  assert.match(p.banner(), /The code or the phone digits are not right\..*4 more tries/s);
});

test('a physical keyboard: digits, Backspace, Escape and Enter', async () => {
  const p = await openPage();
  for (const ch of '123456780') await p.key(ch);
  assert.equal(p.k.state.entry.code, '12345678', 'stops at 8');
  await p.key('Backspace');
  assert.equal(p.k.state.entry.code, '1234567');
  await p.key('8');
  await p.key('Enter');
  assert.equal(p.k.state.screen, 'phone');
  await p.key('Escape');
  assert.equal(p.k.state.screen, 'code', 'Escape starts over');
  assert.equal(p.k.state.entry.code, '');
  await p.key('5', { ctrlKey: true });
  assert.equal(p.k.state.entry.code, '', 'a shortcut is not a digit');
});

test('a digit typed while a keypad button has the focus lets go of it; Enter on it presses it', async () => {
  const p = await openPage();
  p.$('#help-btn').focus();
  await p.key('1');
  assert.equal(p.k.state.entry.code, '1');
  assert.notEqual(p.doc.activeElement, p.$('#help-btn'));
  p.$('#start-over').focus();
  await p.key('Enter');
  assert.equal(p.k.state.entry.code, '1', 'Enter on a button is that button\'s, not Next');
});

test('keys do nothing off the keypad', async () => {
  const p = await openPage();
  await p.click('#driver-link');
  assert.equal(p.k.state.screen, 'driver-login');
  p.$('#keypad button[data-key="1"]').click();
  assert.equal(p.k.state.entry.code, '');
});

test('idle: a warning, then back to the start, in Chinese, with nothing kept', async () => {
  const p = await openPage();
  await p.click('#lang-toggle');
  await p.tap('1234');
  await p.advance(TIMING.idleMs - TIMING.idleWarnMs + 1000);
  assert.equal(p.$('#idle-warning').hidden, false);
  assert.match(p.text('#idle-text'), /Are you still there\? Going back to the start in 19 seconds\./);
  await p.advance(TIMING.idleWarnMs);
  assert.equal(p.$('#idle-warning').hidden, true);
  assert.equal(p.k.state.entry.code, '');
  assert.equal(p.doc.documentElement.lang, 'zh-CN');
  assert.equal(p.k.state.screen, 'code');
});

test('"I\'m still here" restarts the idle clock', async () => {
  const p = await openPage();
  await p.tap('1234');
  await p.advance(TIMING.idleMs - 5000);
  await p.click('#idle-stay');
  assert.equal(p.$('#idle-warning').hidden, true);
  await p.advance(TIMING.idleMs - 5000);
  assert.equal(p.k.state.entry.code, '1234', 'still there');
});

test('the untouched start screen has no idle clock', async () => {
  const p = await openPage();
  assert.equal(p.k.state.idleDeadline, 0);
});

test('the edge not answering /api/info: the start screen says so', async () => {
  const p = await openPage({ edge: (e) => { e.state.down = true; } });
  assert.equal(p.banner(), '柜子暂时没有响应，请稍后再试。');
});
