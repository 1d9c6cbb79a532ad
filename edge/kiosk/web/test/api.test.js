// The page's API client (api.js) against a fake edge over real loopback HTTP:
// each contract error arrives as the code the page switches on, and a dead or silent edge
// reads as "network" instead of hanging or throwing.
import assert from 'node:assert/strict';
import http from 'node:http';
import test from 'node:test';

import { createApi } from '../api.js';
import { doorSentence } from '../i18n.js';
import { groupManifest } from '../screens/driver.js';
import { createFakeEdge } from './fake-edge.js';

const K = { createApi, doorSentence, groupManifest };

async function withEdge(fn) {
  const edge = createFakeEdge();
  const base = await edge.listen(0);
  try {
    await fn(K.createApi({ base, fetch }), edge);
  } finally {
    await edge.close();
  }
}

test('pickup opens doors and the session ends done', () => withEdge(async (api, edge) => {
  const r = await api.pickup('12345678', '1234', false);
  assert.equal(r.ok, true);
  assert.equal(r.body.doors.length, 2);
  assert.equal(K.doorSentence('en', r.body.doors[0]), 'Door 12 is open — bottom row, left');
  assert.deepEqual(edge.state.requests.at(-1).body, { code: '12345678', factor: '1234', accept_compromised: false });
  let done = false;
  for (let i = 0; i < 10 && !done; i++) {
    const s = await api.session(r.body.session);
    assert.equal(s.ok, true);
    done = s.body.done;
  }
  assert.equal(done, true, 'session reaches done');
  const gone = await api.session('no-such-session');
  assert.equal(gone.status, 404);
}));

test('wrong codes count down, then each makes the edge wait, and locked carries the wait', () => withEdge(async (api) => {
  for (let left = 4; left >= 1; left--) {
    const r = await api.pickup('00000000', '0000', false);
    assert.equal(r.code, 'wrong_code');
    assert.equal(r.status, 401);
    assert.equal(r.body.attempts_left, left);
  }
  const fifth = await api.pickup('00000000', '0000', false);
  assert.equal(fifth.code, 'wrong_code');
  assert.equal(fifth.body.retry_after_seconds, 1);
  assert.equal(fifth.body.attempts_left, undefined);
  const again = await api.pickup('12345678', '1234', false);
  assert.equal(again.code, 'locked', 'even the right code waits');
  assert.equal(again.status, 423);
  assert.equal(again.body.retry_after_seconds, 1);
  const info = await api.info();
  assert.equal(info.body.locked_seconds, 1);
}));

test('contract errors arrive as their codes', () => withEdge(async (api) => {
  assert.equal((await api.pickup('22222222', '2222')).code, 'expired');
  assert.equal((await api.pickup('33333333', '3333')).code, 'already_picked_up');
  assert.equal((await api.pickup('55555555', '5555')).code, 'not_ready');
  assert.equal((await api.pickup('44444444', '4444')).code, 'hardware');
  assert.equal((await api.pickup('123', '1')).code, 'bad_request');
  const c = await api.pickup('11111111', '1111', false);
  assert.equal(c.code, 'compromised');
  assert.equal(c.body.minutes_out, 42);
  const anyway = await api.pickup('11111111', '1111', true);
  assert.equal(anyway.ok, true);
  assert.equal(anyway.body.compromised, true);
}));

test('help is accepted with its context', () => withEdge(async (api, edge) => {
  const r = await api.help('pickup');
  assert.equal(r.status, 202);
  assert.equal(r.body.already_notified, false);
  assert.deepEqual(edge.state.helps, ['pickup']);
}));

test('help again within the minute is accepted as already notified, raising nothing', () => withEdge(async (api, edge) => {
  await api.help('pickup');
  const again = await api.help('driver');
  assert.equal(again.ok, true);
  assert.equal(again.status, 202);
  assert.equal(again.body.already_notified, true);
  assert.equal(edge.state.alerts, 1);
}));

