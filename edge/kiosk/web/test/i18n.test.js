// Static checks of the kiosk page: the dictionary is complete in both languages, the page
// loads nothing from outside (the locker has no internet), the markup and script agree, the
// palette keeps AAA contrast, and the pure helpers behave. Run: node --test edge/kiosk/web/test/
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import test from 'node:test';
import { fileURLToPath } from 'node:url';

import { classify } from '../api.js';
import * as i18n from '../i18n.js';
import { emptyEntry, entryComplete, keypadReduce } from '../keypad.js';
import { SCREENS } from '../machine.js';
import { groupManifest } from '../screens/driver.js';

const K = { ...i18n, classify, emptyEntry, entryComplete, keypadReduce, groupManifest };
const WEB = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const read = (name) => fs.readFileSync(path.join(WEB, name), 'utf8');
const html = read('index.html');
// The page's scripts: every .js file served with it (test/ is not).
const scripts = fs.readdirSync(WEB, { recursive: true })
  .filter((name) => name.endsWith('.js') && !name.split(path.sep).includes('test')).sort();
const js = scripts.map(read).join('\n');
const css = read('style.css');

const placeholders = (s) => [...String(s).matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();

test('every key exists in zh and en, non-empty, with the same placeholders', () => {
  const zh = K.STRINGS.zh;
  const en = K.STRINGS.en;
  assert.deepEqual(Object.keys(zh).sort(), Object.keys(en).sort());
  for (const key of Object.keys(zh)) {
    for (const [lang, table] of [['zh', zh], ['en', en]]) {
      assert.equal(typeof table[key], 'string', `${lang}.${key} is a string`);
      assert.ok(table[key].trim().length > 0, `${lang}.${key} is not empty`);
    }
    assert.deepEqual(placeholders(zh[key]), placeholders(en[key]), `placeholders of ${key}`);
  }
});

test('Chinese strings are Chinese and English strings are not', () => {
  const han = /[\u4e00-\u9fff]/;
  // Keys whose text is deliberately the other language's name or a code.
  const crossing = new Set(['langToggle', 'langToggleLang', 'placeSep', 'stepOf']);
  for (const [key, s] of Object.entries(K.STRINGS.en)) {
    if (key === 'langToggle') continue;
    assert.ok(!han.test(s), `en.${key} has Chinese characters: ${s}`);
  }
  for (const [key, s] of Object.entries(K.STRINGS.zh)) {
    if (crossing.has(key)) continue;
    assert.ok(han.test(s), `zh.${key} has no Chinese characters: ${s}`);
  }
});

test('every key the page and the script use is in the dictionary', () => {
  const used = new Set();
  for (const m of html.matchAll(/data-i18n="([^"]+)"/g)) used.add(m[1]);
  // L('key' ...), parts lists ['key'], {key: 'key'} and banner(kind, ['key'])
  for (const m of js.matchAll(/\bL\('([A-Za-z_]+)'/g)) used.add(m[1]);
  for (const m of js.matchAll(/\bkey: '([A-Za-z_]+)'/g)) used.add(m[1]);
  for (const m of js.matchAll(/banner\('\w+', \['([A-Za-z_]+)'/g)) used.add(m[1]);
  for (const m of js.matchAll(/showMessage\(k, '\w+', '([A-Za-z_]+)', '([A-Za-z_]+)'/g)) {
    used.add(m[1]);
    used.add(m[2]);
  }
  for (const m of html.matchAll(/data-reason="(\w+)"/g)) used.add('reason_' + m[1]);
  assert.ok(used.size > 40, `found only ${used.size} keys in use: the extraction regexps broke`);
  for (const key of used) assert.ok(key in K.STRINGS.zh, `missing key ${key}`);
});

test('index.html, the scripts and style.css reference nothing outside the locker', () => {
  assert.ok(scripts.includes('app.js') && scripts.includes(path.join('screens', 'pickup.js')), `scripts found: ${scripts}`);
  for (const [name, text] of [['index.html', html], ...scripts.map((n) => [n, read(n)]), ['style.css', css]]) {
    assert.doesNotMatch(text, /https?:\/\//i, `${name} has an http(s) URL`);
    assert.doesNotMatch(text, /(src|href|action)\s*=\s*["']?\/\//i, `${name} has a protocol-relative URL`);
    assert.doesNotMatch(text, /@import/i, `${name} imports a stylesheet`);
  }
  assert.doesNotMatch(css, /url\(/i, 'style.css loads no fonts or images');
  // Every other file served with the page, too (the SVG namespace is a name, not a fetch).
  for (const name of fs.readdirSync(WEB, { recursive: true })) {
    const full = path.join(WEB, name);
    if (name.split(path.sep).includes('test') || !fs.statSync(full).isFile()) continue;
    const text = fs.readFileSync(full, 'utf8').replaceAll('xmlns="http://www.w3.org/2000/svg"', '');
    assert.doesNotMatch(text, /https?:\/\//i, `${name} has an http(s) URL`);
  }
  // Every local asset the page names is in this folder.
  for (const m of html.matchAll(/\b(?:src|href)="([^"]+)"/g)) {
    if (m[1].startsWith('data:')) continue;
    assert.ok(fs.existsSync(path.join(WEB, m[1])), `index.html names ${m[1]}, which is missing`);
  }
  assert.match(html, /<html lang="zh-CN">/, 'Chinese by default');
  const viewport = html.match(/<meta name="viewport" content="([^"]*)"/);
  assert.ok(viewport, 'has a viewport meta');
  assert.doesNotMatch(viewport[1], /user-scalable\s*=\s*no|maximum-scale/i, 'zoom is not disabled');
});

test('every #id the script looks up is in index.html', () => {
  const ids = new Set([...html.matchAll(/\bid="([^"]+)"/g)].map((m) => m[1]));
  const wanted = new Set([...js.matchAll(/\$\('#([\w-]+)'\)/g)].map((m) => m[1]));
  assert.ok(wanted.size > 20);
  for (const id of wanted) assert.ok(ids.has(id), `#${id} is missing from index.html`);
  const screens = [...html.matchAll(/data-screen="([\w-]+)"/g)].map((m) => m[1]);
  for (const { section } of Object.values(SCREENS)) {
    assert.ok(screens.includes(section), `screen ${section} is missing from index.html`);
  }
});

// WCAG relative luminance and contrast ratio.
function luminance(hex) {
  const v = hex.replace('#', '');
  const c = [0, 2, 4].map((i) => parseInt(v.slice(i, i + 2), 16) / 255)
    .map((x) => (x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4));
  return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
}
function contrast(a, b) {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}

test('palette pairs reach 7:1 (WCAG AAA)', () => {
  assert.ok(Math.abs(contrast('#ffffff', '#000000') - 21) < 1e-9);
  const vars = Object.fromEntries([...css.matchAll(/--c-([\w-]+):\s*(#[0-9a-fA-F]{6})/g)].map((m) => [m[1], m[2]]));
  const pairs = [
    ['text', 'bg'], ['muted', 'bg'], ['text', 'cell-bg'], ['muted', 'cell-bg'],
    ['key-text', 'key'], ['on-primary', 'primary'], ['on-help', 'help'],
    ['error-text', 'error-bg'], ['ok-text', 'ok-bg'], ['door-text', 'door-bg'], ['info-text', 'info-bg'],
    ['error-text', 'bg'], ['primary', 'bg']
  ];
  for (const [fg, bg] of pairs) {
    assert.ok(vars[fg] && vars[bg], `palette has --c-${fg} and --c-${bg}`);
    const r = contrast(vars[fg], vars[bg]);
    assert.ok(r >= 7, `--c-${fg} on --c-${bg} is ${r.toFixed(2)}:1, below 7:1`);
  }
  // The focus ring's dark outline must stand out against the page (non-text, 3:1).
  assert.ok(contrast(vars.line, vars.bg) >= 3);
  assert.ok(contrast(vars.focus, vars.key) >= 3, 'focus halo visible on the dark keys');
});

test('t fills placeholders and falls back', () => {
  assert.equal(K.t('en', 'doorOpenBanner', { n: 12 }), 'Door 12 is open');
  assert.equal(K.t('zh', 'doorOpenBanner', { n: 12 }), '12号门已打开');
  assert.equal(K.t('fr', 'help'), K.STRINGS.zh.help, 'unknown language → Chinese');
  assert.equal(K.t('en', 'no_such_key'), '', 'a missing key shows nothing, never the key');
  assert.equal(K.t('en', 'attemptsLeft', {}), K.STRINGS.en.attemptsLeft, 'missing param stays visible');
});

test('formatCountdown says minutes and seconds in words, not a clock time', () => {
  const cases = [[298, '4 分 58 秒', '4 min 58 s'], [299.2, '5 分钟', '5 min'], [61, '1 分 1 秒', '1 min 1 s'],
    [9, '9 秒', '9 s'], [0, '0 秒', '0 s'], [-4, '0 秒', '0 s'], [undefined, '0 秒', '0 s']];
  for (const [got, zh, en] of cases) {
    assert.equal(K.formatCountdown(got, 'zh'), zh, String(got));
    assert.equal(K.formatCountdown(got, 'en'), en, String(got));
  }
});

test('formatClock names the zone as the SMS does', () => {
  const at = Date.UTC(2026, 11, 4, 10, 30);
  assert.equal(K.formatClock(at, 'Asia/Shanghai', 'zh'), '现在 18:30（北京时间）');
  assert.equal(K.formatClock(at, 'Asia/Tokyo', 'en'), 'Now 19:30 (UTC+9)');
  assert.equal(K.formatClock(at, 'UTC', 'en'), 'Now 10:30 (UTC)');
  assert.equal(K.formatClock(at, 'Mars/Olympus', 'en'), '', 'an unknown zone shows no clock');
  assert.equal(K.formatClock(at, '', 'en'), '');
});

test('doorPlace strips the door number the sentence already says', () => {
  const d = { number: 12, where_en: 'door 12, bottom row, left', where_zh: '12号门，最下排，左边' };
  assert.equal(K.doorPlace(d, 'en'), 'bottom row, left');
  assert.equal(K.doorPlace(d, 'zh'), '最下排，左边');
  assert.equal(K.doorSentence('en', d), 'Door 12 is open — bottom row, left');
  assert.equal(K.doorSentence('zh', d), '12号门已打开：最下排，左边');
  // Other shapes are shown as they come; a bare number adds nothing.
  assert.equal(K.doorPlace({ number: 3, where_en: 'top row, right' }, 'en'), 'top row, right');
  assert.equal(K.doorPlace({ number: 3, where_en: 'door 3' }, 'en'), '');
  assert.equal(K.doorPlace({ number: 3, where_en: 'door 31, top row' }, 'en'), 'door 31, top row');
  assert.equal(K.doorPlace({ number: 4, where_en: 'row 2' }, 'zh'), 'row 2', 'falls back to English');
  assert.equal(K.doorSentence('en', { number: 5 }), 'Door 5 is open');
});

test('keypadReduce walks code then factor', () => {
  let e = K.emptyEntry();
  for (const k of '123456789') e = K.keypadReduce(e, k);
  assert.deepEqual(e, { step: 'code', code: '12345678', factor: '' }, 'code stops at 8 digits');
  e = K.keypadReduce(e, 'x');
  assert.equal(e.code, '12345678', 'non-digits ignored');
  e = K.keypadReduce(e, 'next');
  assert.equal(e.step, 'factor');
  for (const k of '98765') e = K.keypadReduce(e, k);
  assert.equal(e.factor, '9876', 'factor stops at 4 digits');
  assert.ok(K.entryComplete(e));
  for (let i = 0; i < 4; i++) e = K.keypadReduce(e, 'delete');
  assert.deepEqual(e, { step: 'factor', code: '12345678', factor: '' });
  e = K.keypadReduce(e, 'delete');
  assert.deepEqual(e, { step: 'code', code: '12345678', factor: '' }, 'delete on empty factor goes back');
  e = K.keypadReduce(e, 'delete');
  assert.equal(e.code, '1234567');
  e = K.keypadReduce(e, 'next');
  assert.equal(e.step, 'code', 'next needs all 8 digits');
  assert.deepEqual(K.keypadReduce(e, 'clear'), K.emptyEntry());
  const before = { step: 'code', code: '1', factor: '' };
  K.keypadReduce(before, '2');
  assert.equal(before.code, '1', 'input entry is not mutated');
});

test('classify maps replies to contract codes', () => {
  const cases = [
    [401, { error: 'wrong_code', attempts_left: 3 }, 'wrong_code'],
    [423, { error: 'locked' }, 'locked'],
    [423, {}, 'locked'],
    [410, {}, 'expired'],
    [409, { error: 'compromised' }, 'compromised'],
    [503, { error: 'hardware' }, 'hardware'],
    [503, {}, 'network'],
    [502, {}, 'network'],
    [0, {}, 'network'],
    [401, {}, 'unauthorized'],
    [500, {}, 'unknown'],
    [500, null, 'unknown']
  ];
  for (const [status, body, want] of cases) {
    assert.equal(K.classify(status, body), want, `${status} ${JSON.stringify(body)}`);
  }
});

test('groupManifest splits orders by state and ignores junk', () => {
  const g = K.groupManifest({ orders: [{ state: 'reserved' }, { state: 'loaded' }, { state: 'expired' }, { state: 'weird' }, null] });
  assert.equal(g.reserved.length, 1);
  assert.equal(g.loaded.length, 1);
  assert.equal(g.expired.length, 1);
  assert.deepEqual(K.groupManifest(null), { reserved: [], loaded: [], expired: [] });
});
