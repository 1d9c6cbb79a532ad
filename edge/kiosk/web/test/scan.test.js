// A QR scanner at the keypad (screens/pickup.js): a keyboard wedge types the resident's
// payload, larder:v1:{site}:{code}, fast, then Enter. The fake edge's site is courtyard-1.
import assert from 'node:assert/strict';
import test from 'node:test';

import { SCAN_GAP_MS, parseQR } from '../screens/pickup.js';
import { settle } from './fake-clock.js';
import { FakeEvent } from './fake-dom.js';
import { openPage } from './page.js';

// scan types text as a scanner does, every key at once on the fake clock, then Enter.
async function scan(p, text) {
  for (const ch of text) await p.key(ch);
  await p.key('Enter');
}

test('parseQR takes larder:v1:{site}:{8 digits}, optionally :{expires}:{tag}, and nothing else', () => {
  assert.deepEqual(parseQR('larder:v1:courtyard-1:12345678'), { site: 'courtyard-1', code: '12345678', tagged: false });
  assert.deepEqual(parseQR('larder:v1:courtyard-1:12345678:1798225200:0123456789abcdef0123'),
    { site: 'courtyard-1', code: '12345678', tagged: true });
  for (const bad of ['larder:v1:courtyard-1:1234567', 'larder:v1:courtyard-1:123456789',
    'larder:v2:courtyard-1:12345678', 'larder:v1::12345678', 'larder:v1:Courtyard:12345678',
    'larder:v1:a:b:12345678', 'x larder:v1:courtyard-1:12345678', '12345678',
    'larder:v1:courtyard-1:12345678:1798225200', 'larder:v1:courtyard-1:12345678:1798225200:0123456789ABCDEF0123',
    'larder:v1:courtyard-1:12345678:1798225200:0123456789abcdef012', 'larder:v1:courtyard-1:12345678::0123456789abcdef0123']) {
    assert.equal(parseQR(bad), null, bad);
  }
});

test('a scan of this bank\'s payload fills the code and asks for the phone digits; the pickup opens', async () => {
  const p = await openPage();
  await scan(p, 'larder:v1:courtyard-1:12345678');
  assert.equal(p.k.state.screen, 'phone');
  assert.deepEqual(p.k.state.entry, { step: 'factor', code: '12345678', factor: '' });
  assert.equal(p.text('#code-summary'), '取件码：1234 5678');
  assert.equal(p.banner(), '已读取二维码。请输入手机号码后 4 位。');
  assert.equal(p.requests('/api/pickup').length, 0, 'a scan alone sends nothing');
  await p.tap('1234');
  await p.ok();
  assert.equal(p.k.state.screen, 'doors');
  assert.deepEqual(p.requests('/api/pickup').at(-1).body, { code: '12345678', factor: '1234', accept_compromised: false });
});

test('a scan replaces digits typed before it, and works on the phone step too', async () => {
  const p = await openPage();
  await p.tap('999');
  await scan(p, 'larder:v1:courtyard-1:12345678');
  assert.deepEqual(p.k.state.entry, { step: 'factor', code: '12345678', factor: '' });
  await p.tap('12');
  await scan(p, 'larder:v1:courtyard-1:55555555');
  assert.equal(p.k.state.screen, 'phone');
  assert.deepEqual(p.k.state.entry, { step: 'factor', code: '55555555', factor: '' });
});

test('a payload for another bank says so, keeps the entry and counts nothing', async () => {
  const p = await openPage();
  await p.click('#lang-toggle');
  await p.tap('12');
  await scan(p, 'larder:v1:riverside-2:12345678');
  assert.equal(p.k.state.screen, 'code');
  assert.equal(p.banner(), 'This code is for another locker bank. It cannot be used here.');
  assert.deepEqual(p.k.state.entry, { step: 'code', code: '12', factor: '' });
  assert.equal(p.requests('/api/pickup').length, 0);
  assert.equal(p.edge.state.failures, 0);
});

test('a malformed payload is ignored with a message; none of its digits reach the keypad', async () => {
  const p = await openPage();
  await scan(p, 'larder:v1:courtyard-1:1234');
  assert.equal(p.k.state.screen, 'code');
  assert.equal(p.banner(), '无法识别这个二维码，请输入短信里的取件码。');
  assert.deepEqual(p.k.state.entry, { step: 'code', code: '', factor: '' });
  assert.equal(p.requests('/api/pickup').length, 0);
});

test('before /api/info has named the bank a scan cannot be checked, and says so', async () => {
  const p = await openPage({
    edge: (e) => {
      const f = e.fetch;
      e.fetch = (url, init) => String(url).endsWith('/api/info') ? Promise.reject(new TypeError('offline')) : f(url, init);
    }
  });
  assert.equal(p.k.state.site, '');
  await scan(p, 'larder:v1:courtyard-1:12345678');
  assert.equal(p.k.state.screen, 'code');
  assert.match(p.banner(), /现在无法核对二维码/);
  assert.equal(p.k.state.entry.code, '');
});

