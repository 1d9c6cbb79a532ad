/*
 * The audit-log viewer of the ops dashboard (#/audit): filters by site, compartment,
 * reason, credential kind, actor and time; pages with the API's `next` cursor; exports
 * the filtered log as CSV (GET /v1/audit?format=csv with the operator's key, saved from
 * a Blob, so the key never goes into a URL). ops.js routes to it through Larder.views.
 */
(function () {
  'use strict';
  const { el, show, fmtTime } = globalThis.Larder;
  const CREDENTIALS = ['', 'pickup_code', 'driver', 'ops_remote', 'ops_local', 'system', 'none'];
  const FIELDS = [['site', 'Site'], ['compartment', 'Compartment'], ['reason', 'Reason contains'], ['actor', 'Actor']];

  // toISO turns a datetime-local value (the browser's zone) into RFC 3339.
  const toISO = (v) => (v ? new Date(v).toISOString() : '');

  function auditView(ctx) {
    const inputs = {};
    const field = (name, label, input) => {
      inputs[name] = input;
      return el('div', {}, el('label', { for: 'audit-' + name }, label), input);
    };
    const filters = FIELDS.map(([name, label]) => field(name, label,
      el('input', { id: 'audit-' + name, name, type: name === 'compartment' ? 'number' : 'text', min: name === 'compartment' ? 1 : null, autocomplete: 'off' })));
    filters.push(field('credential', 'Credential',
      el('select', { id: 'audit-credential', name: 'credential' }, CREDENTIALS.map((c) => el('option', { value: c }, c || 'any')))));
    filters.push(field('since', 'From', el('input', { id: 'audit-since', name: 'since', type: 'datetime-local' })));
    filters.push(field('until', 'Until', el('input', { id: 'audit-until', name: 'until', type: 'datetime-local' })));
    const msg = el('p', { class: 'msg bad', role: 'alert' });
    const body = el('tbody', { id: 'audit-body' });
    const status = el('p', { id: 'audit-status', role: 'status' });
    const more = el('button', { type: 'button', class: 'secondary', id: 'audit-more', hidden: true }, 'Next page');
    const exportBtn = el('button', { type: 'button', class: 'secondary', id: 'audit-export' }, 'Export CSV');
    let after = '';

    const query = (extra) => {
      const q = new URLSearchParams();
      for (const [name, input] of Object.entries(inputs)) {
        const v = name === 'since' || name === 'until' ? toISO(input.value) : input.value.trim();
        if (v) q.set(name, v);
      }
      for (const [k, v] of Object.entries(extra || {})) if (v) q.set(k, v);
      return q;
    };

    async function load(fresh) {
      msg.textContent = '';
      if (fresh) { after = ''; body.replaceChildren(); }
      let d;
      try {
        d = await ctx.call('GET', '/v1/audit?' + query({ limit: '50', after }));
      } catch (e) {
        msg.textContent = 'Cannot read the audit log: ' + e.message;
        return;
      }
      for (const e of d.entries) {
        body.append(el('tr', { dataset: { id: e.id } },
          el('td', {}, el('time', { datetime: e.time }, fmtTime(e.time, 'en'))),
          el('td', {}, e.site || ''), el('td', { class: 'num' }, e.compartment ? String(e.compartment) : ''),
          el('td', {}, e.action), el('td', {}, e.actor + (e.role ? ' (' + e.role + ')' : '')),
          el('td', {}, e.credential || ''), el('td', {}, e.reason || ''), el('td', {}, e.order || '')));
      }
      after = d.next || '';
      more.hidden = !after;
      const n = body.children.length;
      status.textContent = n ? n + (n === 1 ? ' entry' : ' entries') + ' shown' + (after ? ', more on the next page.' : '.') : 'No entries match.';
    }

    async function exportCSV() {
      msg.textContent = '';
      try {
        const res = await fetch('/v1/audit?' + query({ format: 'csv' }), { headers: { Authorization: 'Bearer ' + ctx.key() }, cache: 'no-store' });
        if (!res.ok) {
          const d = await res.json().catch(() => ({}));
          throw new Error((d.error && d.error.message) || res.statusText);
        }
        const url = URL.createObjectURL(await res.blob());
        const a = el('a', { href: url, download: 'audit.csv', hidden: true });
        document.body.append(a);
        a.click();
        a.remove();
        setTimeout(() => URL.revokeObjectURL(url), 10000);
      } catch (e) {
        msg.textContent = 'Cannot export: ' + e.message;
      }
    }

    more.addEventListener('click', () => load(false));
    exportBtn.addEventListener('click', exportCSV);
    show(ctx.view,
      el('h1', { text: 'Audit log' }),
      el('form', { id: 'audit-form', onsubmit: (ev) => { ev.preventDefault(); load(true); } },
        el('div', { class: 'row' }, filters),
        el('div', { class: 'actions' }, el('button', { type: 'submit' }, 'Apply filter'), exportBtn)),
      msg, status,
      el('div', { class: 'scroll', role: 'region', 'aria-label': 'Audit entries', tabindex: 0 },
        el('table', { id: 'audit' },
          el('caption', { text: 'Audit entries, oldest first' }),
          el('thead', {}, el('tr', {}, ['Time', 'Site', 'Door', 'Action', 'Actor', 'Credential', 'Reason', 'Order']
            .map((h) => el('th', { scope: 'col', class: h === 'Door' ? 'num' : null }, h)))),
          body)),
      el('div', { class: 'actions' }, more));
    load(true);
  }

  const L = globalThis.Larder;
  L.views = Object.assign(L.views || {}, { audit: auditView });
})();
