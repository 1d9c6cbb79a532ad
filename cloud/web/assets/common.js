/*
 * Shared helpers of the cloud pages: a JSON client for the /v1 API and the page
 * endpoints, a DOM builder that never parses HTML (every value is text), string tables for
 * two languages, and time formatting. Plain ES2020, no build step, no dependencies.
 * API keys and pickup codes are never logged.
 */
(function (root) {
  'use strict';

  class ApiError extends Error {
    constructor(status, code, message, field, retryAfter) {
      super(message);
      this.status = status;
      this.code = code;
      this.field = field || '';
      this.retryAfter = retryAfter ? Number(retryAfter) : 0;
    }
  }

  // api calls path with method; opts: key (Bearer), body (JSON), headers.
  async function api(method, path, opts) {
    const o = opts || {};
    const headers = Object.assign({ Accept: 'application/json' }, o.headers || {});
    if (o.key) headers.Authorization = 'Bearer ' + o.key;
    const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
    if (o.body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(o.body);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, 'network', 'network error');
    }
    if (res.status === 204) return null;
    let data = null;
    try { data = await res.json(); } catch (e) { /* not JSON */ }
    if (!res.ok) {
      const e = (data && data.error) || {};
      throw new ApiError(res.status, e.code || 'http_' + res.status, e.message || res.statusText, e.field,
        res.headers.get('Retry-After'));
    }
    return data;
  }

  // el builds an element: attrs may hold class, text, dataset, on<event> handlers and
  // plain attributes (false/null/undefined skip, true sets an empty one).
  function el(tag, attrs, ...kids) {
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') n.className = v;
      else if (k === 'text') n.textContent = v;
      else if (k === 'dataset') Object.assign(n.dataset, v);
      else if (k.startsWith('on') && typeof v === 'function') n.addEventListener(k.slice(2), v);
      else n.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of kids.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      n.append(c instanceof Node ? c : String(c));
    }
    return n;
  }

  function show(parent, ...kids) {
    parent.replaceChildren(...kids.flat(Infinity).filter((k) => k !== null && k !== undefined && k !== false));
  }

  // i18n: strings is {zh: {...}, en: {...}}; `{name}` placeholders are filled by t().
  function i18n(strings, storageKey, fallback) {
    let lang = fallback;
    try { lang = localStorage.getItem(storageKey) || fallback; } catch (e) { /* storage off */ }
    if (!strings[lang]) lang = fallback;
    const self = {
      get lang() { return lang; },
      set(l) {
        lang = strings[l] ? l : fallback;
        try { localStorage.setItem(storageKey, lang); } catch (e) { /* storage off */ }
        document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
      },
      // t never shows a key: a missing string (cloud/web/test checks there is none)
      // falls back to the other language, then to nothing.
      t(key, vars) {
        let s = (strings[lang] && strings[lang][key]) || strings[fallback][key];
        if (s === undefined) {
          const other = Object.keys(strings).find((l) => strings[l][key] !== undefined);
          if (other === undefined) { console.error('larder: no string ' + key); return ''; }
          s = strings[other][key];
        }
        for (const [k, v] of Object.entries(vars || {})) s = s.split('{' + k + '}').join(String(v));
        return s;
      },
      // apply fills every [data-i18n] element of rootEl with its string.
      apply(rootEl) {
        for (const n of (rootEl || document).querySelectorAll('[data-i18n]')) n.textContent = self.t(n.dataset.i18n);
      },
    };
    document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
    return self;
  }

  // BEIJING are the IANA names of China Standard Time, which people there call 北京时间.
  const BEIJING = ['Asia/Shanghai', 'Asia/Chongqing', 'Asia/Chungking', 'Asia/Harbin', 'PRC'];

  // fmtTime tells iso as the server's texts do (cloud/notify LocalTime): in the site's
  // zone tz, naming it — "12月4日 18:30（北京时间）", "4 Dec, 18:30 (UTC+9)" — so that
  // nobody takes it for their phone's time. Without tz (a list of many sites' times): the
  // browser's own zone, named by its offset.
  function fmtTime(iso, lang, tz) {
    if (!iso) return '';
    const d = new Date(iso);
    if (isNaN(d)) return '';
    const loc = lang === 'zh' ? 'zh-CN' : 'en-GB';
    const opts = { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' };
    let zone = '';
    try {
      if (tz) opts.timeZone = tz;
      if (BEIJING.includes(tz)) zone = lang === 'zh' ? '北京时间' : 'Beijing time';
      else {
        const part = new Intl.DateTimeFormat('en-GB', { timeZone: tz || undefined, timeZoneName: 'shortOffset' })
          .formatToParts(d).find((p) => p.type === 'timeZoneName');
        zone = part ? part.value.replace(/^GMT(\+0)?/, 'UTC') : (tz || '');
      }
      const s = d.toLocaleString(loc, opts);
      if (!zone) return s;
      return lang === 'zh' ? s + '（' + zone + '）' : s + ' (' + zone + ')';
    } catch (e) { // a zone this browser does not know: its own zone, unnamed
      delete opts.timeZone;
      return d.toLocaleString(loc, opts);
    }
  }

  // ago says how long ago iso was, in English (ops pages).
  function ago(iso, now) {
    if (!iso) return 'never';
    const s = Math.round(((now || Date.now()) - new Date(iso).getTime()) / 1000);
    if (s < 5) return 'just now';
    if (s < 90) return s + ' s ago';
    if (s < 5400) return Math.round(s / 60) + ' min ago';
    if (s < 36 * 3600) return Math.round(s / 3600) + ' h ago';
    return Math.round(s / 86400) + ' d ago';
  }

  // session keeps a secret (API key, pickup code) for this tab only.
  const session = {
    get(k) { try { return sessionStorage.getItem(k) || ''; } catch (e) { return ''; } },
    set(k, v) { try { sessionStorage.setItem(k, v); } catch (e) { /* storage off */ } },
    drop(k) { try { sessionStorage.removeItem(k); } catch (e) { /* storage off */ } },
  };

  root.Larder = { ApiError, api, el, show, i18n, fmtTime, ago, session };
})(globalThis);
