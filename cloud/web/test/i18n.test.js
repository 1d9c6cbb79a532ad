// Every string a resident or driver can see exists in Chinese and in English, so that no
// page ever shows a raw key: the dictionaries of the resident and driver pages
// (cloud/web/assets, read by running each script up to its i18n() call), the kiosk's
// edge/kiosk/web/i18n.js, and the ops page, which is English only and has none. Keys the
// scripts build at run time ('st_' + state, 'ex_' + reason, ...) are checked against the
// values the server sends, read from its Go source. Run: node --test cloud/web/test/
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import test from 'node:test';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';

import * as kiosk from '../../../edge/kiosk/web/i18n.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const read = (p) => fs.readFileSync(path.join(ROOT, p), 'utf8');
const all = (src, re) => [...src.matchAll(re)].map((m) => m[1]);

// dictionary runs a page script until it hands its strings to Larder.i18n.
function dictionary(file) {
  const stop = new Error('dictionary read');
  let strings = null;
  const Larder = { i18n(s) { strings = s; throw stop; } };
  try {
    vm.runInNewContext(read(file), { globalThis: { Larder }, document: {}, location: {} });
  } catch (e) {
    if (e !== stop) throw e;
  }
  assert.ok(strings, `${file} hands no dictionary to i18n()`);
  return strings;
}

const placeholders = (s) => all(String(s), /\{(\w+)\}/g).sort();

function complete(name, strings) {
  assert.deepEqual(Object.keys(strings).sort(), ['en', 'zh'], `${name}: the languages`);
  assert.deepEqual(Object.keys(strings.zh).sort(), Object.keys(strings.en).sort(), `${name}: the same keys in zh and en`);
  for (const key of Object.keys(strings.zh)) {
    for (const lang of ['zh', 'en']) {
      assert.equal(typeof strings[lang][key], 'string', `${name}: ${lang}.${key}`);
      assert.ok(strings[lang][key].trim() !== '', `${name}: ${lang}.${key} is empty`);
    }
    assert.deepEqual(placeholders(strings.zh[key]), placeholders(strings.en[key]), `${name}: placeholders of ${key}`);
  }
}

// Values the server sends, from its Go source.
const states = all(read('cloud/model.go'), /State\w+\s+OrderState = "(\w+)"/g);
const zones = all(read('protocol/inventory.go'), /Zone\w+\s+Zone = "(\w+)"/g);
const residentGo = read('cloud/web/resident.go');
const extendReasons = all(residentGo, /ExtendOffer\{Reason: "(\w+)"\}/g);
const rows = all(residentGo.slice(residentGo.indexOf('func row(')), /return "(\w+)"/g).filter(Boolean);

test('the server values the pages turn into keys were found', () => {
  assert.ok(states.includes('picked_up') && states.length >= 7, `order states ${states}`);
  assert.deepEqual(zones.sort(), ['ambient', 'chilled', 'cool', 'frozen']);
  assert.ok(extendReasons.includes('closed') && extendReasons.length >= 4, `extend reasons ${extendReasons}`);
  assert.deepEqual(rows.sort(), ['high', 'low', 'middle']);
});

for (const page of [
  { name: 'resident', js: 'cloud/web/assets/resident.js', html: 'cloud/web/assets/resident.html',
    built: { st_: states, zone_: zones, row_: rows, ex_: extendReasons } },
  { name: 'driver', js: 'cloud/web/assets/driver.js', html: 'cloud/web/assets/driver.html',
    built: { zones_: zones } },
]) {
  test(`${page.name} page: every key in zh and en, and every key it uses`, () => {
    const strings = dictionary(page.js);
    complete(page.name, strings);
    const js = read(page.js);
    const used = new Set([...all(js, /\bt\('(\w+)'(?!\s*\+)/g), ...all(read(page.html), /data-i18n="(\w+)"/g)]);
    for (const [prefix, values] of Object.entries(page.built)) {
      assert.match(js, new RegExp(`t\\('${prefix}' \\+`), `${page.name} builds ${prefix} keys`);
      for (const v of values) used.add(prefix + v);
    }
    // The driver page's problem reasons are its own list.
    const reasons = js.match(/const REASONS = \[([^\]]*)\]/);
    if (reasons) for (const r of all(reasons[1], /'(\w+)'/g)) used.add('reasons_' + r);
    for (const key of used) {
      assert.ok(key in strings.zh && key in strings.en, `${page.name} uses ${key}, which is not in both languages`);
    }
  });
}

test('kiosk: every key in zh and en', () => {
  complete('kiosk', kiosk.STRINGS);
  assert.equal(kiosk.t('zh', 'no_such_key'), '', 'a missing key shows nothing, never the key');
});

test('ops page: English only, no dictionary to miss a key', () => {
  const js = read('cloud/web/assets/ops.js');
  assert.doesNotMatch(js, /\bi18n\(/);
  assert.doesNotMatch(js, /\bt\('/);
});

test('a missing string never shows its key on the resident and driver pages', () => {
  const src = read('cloud/web/assets/common.js');
  const root = { localStorage: { getItem: () => null, setItem() {} } };
  const context = { globalThis: root, document: { documentElement: {} }, console: { error() {} }, localStorage: root.localStorage };
  root.document = context.document;
  vm.runInNewContext(src, context);
  const L = root.Larder.i18n({ zh: { a: '甲' }, en: { a: 'A', b: 'B' } }, 'k', 'zh');
  assert.equal(L.t('a'), '甲');
  assert.equal(L.t('b'), 'B', 'the other language before nothing');
  assert.equal(L.t('ex_nope'), '');
});
