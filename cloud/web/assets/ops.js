/*
 * Larder ops dashboard, the shell: sign-in, the router, the live stream, and the site detail
 * with the compartment grid, order search, remote open with a reason, out-of-service toggle,
 * webhook backlog. Reads the /v1 and /ops/api APIs with the operator's key (sessionStorage,
 * Authorization header) and gets live fleet and site events from GET /ops/stream
 * (server-sent events, authenticated by the HttpOnly cookie that POST /ops/session sets).
 *
 * Other views live in their own scripts and register in LarderOps.views by the first part
 * of the route (fleet.js is '' , the home view); the shell gives them its helpers in
 * LarderOps (call, listen, live, zoneBadge) before it routes.
 */
(function () {
  'use strict';
  const { api, el, show, ago, fmtTime, session } = globalThis.Larder;
  const KEY = 'larder.ops.key';
  const $ = (id) => document.getElementById(id);

  // What the dashboard marks, in °C: each zone's target (upper bounds, and a lower bound
  // for the cool zone that protects chill-sensitive produce; docs/food-safety.md), and a
  // reading above `alarm` is marked as an alarm at once, before the edge's own duration
  // has passed (a zone the edge reports in excursion is marked whatever its reading).
  const ZONES = {
    frozen: { max: -18, alarm: -15, label: 'target ≤ −18 °C' },
    chilled: { max: 5, alarm: 7, label: 'target ≤ 5 °C' },
    cool: { min: 7, max: 13, alarm: 16, label: 'target 7–13 °C' },
    ambient: { label: 'no target' },
  };
  const STATES = [
    ['free', 'Free'], ['reserved', 'Reserved'], ['occupied', 'Loaded'],
    ['out_of_service', 'Out of service'], ['missing', 'Missing'],
  ];
  const stateLabel = (s) => (STATES.find((x) => x[0] === s) || [s, s])[1];

  let key = session.get(KEY);
  let source = null; // the open EventSource
  let selected = 0; // the selected compartment of the site view
  let siteData = null;

  function live(text) { $('live').textContent = text; }

  function zoneBadge(z) {
    const lim = ZONES[z.zone] || {};
    let cls = 'ok';
    let word = 'OK';
    if (z.celsius === null || z.celsius === undefined) {
      cls = 'bad'; word = 'no reading';
    } else if (z.excursion || (lim.alarm !== undefined && z.celsius > lim.alarm)) {
      cls = 'bad'; word = 'ALARM';
    } else if ((lim.max !== undefined && z.celsius > lim.max) || (lim.min !== undefined && z.celsius < lim.min)) {
      cls = 'warn'; word = 'off target';
    }
    const t = z.celsius === null || z.celsius === undefined ? '–' : z.celsius.toFixed(1) + ' °C';
    return el('span', { class: 'badge ' + cls, title: lim.label || '' }, `${z.zone} ${t} ${word}`);
  }

  const ops = globalThis.LarderOps = globalThis.LarderOps || { views: {} };

  function onlineBadge(s) {
    return s.online ? el('span', { class: 'badge ok' }, 'Online') : el('span', { class: 'badge bad' }, 'Offline');
  }

  // ---- sign in ---------------------------------------------------------------------------
  async function signIn(k) {
    await api('POST', '/ops/session', { key: k });
    key = k;
    session.set(KEY, k);
  }

  function signedOut(msg) {
    key = '';
    session.drop(KEY);
    if (source) source.close();
    source = null;
    api('DELETE', '/ops/session').catch(() => {});
    $('nav').hidden = true;
    $('signout').hidden = true;
    $('view').hidden = true;
    $('signin').hidden = false;
    $('signin-msg').textContent = msg || '';
    live('');
  }

  $('signin-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const k = $('key').value.trim();
    $('signin-msg').textContent = '';
    try {
      await signIn(k);
      $('key').value = '';
      route();
    } catch (e) {
      $('signin-msg').textContent = e.status === 401 ? 'Unknown key.' :
        e.status === 403 ? 'This key is not an ops or admin key.' : 'Could not sign in: ' + e.message;
    }
  });
  $('signout').addEventListener('click', () => signedOut('Signed out.'));

  function call(method, path, body) {
    return api(method, path, { key, body }).catch((e) => {
      if (e.status === 401) signedOut('Your key is no longer valid. Sign in again.');
      throw e;
    });
  }

  // ---- live stream ---------------------------------------------------------------------------
  function listen(query, event, render, refused) {
    if (source) source.close();
    source = new EventSource('/ops/stream' + query);
    live('Connecting…');
    source.addEventListener(event, (m) => {
      refused = 0;
      live('Live · updated ' + new Date().toLocaleTimeString('en-GB'));
      render(JSON.parse(m.data));
    });
    source.addEventListener('signed_out', () => signedOut('Your key was revoked.'));
    source.addEventListener('error', () => {
      if (!source || source.readyState !== EventSource.CLOSED) {
        live('Reconnecting…');
        return;
      }
      // The server refused the stream: an expired session cookie (renew it and retry,
      // twice at most) or a site that does not exist.
      if ((refused || 0) >= 2) {
        live('Live updates unavailable');
        show($('view'), el('p', { class: 'msg bad' }, 'This page cannot be shown: the site does not exist or the stream is refused.'),
          el('p', {}, el('a', { href: '#/' }, '← Fleet')));
        return;
      }
      api('POST', '/ops/session', { key }).then(() => listen(query, event, render, (refused || 0) + 1),
        () => signedOut('Your session ended. Sign in again.'));
    });
  }

  // ---- site ----------------------------------------------------------------------------------
  function siteView(id) {
    selected = 0;
    siteData = null;
    show($('view'), el('p', { id: 'site-loading' }, 'Loading site ' + id + '…'));
    listen('?site=' + encodeURIComponent(id), 'site', (d) => { siteData = d; renderSite(d); });
  }

  // renderSite draws the site; live updates keep the action form (and what is typed in
  // it) unless the selected compartment changed state.
  let actionsFor = '';
  function renderSite(d) {
    const counts = d.compartments || {};
    const focused = document.activeElement && document.activeElement.dataset
      ? document.activeElement.dataset.comp : null;
    if (!$('site-head')) {
      actionsFor = '';
      show($('view'),
        el('p', {}, el('a', { href: '#/' }, '← Fleet')),
        el('div', { id: 'site-head' }),
        el('h2', { text: 'Compartments' }),
        el('div', { id: 'grid-wrap' }),
        el('section', { id: 'actions', tabindex: -1, 'aria-label': 'Compartment actions' }),
        el('h2', { text: 'Open alarms' }),
        el('div', { id: 'alarms' }));
    }
    show($('site-head'),
      el('h1', {}, d.name || d.id, ' ', onlineBadge(d)),
      el('dl', { class: 'kv' },
        el('dt', {}, 'Site id'), el('dd', {}, d.id),
        d.address ? [el('dt', {}, 'Address'), el('dd', {}, d.address)] : null,
        el('dt', {}, 'Last seen'), el('dd', {}, ago(d.last_seen)),
        el('dt', {}, 'Software'), el('dd', {}, d.software || '–'),
        el('dt', {}, 'Desired version'), el('dd', {}, `${d.desired_version} (edge applied ${d.edge_desired_version})`),
        el('dt', {}, 'Edge outbox'), el('dd', {}, String(d.outbox_depth)),
        el('dt', {}, 'Zones'), el('dd', {}, el('div', { class: 'zones' }, (d.zones || []).map(zoneBadge))),
        el('dt', {}, 'Boards'), el('dd', {}, (d.boards || []).length ? (d.boards || []).map((b) =>
          el('span', { class: 'badge ' + (b.online ? 'ok' : 'bad') }, `board ${b.address} ${b.online ? 'online' : 'OFFLINE'}`)) : '–')));
    show($('grid-wrap'),
      el('ul', { class: 'legend', 'aria-label': 'Counts by state' },
        STATES.map(([k, l]) => el('li', { class: 'st-' + k }, `${l}: ${counts[k] || 0}`))),
      el('ul', { class: 'grid', id: 'grid', 'aria-label': 'Compartments' },
        (d.compartment_list || []).map((c) => el('li', {},
          el('button', {
            type: 'button', class: 'comp st-' + c.state, 'aria-pressed': String(c.number === selected),
            dataset: { comp: String(c.number), state: c.state },
            onclick: () => { selected = c.number; renderSite(siteData); $('actions').focus(); },
          },
          el('span', { class: 'n' }, 'Door ' + c.number), el('span', { class: 's' }, stateLabel(c.state)),
          el('span', { class: 'z' }, `${c.zone} · ${c.size} · ${c.height_cm} cm`))))));
    const sel = (d.compartment_list || []).find((x) => x.number === selected);
    const now = sel ? `${sel.number}:${sel.state}:${sel.order || ''}` : '';
    if (now !== actionsFor) {
      actionsFor = now;
      show($('actions'), actionsPanel(d));
    }
    show($('alarms'), alarmsList(d));
    if (focused) {
      const b = document.querySelector(`#grid [data-comp="${focused}"]`);
      if (b) b.focus();
    }
  }

  function actionsPanel(d) {
    const c = (d.compartment_list || []).find((x) => x.number === selected);
    if (!c) return el('p', { class: 'muted' }, 'Select a compartment to open it or change its service state.');
    const msg = el('p', { class: 'msg', role: 'status' });
    const reason = el('input', { id: 'reason', name: 'reason', required: true, maxlength: 200, autocomplete: 'off' });
    const inService = c.state !== 'out_of_service';
    const form = el('form', {
      onsubmit: async (ev) => {
        ev.preventDefault();
        const action = ev.submitter ? ev.submitter.value : 'open';
        const base = `/v1/sites/${encodeURIComponent(d.id)}/compartments/${c.number}/`;
        const path = action === 'open' ? base + 'open' : action === 'oos' ? base + 'out-of-service' : base + 'in-service';
        msg.className = 'msg info';
        msg.textContent = 'Sending…';
        try {
          const cmd = await call('POST', path, { reason: reason.value.trim() });
          msg.textContent = `Command ${cmd.id}: ${cmd.state}`;
          msg.dataset.command = cmd.id;
          follow(cmd.id, msg);
        } catch (e) {
          msg.className = 'msg bad';
          msg.textContent = e.message;
        }
      },
    },
    el('h2', {}, `Door ${c.number}`),
    el('p', {}, `${stateLabel(c.state)} · ${c.zone} · size ${c.size} · ${c.height_cm} cm from the ground · generation ${c.generation}`),
    c.order ? el('p', {}, 'Order: ', el('a', { href: '#/orders/' + encodeURIComponent(c.order) }, c.order)) : null,
    c.oos_reason ? el('p', {}, 'Out of service: ' + c.oos_reason) : null,
    el('label', { for: 'reason' }, 'Reason (goes to the audit log)'), reason,
    el('div', { class: 'actions' },
      el('button', { type: 'submit', value: 'open' }, 'Open door remotely'),
      inService ? el('button', { type: 'submit', value: 'oos', class: 'danger' }, 'Take out of service')
        : el('button', { type: 'submit', value: 'in', class: 'secondary' }, 'Return to service')),
    msg);
    return form;
  }

  // follow polls a command until it reaches a final state.
  async function follow(id, msg) {
    for (let i = 0; i < 60; i++) {
      await new Promise((r) => setTimeout(r, 1000));
      let cmd;
      try { cmd = await call('GET', '/v1/commands/' + encodeURIComponent(id)); } catch (e) { return; }
      const final = ['SUCCEEDED', 'FAILED', 'TIMED_OUT', 'REJECTED'].includes(cmd.state);
      msg.className = 'msg ' + (cmd.state === 'SUCCEEDED' ? 'ok' : final ? 'bad' : 'info');
      msg.textContent = `Command ${cmd.id}: ${cmd.state}${cmd.message ? ' — ' + cmd.message : ''}`;
      if (final) return;
    }
  }

  function alarmsList(d) {
    const alarms = d.alarms || [];
    if (!alarms.length) return el('p', {}, 'None.');
    return el('ul', {}, alarms.map((a) => el('li', {},
      el('strong', {}, a.kind), a.compartment ? ` door ${a.compartment}` : '', a.zone ? ` zone ${a.zone}` : '',
      a.board !== undefined && a.board !== null ? ` board ${a.board}` : '',
      ` since ${fmtTime(a.since, 'en', d.time_zone)}`, a.count > 1 ? ` (×${a.count})` : '', a.reason ? ` — ${a.reason}` : '', ' ',
      el('button', {
        type: 'button', class: 'secondary',
        onclick: async (ev) => {
          ev.target.disabled = true;
          try {
            await call('POST', `/v1/sites/${encodeURIComponent(d.id)}/alarms/${encodeURIComponent(a.id)}/resolve`);
          } catch (e) { ev.target.disabled = false; }
        },
      }, 'Resolve'))));
  }

  // ---- orders --------------------------------------------------------------------------------
  const ORDER_STATES = ['', 'assigned', 'loaded', 'picked_up', 'expired', 'returned', 'cancelled', 'compromised'];

  function ordersView(id) {
    if (source) source.close();
    source = null;
    live('');
    const out = el('div', { id: 'orders-out', 'aria-live': 'polite' });
    const oid = el('input', { id: 'q-order', name: 'order', autocomplete: 'off', value: id || '' });
    const site = el('input', { id: 'q-site', name: 'site', autocomplete: 'off' });
    const state = el('select', { id: 'q-state', name: 'state' },
      ORDER_STATES.map((s) => el('option', { value: s }, s || 'any')));
    const form = el('form', {
      onsubmit: (ev) => { ev.preventDefault(); search(oid.value.trim(), site.value.trim(), state.value, out); },
    },
    el('div', { class: 'row' },
      el('div', {}, el('label', { for: 'q-order' }, 'Order id'), oid),
      el('div', {}, el('label', { for: 'q-site' }, 'Site'), site),
      el('div', {}, el('label', { for: 'q-state' }, 'State'), state)),
    el('div', { class: 'actions' }, el('button', { type: 'submit' }, 'Search')));
    show($('view'), el('h1', { text: 'Orders' }), form, out);
    if (id) search(id, '', '', out);
  }

  async function search(id, site, state, out) {
    show(out, el('p', {}, 'Searching…'));
    try {
      let orders;
      if (id) {
        orders = [await call('GET', '/v1/orders/' + encodeURIComponent(id))];
      } else {
        const q = new URLSearchParams();
        if (site) q.set('site', site);
        if (state) q.set('state', state);
        q.set('limit', '200');
        orders = (await call('GET', '/v1/orders?' + q)).orders;
      }
      if (!orders.length) { show(out, el('p', {}, 'No orders.')); return; }
      show(out, el('div', { class: 'scroll', role: 'region', 'aria-label': 'Orders found', tabindex: 0 },
        el('table', {},
          el('caption', {}, `${orders.length} order(s)`),
          el('thead', {}, el('tr', {}, ['Order', 'External id', 'Site', 'State', 'Doors', 'Expires', 'Code'].map((h) =>
            el('th', { scope: 'col' }, h)))),
          el('tbody', {}, orders.map((o) => el('tr', {},
            el('th', { scope: 'row' }, o.id), el('td', {}, o.external_id),
            el('td', {}, el('a', { href: '#/site/' + encodeURIComponent(o.site) }, o.site)),
            el('td', {}, o.state + (o.reason ? ` (${o.reason})` : '')),
            el('td', {}, (o.slots || []).map((s) => `${s.compartment}${s.loaded ? ' loaded' : ''}`).join(', ')),
            el('td', {}, fmtTime(o.expires_at, 'en')),
            el('td', {}, o.code_valid ? 'valid' : 'not valid')))))));
    } catch (e) {
      show(out, el('p', { class: 'msg bad' }, e.status === 404 ? 'No such order.' : e.message));
    }
  }

  // ---- webhook backlog -------------------------------------------------------------------------
  async function backlogView() {
    if (source) source.close();
    source = null;
    live('');
    show($('view'), el('h1', { text: 'Webhook backlog' }), el('p', {}, 'Loading…'));
    let b;
    try {
      b = await call('GET', '/ops/api/backlog');
    } catch (e) {
      show($('view'), el('h1', { text: 'Webhook backlog' }), el('p', { class: 'msg bad' }, e.message));
      return;
    }
    const s = b.stats;
    show($('view'), el('h1', { text: 'Webhook backlog' }),
      el('dl', { class: 'kv' },
        el('dt', {}, 'Pending'), el('dd', {}, String(s.pending)),
        el('dt', {}, 'Delivered'), el('dd', {}, String(s.delivered)),
        el('dt', {}, 'Dead letters'), el('dd', {}, String(s.dead)),
        el('dt', {}, 'Cancelled'), el('dd', {}, String(s.cancelled))),
      el('h2', { text: 'Dead letters' }),
      b.dead.length ? el('div', { class: 'scroll', role: 'region', 'aria-label': 'Dead letters', tabindex: 0 },
        el('table', {},
          el('thead', {}, el('tr', {}, ['Notification', 'Channel', 'Site', 'Attempts', 'Last error', ''].map((h) =>
            el('th', { scope: 'col' }, h)))),
          el('tbody', {}, b.dead.map((n) => el('tr', {},
            el('th', { scope: 'row' }, n.id), el('td', {}, n.channel), el('td', {}, n.site || ''),
            el('td', { class: 'num' }, String(n.attempts)), el('td', {}, n.last_error || ''),
            el('td', {}, el('button', {
              type: 'button', class: 'secondary', 'aria-label': 'Requeue ' + n.id,
              onclick: async () => { await call('POST', '/ops/api/backlog/requeue', { id: n.id }); backlogView(); },
            }, 'Requeue')))))))
        : el('p', {}, 'None.'));
  }

  // ---- router ------------------------------------------------------------------------------
  function route() {
    if (!key) { signedOut(''); return; }
    $('signin').hidden = true;
    $('view').hidden = false;
    $('nav').hidden = false;
    $('signout').hidden = false;
    const h = location.hash.replace(/^#/, '') || '/';
    const parts = h.split('/').filter(Boolean).map(decodeURIComponent);
    for (const a of document.querySelectorAll('#nav a')) {
      const current = (a.getAttribute('href') === '#/' && !parts.length) || (parts.length && a.getAttribute('href') === '#/' + parts[0]);
      if (current) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
    }
    if (parts[0] === 'site' && parts[1]) siteView(parts[1]);
    else if (parts[0] === 'orders') ordersView(parts[1]);
    else if (parts[0] === 'backlog') backlogView();
    else if (globalThis.Larder.views && globalThis.Larder.views[parts[0]]) {
      // Views in modules of their own (audit.js, reports.js).
      globalThis.Larder.views[parts[0]]({ view: $('view'), call, key: () => key }, parts);
    }
    else (ops.views[parts[0] || ''] || ops.views[''])(parts.slice(1));
  }

  Object.assign(ops, { call, listen, live, zoneBadge, stop: () => { if (source) source.close(); source = null; } });

  window.addEventListener('hashchange', route);
  if (key) {
    // A reload keeps the key in this tab; renew the stream cookie with it.
    signIn(key).then(route, () => signedOut('Sign in again.'));
  } else {
    signedOut('');
  }
})();
