/*
 * Larder ops: the fleet console (route #/). Problems first: the sites with something wrong,
 * worst and oldest first, one page at a time from GET /ops/api/fleet; a healthy fleet
 * collapses to its counts by state. Filters (state, zone, alarm kind, district, tag, search)
 * apply to the list and to the map (map.js) alike. Live: each "fleet" event of the stream
 * carries the counts and the sites that changed, and the page re-reads what it shows.
 */
(function () {
  'use strict';
  const { el, show, ago } = globalThis.Larder;
  const ops = globalThis.LarderOps = globalThis.LarderOps || { views: {} };
  const $ = (id) => document.getElementById(id);

  const STATES = [
    ['online', 'Online'], ['offline', 'Offline'], ['never_connected', 'Never connected'],
    ['unprovisioned', 'Not provisioned'], ['out_of_service', 'Out of service'],
  ];
  const COMP_STATES = [
    ['free', 'Free'], ['reserved', 'Reserved'], ['occupied', 'Loaded'],
    ['out_of_service', 'Out of service'], ['missing', 'Missing'],
  ];
  const PROBLEMS = {
    temperature_excursion: 'Temperature', uncommanded_open: 'Door forced', help_requested: 'Help requested',
    offline: 'Offline', code_lockout: 'Code guessing', lock_jammed: 'Lock jammed', board_offline: 'Board offline',
    door_left_open: 'Door left open', reassigned: 'Reassignment conflict', never_connected: 'Never connected',
  };
  const ALARMS = ['temperature_excursion', 'uncommanded_open', 'help_requested', 'code_lockout', 'lock_jammed',
    'board_offline', 'door_left_open', 'reassigned'];
  const ZONES = ['frozen', 'chilled', 'cool', 'ambient'];
  const PAGE = 50;
  const label = (list, k) => (list.find((x) => x[0] === k) || [k, k])[1];
  const n = (x) => Number(x || 0).toLocaleString('en-GB');

  // The filters and the page shown; kept across visits to a site and back.
  const view = { filters: { problems: '1' }, cursors: [''], page: null };

  function query(extra) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(view.filters)) if (v) q.set(k, v);
    for (const [k, v] of Object.entries(extra || {})) if (v) q.set(k, v); else q.delete(k);
    return q.toString();
  }

  function select(id, text, options, value) {
    return el('div', {}, el('label', { for: id }, text),
      el('select', { id, name: id.replace('f-', '') },
        el('option', { value: '' }, 'any'),
        options.map(([v, l]) => el('option', { value: v, selected: v === value }, l))));
  }

  function fleetView() {
    const f = view.filters;
    const form = el('form', { id: 'fleet-filters', role: 'search', 'aria-label': 'Filter sites',
      onsubmit: (ev) => { ev.preventDefault(); apply(); },
      onchange: (ev) => { if (ev.target.tagName === 'SELECT' || ev.target.type === 'checkbox') apply(); } },
    el('div', { class: 'row' },
      el('div', {}, el('label', { for: 'f-q' }, 'Search id, name or address'),
        el('input', { id: 'f-q', name: 'q', type: 'search', autocomplete: 'off', value: f.q || '' })),
      select('f-state', 'State', STATES, f.state),
      select('f-zone', 'Zone', ZONES.map((z) => [z, z]), f.zone),
      select('f-alarm', 'Alarm', ALARMS.map((a) => [a, PROBLEMS[a]]), f.alarm),
      el('div', { id: 'f-district-wrap' }, select('f-district', 'District', [], f.district)),
      el('div', { id: 'f-tag-wrap' }, select('f-tag', 'Tag', [], f.tag))),
    el('div', { class: 'actions' },
      el('label', { class: 'check' }, el('input', { id: 'f-problems', type: 'checkbox', checked: f.problems === '1' }),
        ' Only sites with problems'),
      el('button', { type: 'submit' }, 'Search')));
    view.sig = '';
    show($('view'),
      el('h1', { text: 'Fleet' }),
      el('p', { id: 'fleet-summary', role: 'status' }, 'Loading…'),
      el('ul', { id: 'fleet-states', class: 'states', 'aria-label': 'Sites by state' }),
      form,
      el('div', { class: 'fleet-cols' },
        el('section', { id: 'fleet-list', 'aria-labelledby': 'fleet-list-h' },
          el('h2', { id: 'fleet-list-h' }, 'Sites'),
          el('p', { id: 'fleet-healthy', hidden: true }),
          el('div', { class: 'scroll', role: 'region', 'aria-label': 'Fleet table', tabindex: 0 },
            el('table', { id: 'fleet' },
              el('caption', { id: 'fleet-caption' }, 'Sites'),
              el('thead', {}, el('tr', {},
                el('th', { scope: 'col' }, 'Site'), el('th', { scope: 'col' }, 'State'),
                el('th', { scope: 'col' }, 'Problems'), el('th', { scope: 'col' }, 'Last seen'),
                el('th', { scope: 'col' }, 'Zones'),
                COMP_STATES.map(([, l]) => el('th', { scope: 'col', class: 'num' }, l)))),
              el('tbody', { id: 'fleet-body' }))),
          el('nav', { id: 'fleet-pages', class: 'actions', 'aria-label': 'Pages' })),
        el('section', { id: 'fleet-map', 'aria-labelledby': 'fleet-map-h' },
          el('h2', { id: 'fleet-map-h' }, 'Map'), el('div', { id: 'fleet-map-body' }))));
    load();
    ops.listen('', 'fleet', soon);
  }

  function apply() {
    const v = (id) => $(id).value.trim();
    view.filters = { q: v('f-q'), state: v('f-state'), zone: v('f-zone'), alarm: v('f-alarm'),
      district: v('f-district'), tag: v('f-tag'), problems: $('f-problems').checked ? '1' : '' };
    view.cursors = [''];
    load();
  }

  // soon re-reads the page after a live change, at most once a second.
  let timer = 0;
  function soon() {
    if (timer) return;
    timer = setTimeout(() => { timer = 0; if ($('fleet-body')) load(); }, 1000);
  }

  // loads counts the reads started: only the latest may draw, so that a read started
  // before the filters changed (a live change's) cannot answer after the filtered one
  // and put the unfiltered page back.
  let loads = 0;
  async function load() {
    const cursor = view.cursors[view.cursors.length - 1];
    const mine = ++loads;
    let page;
    try {
      page = await ops.call('GET', '/ops/api/fleet?' + query({ cursor, limit: String(PAGE) }));
    } catch (e) {
      if (mine === loads && $('fleet-summary')) $('fleet-summary').textContent = 'Could not load the fleet: ' + e.message;
      return;
    }
    if (mine !== loads) return; // a later read is under way with what the page shows now
    if (!$('fleet-body')) return; // the operator went elsewhere meanwhile
    // An unchanged page is not redrawn: focus, selection and the map stay as they are.
    const sig = cursor + JSON.stringify(page);
    if (sig === view.sig && $('fleet-body').childElementCount) return;
    view.sig = sig;
    view.page = page;
    render(page);
    // The map keeps the healthy sites around the problems as its background: every filter
    // applies to it but "only sites with problems".
    if (ops.drawMap) ops.drawMap($('fleet-map-body'), query({ problems: '' }));
  }

  // summary: the counts of the sites the filters select (by state: as if each state were
  // chosen), and the webhook backlog.
  function summary(d) {
    const t = d.totals || {};
    const parts = [`${n(d.fleet)} site${d.fleet === 1 ? '' : 's'} in the fleet`, `${n(d.matched)} shown`];
    const h = d.health || {};
    const bad = (h.critical || 0) + (h.major || 0) + (h.minor || 0);
    parts.push(bad ? `${n(bad)} with problems (${n(h.critical)} critical, ${n(h.major)} major, ${n(h.minor)} minor)` : 'no problems');
    if (d.backlog) parts.push(`webhooks: ${n(d.backlog.pending)} pending, ${n(d.backlog.dead)} dead`);
    if ($('fleet-summary')) $('fleet-summary').textContent = parts.join(' · ');
    const states = $('fleet-states');
    if (states) {
      show(states, STATES.map(([k, l]) => el('li', {},
        el('button', {
          type: 'button', class: 'secondary st-' + k, 'aria-pressed': String(view.filters.state === k),
          dataset: { state: k, count: String(t[k] || 0) },
          onclick: () => { view.filters.state = view.filters.state === k ? '' : k; view.filters.problems = ''; view.cursors = ['']; fleetView(); },
        }, `${l}: ${n(t[k])}`))));
    }
  }

  function options(wrap, id, text, values, value) {
    const cur = $(id);
    if (cur && cur.options.length === values.length + 1) return; // unchanged: keep focus and choice
    show($(wrap), select(id, text, values.map((v) => [v, v]), value));
  }

  function render(p) {
    summary(p);
    options('f-district-wrap', 'f-district', 'District', p.districts || [], view.filters.district);
    options('f-tag-wrap', 'f-tag', 'Tag', p.tags || [], view.filters.tag);
    const f = view.filters;
    const filtered = Object.entries(f).some(([k, v]) => v && k !== 'problems');
    $('fleet-caption').textContent = `${n(p.matched)} site${p.matched === 1 ? '' : 's'}` +
      (f.problems ? ' with problems' : '') + (filtered ? ' matching the filters' : '') + ', worst first';
    const healthy = $('fleet-healthy');
    healthy.hidden = !(f.problems && p.matched === 0);
    if (!healthy.hidden) {
      show(healthy, filtered ? 'No site matching the filters has a problem. ' : `No problems: all ${n(p.fleet)} sites are fine. `,
        el('button', { type: 'button', class: 'secondary', id: 'fleet-all',
          onclick: () => { view.filters.problems = ''; view.cursors = ['']; fleetView(); } }, 'List all sites'));
    }
    const body = $('fleet-body');
    show(body, p.sites.map(row));
    if (!p.sites.length) show(body, el('tr', {}, el('td', { colspan: 10 }, 'No sites.')));
    const pages = $('fleet-pages');
    const at = view.cursors.length;
    show(pages,
      at > 1 ? el('button', { type: 'button', class: 'secondary', onclick: () => { view.cursors.pop(); load(); } }, 'Previous page') : null,
      el('span', { class: 'muted' }, `Page ${at}`),
      p.next_cursor ? el('button', { type: 'button', class: 'secondary', id: 'fleet-next',
        onclick: () => { view.cursors.push(p.next_cursor); load(); } }, 'Next page') : null);
  }

  function stateText(s) {
    if (s.state === 'offline') return 'Offline' + (s.offline_since ? ' since ' + ago(s.offline_since) : '');
    return label(STATES, s.state);
  }

  function row(s) {
    const cls = s.state === 'online' ? 'ok' : s.state === 'offline' ? 'bad' : 'info';
    return el('tr', { dataset: { site: s.id, online: String(s.online), state: s.state, health: s.health } },
      el('th', { scope: 'row' }, el('a', { href: '#/site/' + encodeURIComponent(s.id) }, s.name || s.id),
        el('div', { class: 'muted' }, [s.name ? s.id : '', s.district || '', s.address || ''].filter(Boolean).join(' · '))),
      el('td', { title: s.offline_since || '' }, el('span', { class: 'badge ' + cls }, stateText(s))),
      el('td', { class: 'problems' }, (s.problems || []).length ? (s.problems || []).map((pr) =>
        el('span', { class: 'badge sev-' + pr.severity, dataset: { problem: pr.kind } },
          `${PROBLEMS[pr.kind] || pr.kind}${pr.count > 1 ? ' ×' + pr.count : ''}${pr.since ? ', ' + ago(pr.since) : ''}`)) : 'None'),
      el('td', { title: s.last_seen || '' }, s.last_seen ? ago(s.last_seen) : 'never'),
      el('td', {}, el('div', { class: 'zones' }, (s.zones || []).map(ops.zoneBadge))),
      COMP_STATES.map(([k]) => el('td', { class: 'num', dataset: { state: k } }, String((s.compartments || {})[k] || 0))));
  }

  ops.views[''] = fleetView;
})();