test('a wrong scanned code is checked with the phone digits and counts like a typed one', async () => {
  const p = await openPage();
  await scan(p, 'larder:v1:courtyard-1:99999999');
  await p.tap('0000');
  await p.ok();
  assert.equal(p.k.state.screen, 'phone');
  assert.match(p.banner(), /取件码或手机后 4 位不对/);
  assert.match(p.banner(), /还可以再试 4 次/);
  assert.deepEqual(p.requests('/api/pickup').at(-1).body, { code: '99999999', factor: '0000', accept_compromised: false });
  assert.equal(p.edge.state.failures, 1);
});

test('a pause ends a scan: a stray letter does not swallow digits typed by hand', async () => {
  const p = await openPage();
  await p.key('a');
  await p.advance(SCAN_GAP_MS + 1);
  assert.equal(p.k.state.scan, null, 'the scan is forgotten');
  for (const ch of '12345678') await p.key(ch);
  assert.equal(p.k.state.entry.code, '12345678');
  await p.key('Enter');
  assert.equal(p.k.state.screen, 'phone', 'Enter is Next again');
  assert.equal(p.banner(), '');
});

test('the Enter that ends a scan is the scan\'s, even with a button focused', async () => {
  const p = await openPage();
  p.$('#help-btn').focus();
  for (const ch of 'larder:v1:courtyard-1:12345678') await p.key(ch);
  // The browser presses a focused button on an Enter whose default is not prevented.
  const enter = new FakeEvent('keydown', { key: 'Enter' });
  p.doc.activeElement.dispatchEvent(enter);
  await settle();
  assert.equal(enter.defaultPrevented, true, 'Help is not pressed');
  assert.equal(p.k.state.screen, 'phone');
  assert.equal(p.k.state.entry.code, '12345678');
});

// The resident page's device-bound payload: larder:v1:{site}:{code}:{expires}:{tag}. The
// fake edge takes tag 0123456789abcdef0123 for code 12345678 until expires.
const TAG = '0123456789abcdef0123';
const tagged = (p, tag) => `larder:v1:courtyard-1:12345678:${Math.floor(p.clock.now() / 1000) + 1800}:${tag || TAG}`;

test('a device-bound payload goes to the edge as it is and opens, with no phone digits', async () => {
  const p = await openPage();
  await p.tap('12');
  const payload = tagged(p);
  await scan(p, payload);
  assert.equal(p.k.state.screen, 'doors');
  assert.deepEqual(p.requests('/api/pickup').at(-1).body, { qr: payload, accept_compromised: false });
  assert.equal(p.requests('/api/pickup').length, 1, 'one request, no phone step');
  assert.deepEqual(p.k.state.entry, { step: 'code', code: '', factor: '' }, 'the typed digits are gone');
  assert.match(p.banner(), /12号门已打开/);
});

test('while the keypad waits, the locked screen takes a device-bound payload and opens', async () => {
  const p = await openPage();
  for (let i = 0; i < 6; i++) await p.pickup('99999999', '0000');
  assert.equal(p.k.state.screen, 'locked');
  const before = p.edge.state.failures;
  for (const ch of '1234') await p.key(ch); // the keypad stays ignored
  assert.equal(p.k.state.screen, 'locked');
  await scan(p, tagged(p));
  assert.equal(p.k.state.screen, 'doors');
  assert.equal(p.edge.state.failures, before, 'the QR pickup counted no wrong code');
  assert.match(p.banner(), /12号门已打开/);
});

test('on the locked screen a plain payload says to wait or scan the order page\'s code, and sends nothing', async () => {
  const p = await openPage();
  for (let i = 0; i < 6; i++) await p.pickup('99999999', '0000');
  const sent = p.requests('/api/pickup').length;
  await scan(p, 'larder:v1:courtyard-1:12345678');
  assert.equal(p.k.state.screen, 'locked');
  assert.match(p.banner(), /扫描订单页面上的二维码/);
  assert.equal(p.requests('/api/pickup').length, sent);
});

test('a device-bound payload the edge refuses says why and counts nothing', async () => {
  const p = await openPage();
  await p.click('#lang-toggle');
  await scan(p, tagged(p, 'ffffffffffffffffffff'));
  assert.equal(p.k.state.screen, 'code');
  assert.equal(p.banner(), 'This QR code does not work here. Please type the code from your text message.');
  await scan(p, `larder:v1:courtyard-1:12345678:${Math.floor(p.clock.now() / 1000) - 1}:${TAG}`);
  assert.equal(p.k.state.screen, 'code');
  assert.equal(p.banner(), 'This QR code has expired. Open your order page again, or type your code.');
  assert.equal(p.edge.state.failures, 0);
  // Another bank's device-bound payload never leaves the page.
  const sent = p.requests('/api/pickup').length;
  await scan(p, `larder:v1:riverside-2:12345678:1798225200:${TAG}`);
  assert.equal(p.banner(), 'This code is for another locker bank. It cannot be used here.');
  assert.equal(p.requests('/api/pickup').length, sent);
});

test('a refused device-bound payload during a wait goes back to the wait', async () => {
  const p = await openPage();
  for (let i = 0; i < 6; i++) await p.pickup('99999999', '0000');
  await scan(p, tagged(p, 'ffffffffffffffffffff'));
  assert.equal(p.k.state.screen, 'locked');
  assert.match(p.banner(), /这个二维码在这里无效/);
});
