/*
 * A small in-process stand-in for the edge's kiosk API (docs/kiosk-api.md), used by
 * api.test.js to exercise the page's client (api.js) over real HTTP, by the screen tests
 * through edge.fetch (the same routes without sockets), and by hand to click through the
 * page without the Go daemon:
 *
 *   node edge/kiosk/web/test/fake-edge.js --serve 8099   # then open 127.0.0.1:8099
 *
 * Scenario codes (code / last 4 of phone):
 *   12345678 / 1234  two doors open; the session completes after a few polls
 *   11111111 / 1111  compromised (42 min out of temperature) unless accept_compromised
 *   22222222 / 2222  expired          33333333 / 3333  already picked up
 *   55555555 / 5555  not loaded yet
 *   44444444 / 4444  hardware fault   anything else    wrong code (after 4, waits 1 s, 2 s … 60 s)
 * QR payloads ({"qr": ...}): larder:v1:courtyard-1:12345678:{expires}:0123456789abcdef0123
 * opens doors 12 and 15 until {expires} (Unix seconds), also while the keypad waits; any
 * other tag is qr_refused bad_tag, another site other_site, a past expiry expired, and
 * anything else bad_request (field qr); none of them counts as a wrong code.
 * A code that is not 8 digits or phone digits that are not 4 are bad_request (with field)
 * and count nothing; a body over 4 KiB is 413 too_large; Help raises one alert a minute
 * and answers already_notified in between, as the edge does.
 * Driver credentials: DRIVER-OK signs in, DRIVER-OLD is expired, anything else is refused.
 *
 * node --test runs every file in test/, this one included: loaded that way it only exports.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const MAX_BODY = 4096; // kiosk.MaxBody
const HELP_INTERVAL_MS = 60000; // edge.Config.HelpInterval
// The keypad throttle, as edge.Config's defaults: FreeFailures, DelayMax, DelayQuiet.
const FREE_FAILURES = 4;
const DELAY_MAX_S = 60;
const DELAY_QUIET_MS = 600000;

// delayAfter is the wait in seconds after the n-th wrong code in a row (edge delayAfter).
export function delayAfter(n) {
  return n <= FREE_FAILURES ? 0 : Math.min(2 ** (n - FREE_FAILURES - 1), DELAY_MAX_S);
}

const WHERE = {
  3: ['door 3, bottom row, right', '3号门，最下排，右边'],
  7: ['door 7, middle row, left', '7号门，中间排，左边'],
  12: ['door 12, bottom row, left', '12号门，最下排，左边'],
  15: ['door 15, middle row, right', '15号门，中间排，右边'],
  21: ['door 21, top row, left', '21号门，最上排，左边'],
  30: ['door 30, middle row, centre', '30号门，中间排，中间']
};

export function door(number, st, empty) {
  const w = WHERE[number] || ['door ' + number, number + '号门'];
  return { number, row: 1, column: 1, where_en: w[0], where_zh: w[1], state: st, empty };
}

export function createFakeEdge(opts) {
  const o = opts || {};
  const s = {
    failures: 0,
    lastFailure: -Infinity,
    lockedUntil: 0,
    sessions: new Map(),
    helps: [], // the context of every help request
    alerts: 0, // help requests that raised an alert for staff
    helpAt: null,
    tokens: new Set(),
    orders: null,
    requests: [],
    down: false,
    now: o.now || (() => Date.now())
  };
  s.orders = [
    { order: 'ord_7F3K2A', zone: 'chilled', accessible: false, state: 'reserved', doors: [door(12, 'closed', true)] },
    { order: 'ord_9QX2LM', zone: 'frozen', accessible: true, state: 'reserved', doors: [door(3, 'closed', true)] },
    { order: 'ord_1AB2CD', zone: 'ambient', accessible: false, state: 'loaded', doors: [door(21, 'closed', false)] },
    { order: 'ord_OLD001', zone: 'chilled', accessible: false, state: 'expired', doors: [door(7, 'closed', false)] }
  ];

  function send(res, status, body) {
    if (body === undefined) {
      res.writeHead(status);
      res.end();
      return;
    }
    const data = JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8' });
    res.end(data);
  }
  function fail(res, status, code, extra) {
    send(res, status, Object.assign({ error: code, message: code, message_zh: code }, extra || {}));
  }

  // GOOD_TAG is the one tag the fake edge takes (the real one checks protocol.QRTag).
  const GOOD_TAG = '0123456789abcdef0123';
  function pickupQR(res, body) {
    const m = /^larder:v1:([a-z0-9_-]{1,64}):([0-9]{8}):([0-9]{1,19}):([0-9a-f]{20})$/.exec(String(body.qr));
    if (!m || body.code || body.factor) return fail(res, 400, 'bad_request', { field: 'qr' });
    if (m[1] !== 'courtyard-1') return fail(res, 401, 'qr_refused', { reason: 'other_site' });
    if (m[4] !== GOOD_TAG) return fail(res, 401, 'qr_refused', { reason: 'bad_tag' });
    if (Number(m[3]) * 1000 <= s.now()) return fail(res, 401, 'qr_refused', { reason: 'expired' });
    if (m[2] !== '12345678') return fail(res, 404, 'not_found');
    const id = 'sess-' + (s.sessions.size + 1);
    const doors = [door(12, 'open', false), door(15, 'open', false)];
    s.sessions.set(id, { polls: 0, doors });
    send(res, 200, { session: id, order_ref: 'A1B2', doors, compromised: false });
  }

  function pickup(req, res, body) {
    if (body.qr !== undefined) return pickupQR(res, body);
    const code = String(body.code || '');
    const factor = String(body.factor || '');
    if (!/^[0-9]{8}$/.test(code)) return fail(res, 400, 'bad_request', { field: 'code' });
    if (!/^[0-9]{4}$/.test(factor)) return fail(res, 400, 'bad_request', { field: 'factor' });
    const now = s.now();
    if (s.lockedUntil > now) {
      return fail(res, 423, 'locked', { retry_after_seconds: Math.ceil((s.lockedUntil - now) / 1000) });
    }
    const key = code + '/' + factor;
    const open = (doors, compromised) => {
      const id = 'sess-' + (s.sessions.size + 1);
      s.sessions.set(id, { polls: 0, doors });
      send(res, 200, { session: id, order_ref: 'A1B2', doors, compromised: !!compromised });
    };
    switch (key) {
      case '12345678/1234':
        return open([door(12, 'open', false), door(15, 'open', false)], false);
      case '11111111/1111':
        if (!body.accept_compromised) return fail(res, 409, 'compromised', { minutes_out: 42 });
        return open([door(30, 'open', false)], true);
      case '22222222/2222': return fail(res, 410, 'expired');
      case '33333333/3333': return fail(res, 409, 'already_picked_up');
      case '55555555/5555': return fail(res, 409, 'not_ready');
      case '44444444/4444': return fail(res, 503, 'hardware');
      default: {
        if (now - s.lastFailure >= DELAY_QUIET_MS) s.failures = 0;
        s.failures++;
        s.lastFailure = now;
        const wait = delayAfter(s.failures);
        s.lockedUntil = now + wait * 1000;
        if (wait > 0) return fail(res, 401, 'wrong_code', { retry_after_seconds: wait });
        return fail(res, 401, 'wrong_code', { attempts_left: FREE_FAILURES + 1 - s.failures });
      }
    }
  }

  // Each poll moves the doors on: first closes, then emptied, then the next door.
  function session(res, id) {
    const sess = s.sessions.get(id);
    if (!sess) return fail(res, 404, 'not_found');
    sess.polls++;
    const doors = sess.doors.map((d, i) => {
      const p = sess.polls - 2 * i;
      if (p >= 3) return Object.assign({}, d, { state: 'closed', empty: true });
      if (p >= 2) return Object.assign({}, d, { state: 'closed', empty: false });
      return d;
    });
    const done = doors.every((d) => d.state === 'closed' && d.empty);
    send(res, 200, { doors, done });
  }

  function authed(req) {
    const h = req.headers.authorization || '';
    return h.startsWith('Bearer ') && s.tokens.has(h.slice(7));
  }
  function findOrder(id) {
    return s.orders.find((x) => x.order === id);
  }

  // Doors a driver opened close and show loaded on the next manifest read.
  function settle() {
    for (const ord of s.orders) {
      for (const d of ord.doors) {
        if (d.state === 'open') {
          d.state = 'closed';
          d.empty = ord.state === 'expired';
        }
      }
      if (ord.state === 'reserved' && ord.doors.every((d) => d.empty === false)) ord.state = 'loaded';
    }
    s.orders = s.orders.filter((x) => !(x.state === 'expired' && x.doors.every((d) => d.empty)));
  }

  async function route(req, res) {
    const url = new URL(req.url, 'http://fake.invalid');
    let body = {};
    if (req.method === 'POST') {
      const chunks = [];
      for await (const c of req) chunks.push(c);
      const raw = Buffer.concat(chunks);
      if (raw.length > MAX_BODY) return fail(res, 413, 'too_large');
      const text = raw.toString('utf8');
      if (text) {
        try {
          body = JSON.parse(text);
        } catch (_) {
          return fail(res, 400, 'bad_request');
        }
      }
    }
    s.requests.push({ method: req.method, path: url.pathname, body });
    const p = url.pathname;
    if (req.method === 'GET' && p === '/api/info') {
      const left = Math.max(0, Math.ceil((s.lockedUntil - s.now()) / 1000));
      const info = { site: 'courtyard-1', locked_seconds: left, languages: ['zh', 'en'] };
      if (s.siteName) Object.assign(info, { site_name: s.siteName, time_zone: 'Asia/Shanghai' });
      return send(res, 200, info);
    }
    if (req.method === 'POST' && p === '/api/pickup') return pickup(req, res, body);
    if (req.method === 'GET' && p.startsWith('/api/sessions/')) {
      return session(res, decodeURIComponent(p.slice('/api/sessions/'.length)));
    }
    if (req.method === 'POST' && p === '/api/help') {
      s.helps.push(body.context);
      const now = s.now();
      const already = s.helpAt !== null && now - s.helpAt < HELP_INTERVAL_MS;
      if (!already) {
        s.helpAt = now;
        s.alerts++;
      }
      return send(res, 202, { already_notified: already, message: 'help requested', message_zh: 'help requested' });
    }
    if (req.method === 'POST' && p === '/api/driver/login') {
      if (body.credential === 'DRIVER-OK') {
        const token = 'tok-' + (s.tokens.size + 1);
        s.tokens.add(token);
        return send(res, 200, { token, driver: 'drv_42' });
      }
      if (body.credential === 'DRIVER-OLD') return fail(res, 410, 'expired');
      return fail(res, 401, 'bad_credential');
    }
    if (p.startsWith('/api/driver/')) {
      if (!authed(req)) return fail(res, 401, 'bad_credential');
      if (req.method === 'GET' && p === '/api/driver/manifest') {
        settle();
        return send(res, 200, { orders: s.orders });
      }
      if (req.method === 'POST' && p === '/api/driver/open') {
        const ord = findOrder(body.order);
        const d = ord && ord.doors.find((x) => x.number === body.compartment);
        if (!d) return fail(res, 404, 'not_found');
        d.state = 'open';
        return send(res, 200, { door: d });
      }
      if (req.method === 'POST' && p === '/api/driver/problem') {
        const ord = findOrder(body.order);
        if (!ord) return fail(res, 404, 'not_found');
        if (ord.zone === 'frozen') return fail(res, 409, 'no_compartment');
        const nd = door(30, 'open', true);
        ord.doors = ord.doors.filter((x) => x.number !== body.compartment).concat([nd]);
        return send(res, 200, { door: nd });
      }
      if (req.method === 'POST' && p === '/api/driver/return') {
        const ord = findOrder(body.order);
        if (!ord || ord.state !== 'expired') return fail(res, 409, 'conflict');
        for (const d of ord.doors) d.state = 'open';
        return send(res, 200, { doors: ord.doors });
      }
      if (req.method === 'POST' && p === '/api/driver/logout') {
        s.tokens.delete((req.headers.authorization || '').slice(7));
        return send(res, 204);
      }
    }
    if (o.staticDir && req.method === 'GET') return serveStatic(res, p);
    return fail(res, 404, 'not_found');
  }

  function serveStatic(res, p) {
    const name = p === '/' ? 'index.html' : p.slice(1);
    const types = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml' };
    const type = types[path.extname(name)];
    const file = path.join(o.staticDir, path.normalize(name));
    if (!type || !file.startsWith(o.staticDir)) return fail(res, 404, 'not_found');
    fs.readFile(file, (err, data) => {
      if (err) return fail(res, 404, 'not_found');
      res.writeHead(200, { 'Content-Type': type, 'Cache-Control': 'no-store' });
      res.end(data);
    });
  }

  const server = http.createServer((req, res) => {
    route(req, res).catch(() => fail(res, 500, 'internal'));
  });

  // fetch answers like the global fetch, in-process: the request goes through the same
  // routes as over HTTP, without a socket, so tests on a fake clock stay deterministic.
  // state.down makes it fail the way fetch does when nothing listens.
  async function inProcessFetch(url, init) {
    if (s.down) throw new TypeError('fetch failed');
    const o2 = init || {};
    const u = new URL(url, 'http://fake.invalid');
    const headers = {};
    for (const [k, v] of Object.entries(o2.headers || {})) headers[k.toLowerCase()] = v;
    const chunks = o2.body === undefined ? [] : [Buffer.from(o2.body)];
    const req = {
      method: o2.method || 'GET',
      url: u.pathname + u.search,
      headers,
      async * [Symbol.asyncIterator]() { yield * chunks; }
    };
    return new Promise((resolve) => {
      let status = 200;
      const res = {
        writeHead(st) { status = st; },
        end(data) {
          const text = data === undefined ? '' : String(data);
          resolve({ ok: status >= 200 && status < 300, status, text: async () => text });
        }
      };
      route(req, res).catch(() => fail(res, 500, 'internal'));
    });
  }

  return {
    state: s,
    server,
    fetch: inProcessFetch,
    listen(port) {
      return new Promise((resolve) => {
        server.listen(port || 0, '127.0.0.1', () => {
          resolve('http://127.0.0.1:' + server.address().port);
        });
      });
    },
    close() {
      const done = new Promise((resolve) => server.close(() => resolve()));
      server.closeAllConnections(); // fetch keeps connections alive; do not wait for them
      return done;
    }
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv.includes('--serve')) {
  const port = Number(process.argv[process.argv.indexOf('--serve') + 1]) || 8099;
  const edge = createFakeEdge({ staticDir: path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..') });
  edge.listen(port).then((url) => console.log('fake edge serving the kiosk page on ' + url));
}