test('a code or phone ending of the wrong length is bad_request naming the field, not a guess', () => withEdge(async (api) => {
  for (let i = 0; i < 6; i++) {
    const seven = await api.pickup('1234567', '1234');
    assert.equal(seven.status, 400);
    assert.equal(seven.code, 'bad_request');
    assert.equal(seven.body.field, 'code');
    const sixteen = await api.pickup('1234567812345678', '1234');
    assert.equal(sixteen.body.field, 'code');
    const phone = await api.pickup('12345678', '12345');
    assert.equal(phone.body.field, 'factor');
  }
  const guess = await api.pickup('00000000', '0000');
  assert.equal(guess.code, 'wrong_code');
  assert.equal(guess.body.attempts_left, 4, 'the malformed attempts counted nothing');
}));

test('a body over 4 KiB is 413 too_large', () => withEdge(async (api) => {
  const r = await api.driverLogin('1'.repeat(5000));
  assert.equal(r.status, 413);
  assert.equal(r.code, 'too_large');
}));

test('driver: sign in, manifest, open, problem, return, logout', () => withEdge(async (api, edge) => {
  assert.equal((await api.driverLogin('nope')).code, 'bad_credential');
  assert.equal((await api.driverLogin('DRIVER-OLD')).code, 'expired');
  const forged = await api.manifest('forged');
  assert.equal(forged.status, 401);
  assert.equal(forged.code, 'bad_credential', 'as the edge says it (docs/kiosk-api.md)');
  const login = await api.driverLogin('DRIVER-OK');
  assert.equal(login.ok, true);
  const tok = login.body.token;
  const m = await api.manifest(tok);
  const g = K.groupManifest(m.body);
  assert.equal(g.reserved.length, 2);
  assert.equal(g.expired.length, 1);

  const opened = await api.driverOpen(tok, 'ord_7F3K2A', 12);
  assert.equal(opened.body.door.state, 'open');
  const after = K.groupManifest((await api.manifest(tok)).body);
  assert.ok(after.loaded.some((o) => o.order === 'ord_7F3K2A'), 'closed with the item in: loaded');

  const moved = await api.driverProblem(tok, 'ord_9QX2LM', 3, 'jammed');
  assert.equal(moved.code, 'no_compartment', 'frozen zone is full in the fake');

  assert.equal((await api.driverReturn(tok, 'ord_7F3K2A')).code, 'conflict', 'not waiting to be returned');
  const ret = await api.driverReturn(tok, 'ord_OLD001');
  assert.equal(ret.body.doors[0].state, 'open');
  assert.equal(K.groupManifest((await api.manifest(tok)).body).expired.length, 0);

  assert.equal((await api.driverLogout(tok)).status, 204);
  assert.equal((await api.manifest(tok)).status, 401, 'token dead after logout');
  const auth = edge.state.requests.filter((r) => r.path === '/api/driver/manifest').length;
  assert.ok(auth >= 4);
}));

test('a dead edge reads as network, not an exception', async () => {
  const srv = http.createServer();
  const base = await new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve('http://127.0.0.1:' + srv.address().port)));
  await new Promise((resolve) => srv.close(resolve)); // nothing listens there now
  const r = await K.createApi({ base, fetch }).pickup('12345678', '1234');
  assert.equal(r.ok, false);
  assert.equal(r.code, 'network');
});

test('a gateway error page and a silent edge read as network', async () => {
  const sockets = new Set();
  const srv = http.createServer((req, res) => {
    if (req.url === '/api/info') {
      res.writeHead(502, { 'Content-Type': 'text/html' });
      res.end('<h1>Bad Gateway</h1>');
    }
    // /api/help: never answers
  });
  srv.on('connection', (s) => sockets.add(s));
  const base = await new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve('http://127.0.0.1:' + srv.address().port)));
  try {
    const api = K.createApi({ base, fetch, timeoutMs: 200 });
    const info = await api.info();
    assert.equal(info.status, 502);
    assert.equal(info.code, 'network');
    const started = Date.now();
    const help = await api.help('other');
    assert.equal(help.code, 'network');
    assert.ok(Date.now() - started < 5000, 'the timeout fired');
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => srv.close(resolve));
  }
});
