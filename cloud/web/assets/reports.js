/*
 * The reports of the ops dashboard (#/reports): one of GET /v1/reports/{name} for a
 * period, a site and a platform, shown as a table and drawn as an SVG chart made here
 * (no library, no outside asset); the same table downloads as CSV. docs/reports.md
 * defines every figure. ops.js routes to it through Larder.views.
 */
(function () {
  'use strict';
  const { el, show } = globalThis.Larder;
  const NS = 'http://www.w3.org/2000/svg';
  // Series colours, each at least 4.5:1 against white.
  const COLOURS = ['#1f5fa8', '#a34a00', '#2e7d32', '#6a1b9a'];
  const REPORTS = {
    orders: { title: 'Orders by outcome', series: ['picked_up', 'returned', 'cancelled', 'in_locker'] },
    utilisation: { title: 'Compartment time held and occupied, by zone (share of the zone’s time)', series: ['held_ratio', 'occupied_ratio'], ratio: true },
    'pickup-time': { title: 'Loading to pickup (all rows)', histogram: ['under_1h', '1h_to_4h', '4h_to_12h', '12h_to_24h', 'over_24h'] },
    expiry: { title: 'Expired and returned', series: ['expired', 'picked_up_late', 'returned_after_expiry', 'expired_waiting'] },
    'cold-chain': { title: 'Minutes above the cold-chain limit per order', series: ['minutes_above_mean', 'minutes_above_max'] },
    'remote-opens': { title: 'Remote opens by actor', series: ['opens'] },
  };
  const MAX_BARS = 30;

  function svg(tag, attrs, ...kids) {
    const n = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) n.setAttribute(k, String(v));
    for (const c of kids) n.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return n;
  }

  const label = (s) => s.replace(/_/g, ' ');
  const fmt = (v, ratio) => (ratio ? (v * 100).toFixed(1) + ' %' : String(v));

  // barChart: one group of horizontal bars per row (at most MAX_BARS rows), one bar per
  // series column.
  function barChart(rep, spec) {
    const keys = rep.columns.filter((c, i) => rep.rows.length && typeof rep.rows[0][i] === 'string');
    const idx = (c) => rep.columns.indexOf(c);
    const rows = rep.rows.slice(0, MAX_BARS);
    const bar = 14;
    const groupH = spec.series.length * bar + 12;
    const left = 230;
    const width = 760;
    const top = 24 + 18 * Math.ceil(spec.series.length / 2);
    const height = top + rows.length * groupH + 8;
    const max = Math.max(spec.ratio ? 1 : 1, ...rows.flatMap((r) => spec.series.map((s) => r[idx(s)])));
    const scale = (v) => ((width - left - 70) * v) / max;
    const g = [];
    spec.series.forEach((s, i) => {
      const x = 10 + (i % 2) * 300;
      const y = 10 + Math.floor(i / 2) * 18;
      g.push(svg('rect', { x, y, width: 12, height: 12, fill: COLOURS[i] }), svg('text', { x: x + 18, y: y + 11, class: 'chart-text' }, label(s)));
    });
    rows.forEach((r, j) => {
      const y0 = top + j * groupH;
      const name = keys.map((k) => r[idx(k)]).filter(Boolean).join(' · ');
      g.push(svg('text', { x: left - 8, y: y0 + groupH / 2, 'text-anchor': 'end', class: 'chart-text' }, name));
      spec.series.forEach((s, i) => {
        const v = r[idx(s)];
        const y = y0 + i * bar + 4;
        g.push(svg('rect', { x: left, y, width: Math.max(scale(v), v ? 1 : 0), height: bar - 2, fill: COLOURS[i], 'data-series': s },
          svg('title', {}, `${name}: ${label(s)} ${fmt(v, spec.ratio)}`)));
        g.push(svg('text', { x: left + scale(v) + 4, y: y + bar - 4, class: 'chart-text small' }, fmt(v, spec.ratio)));
      });
    });
    return { width, height, kids: g };
  }

  // histogram: the columns summed over every row, one vertical bar each.
  function histogram(rep, spec) {
    const sums = spec.histogram.map((c) => rep.rows.reduce((a, r) => a + r[rep.columns.indexOf(c)], 0));
    const width = 760;
    const height = 260;
    const base = 220;
    const w = 110;
    const max = Math.max(1, ...sums);
    const g = [svg('line', { x1: 20, y1: base, x2: width - 20, y2: base, stroke: '#1a1a1a' })];
    sums.forEach((v, i) => {
      const h = (170 * v) / max;
      const x = 40 + i * (w + 28);
      g.push(svg('rect', { x, y: base - h, width: w, height: h, fill: COLOURS[0], 'data-series': spec.histogram[i] },
        svg('title', {}, `${label(spec.histogram[i])}: ${v} orders`)));
      g.push(svg('text', { x: x + w / 2, y: base - h - 6, 'text-anchor': 'middle', class: 'chart-text' }, String(v)));
      g.push(svg('text', { x: x + w / 2, y: base + 18, 'text-anchor': 'middle', class: 'chart-text' }, label(spec.histogram[i])));
    });
    return { width, height, kids: g };
  }

  function chart(rep) {
    const spec = REPORTS[rep.name];
    const c = spec.histogram ? histogram(rep, spec) : barChart(rep, spec);
    const title = spec.title + (rep.rows.length > MAX_BARS && !spec.histogram ? ` (first ${MAX_BARS} rows; the table has all)` : '');
    return el('figure', { class: 'chart' },
      svg('svg', { id: 'report-chart', role: 'img', 'aria-label': title, viewBox: `0 0 ${c.width} ${c.height}`, width: '100%' },
        svg('title', {}, title), ...c.kids),
      el('figcaption', { text: title }));
  }

  function table(rep) {
    return el('div', { class: 'scroll', role: 'region', 'aria-label': 'Report table', tabindex: 0 },
      el('table', { id: 'report-table' },
        el('caption', { text: rep.name + ' report' }),
        el('thead', {}, el('tr', {}, rep.columns.map((c) => el('th', { scope: 'col' }, label(c))))),
        el('tbody', {}, rep.rows.map((r) => el('tr', {}, r.map((v) => el('td', { class: typeof v === 'number' ? 'num' : null }, String(v))))))));
  }

  const day = (d) => d.toISOString().slice(0, 10);

  function reportsView(ctx, parts) {
    const now = new Date();
    const name = el('select', { id: 'report-name' }, Object.keys(REPORTS).map((n) => el('option', { value: n }, n)));
    if (parts && REPORTS[parts[1]]) name.value = parts[1];
    const from = el('input', { id: 'report-from', type: 'date', value: day(new Date(now - 7 * 864e5)), required: true });
    const to = el('input', { id: 'report-to', type: 'date', value: day(new Date(+now + 864e5)), required: true });
    const site = el('input', { id: 'report-site', type: 'text', autocomplete: 'off' });
    const platform = el('input', { id: 'report-platform', type: 'text', autocomplete: 'off' });
    const msg = el('p', { class: 'msg bad', role: 'alert' });
    const out = el('div', { id: 'report-out' });
    const exportBtn = el('button', { type: 'button', class: 'secondary', id: 'report-export' }, 'Export CSV');
    const query = (extra) => {
      const q = new URLSearchParams({ from: new Date(from.value + 'T00:00:00').toISOString(), to: new Date(to.value + 'T00:00:00').toISOString() });
      if (site.value.trim()) q.set('site', site.value.trim());
      if (platform.value.trim()) q.set('platform', platform.value.trim());
      for (const [k, v] of Object.entries(extra || {})) q.set(k, v);
      return '/v1/reports/' + encodeURIComponent(name.value) + '?' + q;
    };
    async function run() {
      msg.textContent = '';
      try {
        const rep = await ctx.call('GET', query());
        show(out, rep.rows.length ? [chart(rep), table(rep)] : el('p', {}, 'Nothing in this period.'));
      } catch (e) {
        out.replaceChildren();
        msg.textContent = 'Cannot compute the report: ' + e.message;
      }
    }
    async function exportCSV() {
      msg.textContent = '';
      try {
        const res = await fetch(query({ format: 'csv' }), { headers: { Authorization: 'Bearer ' + ctx.key() }, cache: 'no-store' });
        if (!res.ok) throw new Error(res.statusText);
        const url = URL.createObjectURL(await res.blob());
        const a = el('a', { href: url, download: name.value + '.csv', hidden: true });
        document.body.append(a);
        a.click();
        a.remove();
        setTimeout(() => URL.revokeObjectURL(url), 10000);
      } catch (e) {
        msg.textContent = 'Cannot export: ' + e.message;
      }
    }
    exportBtn.addEventListener('click', exportCSV);
    const field = (id, text, input) => el('div', {}, el('label', { for: id }, text), input);
    show(ctx.view,
      el('h1', { text: 'Reports' }),
      el('p', { class: 'muted' }, 'Order figures count the orders created in the period; times are your browser’s.'),
      el('form', { id: 'report-form', onsubmit: (ev) => { ev.preventDefault(); run(); } },
        el('div', { class: 'row' }, field('report-name', 'Report', name), field('report-from', 'From (day)', from),
          field('report-to', 'To (day, not included)', to), field('report-site', 'Site', site), field('report-platform', 'Platform', platform)),
        el('div', { class: 'actions' }, el('button', { type: 'submit' }, 'Show'), exportBtn)),
      msg, out);
    run();
  }

  const L = globalThis.Larder;
  L.views = Object.assign(L.views || {}, { reports: reportsView });
})();
