// The state machine's table (machine.js): every screen exists in index.html, every event
// leads to a known screen, the flows a person walks are in the table, and events a screen
// does not take are refused.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import test from 'node:test';
import { fileURLToPath } from 'node:url';

import { SCREENS, START, TRANSITIONS, sectionOf, transition } from '../machine.js';

const WEB = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const html = fs.readFileSync(path.join(WEB, 'index.html'), 'utf8');
const js = fs.readdirSync(WEB, { recursive: true })
  .filter((name) => name.endsWith('.js') && !name.split(path.sep).includes('test'))
  .map((name) => fs.readFileSync(path.join(WEB, name), 'utf8')).join('\n');

test('every state has a row, a section in index.html and known rules', () => {
  const sections = new Set([...html.matchAll(/<section[^>]*data-screen="([\w-]+)"/g)].map((m) => m[1]));
  assert.ok(sections.size >= 10, `found ${sections.size} sections`);
  for (const [name, s] of Object.entries(SCREENS)) {
    assert.ok(TRANSITIONS[name], `${name} has a row`);
    assert.ok(sections.has(s.section), `${name}: section ${s.section} is in index.html`);
    assert.ok(['resident', 'driver', 'own'].includes(s.idle), `${name}: idle rule ${s.idle}`);
    assert.ok(['pickup', 'other'].includes(s.help), `${name}: help context ${s.help}`);
  }
  for (const section of sections) {
    assert.ok(Object.values(SCREENS).some((s) => s.section === section), `section ${section} has a state`);
  }
  for (const name of Object.keys(TRANSITIONS)) {
    assert.ok(name === '*' || SCREENS[name], `row ${name} is a state`);
  }
});

test('every event leads to a state', () => {
  for (const [from, row] of Object.entries(TRANSITIONS)) {
    for (const [event, to] of Object.entries(row)) {
      assert.ok(SCREENS[to], `${from} --${event}--> ${to} is not a state`);
    }
  }
});

test('every state is reachable from the start and can go home', () => {
  const seen = new Set([START]);
  const queue = [START];
  while (queue.length) {
    const s = queue.shift();
    for (const event of new Set([...Object.keys(TRANSITIONS[s]), ...Object.keys(TRANSITIONS['*'])])) {
      const to = transition(s, event);
      if (to && !seen.has(to)) {
        seen.add(to);
        queue.push(to);
      }
    }
  }
  assert.deepEqual([...seen].sort(), Object.keys(SCREENS).sort());
  for (const s of Object.keys(SCREENS)) assert.equal(transition(s, 'home'), 'code', `${s} goes home`);
});

test('the flows people walk', () => {
  const walk = (events) => events.reduce((s, e) => {
    const to = transition(s, e);
    assert.ok(to, `${s} refuses ${e}`);
    return to;
  }, START);
  const cases = [
    [['codeDone', 'submit', 'opened', 'done', 'home'], 'code', 'pickup, doors, thank you, start'],
    [['codeDone', 'submit', 'retry'], 'code', 'wrong code: keypad again'],
    [['codeDone', 'back'], 'code', 'Delete on an empty phone step'],
    [['codeDone', 'submit', 'compromised', 'openAnyway', 'opened'], 'doors', 'compromised, open anyway'],
    [['codeDone', 'submit', 'compromised', 'leave'], 'message', 'compromised, leave it'],
    [['codeDone', 'submit', 'failed'], 'message', 'expired and the like'],
    [['codeDone', 'submit', 'lock'], 'locked', 'the fifth wrong code'],
    [['driverLink', 'signIn', 'refused'], 'driver-login', 'credential refused'],
    [['driverLink', 'signIn', 'signedIn', 'problem', 'reason'], 'driver', 'problem with a door'],
    [['driverLink', 'signIn', 'signedIn', 'problem', 'cancel', 'signedOut'], 'driver-login', 'token over'],
    [['codeDone', 'driverLink'], 'driver-login', 'the driver link is on both keypad steps']
  ];
  for (const [events, want, what] of cases) assert.equal(walk(events), want, what);
});

test('events a screen does not take are refused', () => {
  const refused = [
    ['code', 'submit'], // no attempt before the phone step
    ['code', 'opened'], // a late pickup reply cannot open the doors screen
    ['doors', 'codeDone'],
    ['thanks', 'opened'],
    ['locked', 'submit'],
    ['message', 'signedIn'],
    ['driver', 'opened'],
    ['driver-login', 'signedIn'], // only through busy, after the edge answered
    ['phone', 'nonsense'],
    ['no-such-state', 'home']
  ];
  for (const [from, event] of refused) assert.equal(transition(from, event), null, `${from} takes ${event}`);
});

test('both keypad steps share the keypad section', () => {
  assert.equal(sectionOf('code'), 'keypad');
  assert.equal(sectionOf('phone'), 'keypad');
  assert.equal(sectionOf('driver-problem'), 'driver-problem');
  assert.equal(sectionOf('nope'), '');
});

test('the events the page sends are the table\'s, and the table has no event nobody sends', () => {
  const sent = new Set();
  const patterns = [
    /\bgo\('(\w+)'/g, // k.go('event')
    /\bgo\(\w+ \? '(\w+)' : '(\w+)'\)/g, // k.go(flag ? 'a' : 'b')
    /showMessage\(k, '(\w+)'/g,
    /showLogin\(k, '(\w+)'/g,
    /\bevent: '(\w+)'/g // k.home({event: 'retry'})
  ];
  for (const re of patterns) {
    for (const m of js.matchAll(re)) for (const e of m.slice(1)) if (e) sent.add(e);
  }
  sent.add('home'); // k.home() sends it when no event is given
  const known = new Set(Object.values(TRANSITIONS).flatMap((row) => Object.keys(row)));
  for (const e of sent) assert.ok(known.has(e), `the page sends ${e}, which no row takes`);
  for (const e of known) assert.ok(sent.has(e), `no module sends ${e}`);
});
