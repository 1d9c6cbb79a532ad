// The client of the kiosk JSON API (docs/kiosk-api.md in the repository describes every
// endpoint, body and error code).
import { TIMING } from './timers.js';

// classify maps an HTTP reply to one error code of the contract. The edge always sends
// {"error": "..."}; without one (a proxy page, a crashed daemon) the status decides, and
// gateway errors count as "network": the edge daemon is not answering.
export function classify(status, body) {
  if (body && typeof body.error === 'string' && body.error !== '') return body.error;
  if (!status) return 'network';
  if (status === 400) return 'bad_request';
  if (status === 401) return 'unauthorized';
  if (status === 404) return 'not_found';
  if (status === 410) return 'expired';
  if (status === 423) return 'locked';
  if (status === 502 || status === 503 || status === 504) return 'network';
  return 'unknown';
}

// createApi is the client of the kiosk JSON API (docs/kiosk-api.md). Every call
// resolves, never rejects: {ok, status, body, code}; code is 'network' when the edge did
// not answer at all (it is local, so that means the daemon is down or stuck).
// Options: base (URL prefix), fetch (the browser's by default; tests pass the fake
// edge's), timeoutMs. Request timeouts run on the real clock, not the page's injected
// one: they bound real I/O.
export function createApi(opts) {
  const o = opts || {};
  const base = o.base || '';
  const fetchImpl = o.fetch || (globalThis.fetch ? globalThis.fetch.bind(globalThis) : null);
  const defaultTimeout = o.timeoutMs || TIMING.requestTimeoutMs;

  async function call(method, path, body, extra) {
    const x = extra || {};
    const headers = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (x.token) headers.Authorization = 'Bearer ' + x.token;
    const ctrl = typeof AbortController === 'function' ? new AbortController() : null;
    const timer = ctrl ? setTimeout(() => ctrl.abort(), x.timeoutMs || defaultTimeout) : null;
    try {
      const res = await fetchImpl(base + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: ctrl ? ctrl.signal : undefined,
        cache: 'no-store',
        credentials: 'same-origin'
      });
      let text = '';
      try {
        text = await res.text();
      } catch (_) {
        text = '';
      }
      let data = {};
      if (text) {
        try {
          const parsed = JSON.parse(text);
          if (parsed && typeof parsed === 'object') data = parsed;
        } catch (_) {
          data = {};
        }
      }
      if (res.ok) return { ok: true, status: res.status, body: data, code: '' };
      return { ok: false, status: res.status, body: data, code: classify(res.status, data) };
    } catch (_) {
      return { ok: false, status: 0, body: {}, code: 'network' };
    } finally {
      if (timer) clearTimeout(timer);
    }
  }

  return {
    info: () => call('GET', '/api/info'),
    pickup: (code, factor, acceptCompromised) => call('POST', '/api/pickup',
      { code, factor, accept_compromised: !!acceptCompromised },
      { timeoutMs: TIMING.pickupTimeoutMs }),
    pickupQR: (qr, acceptCompromised) => call('POST', '/api/pickup',
      { qr, accept_compromised: !!acceptCompromised },
      { timeoutMs: TIMING.pickupTimeoutMs }),
    session: (id) => call('GET', '/api/sessions/' + encodeURIComponent(id)),
    help: (context) => call('POST', '/api/help', { context }),
    driverLogin: (credential) => call('POST', '/api/driver/login', { credential }),
    manifest: (token) => call('GET', '/api/driver/manifest', undefined, { token }),
    driverOpen: (token, order, compartment) => call('POST', '/api/driver/open',
      { order, compartment }, { token, timeoutMs: TIMING.pickupTimeoutMs }),
    driverProblem: (token, order, compartment, reason) => call('POST', '/api/driver/problem',
      { order, compartment, reason }, { token, timeoutMs: TIMING.pickupTimeoutMs }),
    driverReturn: (token, order) => call('POST', '/api/driver/return',
      { order }, { token, timeoutMs: TIMING.pickupTimeoutMs }),
    driverLogout: (token) => call('POST', '/api/driver/logout', undefined, { token })
  };
}
