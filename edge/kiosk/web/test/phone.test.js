// Pickup, step 2 (screens/phone.js): the last 4 digits of the phone, with the code shown
// for checking; Open sends the attempt and clears the digits at once.
import assert from 'node:assert/strict';
import test from 'node:test';

import { openPage } from './page.js';

async function onPhoneStep() {
  const p = await openPage();
  await p.tap('12345678');
  await p.ok();
  return p;
}

test('8 digits and Next: the phone step, with the code to check', async () => {
  const p = await onPhoneStep();
  assert.equal(p.k.state.screen, 'phone');
  assert.equal(p.screen(), 'keypad', 'same section as the code');
  assert.equal(p.text('#keypad-step'), '第 2 步，共 2 步');
  assert.equal(p.text('#keypad-hint'), '请输入您手机号码的最后 4 位');
  assert.equal(p.text('#digits-label'), '手机号码后 4 位');
  assert.equal(p.$('#code-summary').hidden, false);
  assert.equal(p.text('#code-summary'), '取件码：1234 5678');
  assert.equal(p.text('#key-ok'), '开门');
  assert.equal(p.$('#digits').querySelectorAll('.cell').length, 4);
  assert.equal(p.doc.activeElement, p.$('#key-ok'), 'the focus stays on the key just pressed');
});

test('the phone step in English', async () => {
  const p = await onPhoneStep();
  await p.click('#lang-toggle');
  assert.equal(p.text('#keypad-hint'), 'Enter the last 4 digits of your phone number');
  assert.equal(p.text('#code-summary'), 'Pickup code: 1234 5678');
  assert.equal(p.text('#key-ok'), 'Open');
});

test('Delete on an empty phone step goes back to the code, which is kept', async () => {
  const p = await onPhoneStep();
  await p.tap('12');
  await p.tap(['delete', 'delete']);
  assert.equal(p.k.state.screen, 'phone');
  await p.tap(['delete']);
  assert.equal(p.k.state.screen, 'code');
  assert.equal(p.k.state.entry.code, '12345678');
  assert.equal(p.$('#code-summary').hidden, true);
  assert.equal(p.text('#key-ok'), '下一步');
});

test('Open before 4 digits says how many are needed; nothing is sent', async () => {
  const p = await onPhoneStep();
  await p.tap('12');
  await p.ok();
  assert.equal(p.k.state.screen, 'phone');
  assert.equal(p.banner(), '请输入全部 4 位数字。');
  assert.equal(p.requests('/api/pickup').length, 0);
});

test('Open sends code and phone digits, and the digits leave the page at once', async () => {
  const p = await onPhoneStep();
  let seenWhileBusy = null;
  const pickup = p.k.api.pickup;
  p.k.api.pickup = (...args) => {
    seenWhileBusy = { screen: p.screen(), entry: { ...p.k.state.entry }, text: p.doc.body.innerText, busy: p.text('#busy-text') };
    return pickup(...args);
  };
  await p.tap('1234');
  await p.ok();
  assert.deepEqual(p.requests('/api/pickup').at(-1).body, { code: '12345678', factor: '1234', accept_compromised: false });
  assert.equal(seenWhileBusy.screen, 'busy');
  assert.equal(seenWhileBusy.busy, '正在开门，请稍候…');
  assert.deepEqual(seenWhileBusy.entry, { step: 'code', code: '', factor: '' });
  assert.doesNotMatch(seenWhileBusy.text, /1234 5678|12345678/);
  assert.equal(p.k.state.screen, 'doors');
});

test('keys pressed while the pickup is on its way do nothing', async () => {
  const p = await onPhoneStep();
  let release;
  p.k.api.pickup = () => new Promise((resolve) => { release = resolve; });
  await p.tap('1234');
  await p.ok();
  assert.equal(p.k.state.screen, 'busy');
  await p.key('5');
  assert.equal(p.k.state.entry.code, '');
  release({ ok: false, status: 401, body: { error: 'wrong_code', attempts_left: 2 }, code: 'wrong_code' });
  await p.advance(0);
  assert.equal(p.k.state.screen, 'phone', 'the phone step again, the code kept');
  assert.deepEqual(p.k.state.entry, { step: 'factor', code: '12345678', factor: '' }, 'the 5 pressed while busy went nowhere');
  assert.match(p.banner(), /还可以再试 2 次/);
});
