/*
 * Larder ops: the fleet map, drawn as SVG in the page from the sites' coordinates (no tiles,
 * no outside assets). GET /ops/api/fleet/map with the fleet filters (all but "only sites
 * with problems", so that the healthy sites stay as the background) gives a marker for each
 * site with a problem (a link to the site, focusable, named by its problem) and, for the other
 * sites, grid cells with their count and worst health. Colour is never the only cue: each
 * health has its own shape as well, and the table beside the map lists the same sites.
 */
(function () {
  'use strict';
  const { el, show } = globalThis.Larder;
  const ops = globalThis.LarderOps = globalThis.LarderOps || { views: {} };
  const NS = 'http://www.w3.org/2000/svg';
  const W = 640;
  const H = 440;
  const PAD = 24;
  const HEALTH = {
    critical: 'Critical', major: 'Major problem', minor: 'Minor problem', ok: 'Healthy', idle: 'Not in service',
  };

  function svg(tag, attrs, ...kids) {
    const n = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null) n.setAttribute(k, String(v));
    for (const c of kids.flat()) if (c !== null && c !== undefined) n.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return n;
  }

  // project maps lat/lon into the drawing, east right and north up, keeping distances
  // in proportion at the fleet's latitude (equirectangular; a city is small enough).
  function projector(b) {
    const k = Math.cos(((b.min_lat + b.max_lat) / 2) * Math.PI / 180);
    const spanX = Math.max((b.max_lon - b.min_lon) * k, 1e-6);
    const spanY = Math.max(b.max_lat - b.min_lat, 1e-6);
    const s = Math.min((W - 2 * PAD) / spanX, (H - 2 * PAD) / spanY);
    const ox = (W - spanX * s) / 2;
    const oy = (H - spanY * s) / 2;
    return (lat, lon) => [ox + (lon - b.min_lon) * k * s, oy + (b.max_lat - lat) * s];
  }

  // shape draws a health's symbol at x, y: a diamond for critical, a triangle for a major
  // problem, a square for a minor one, a circle otherwise.
  function shape(health, x, y, r, attrs) {
    const cls = 'h-' + health;
    if (health === 'critical') {
      return svg('polygon', { ...attrs, class: cls, points: `${x},${y - r} ${x + r},${y} ${x},${y + r} ${x - r},${y}` });
    }
    if (health === 'major') {
      return svg('polygon', { ...attrs, class: cls, points: `${x},${y - r} ${x + r},${y + r * 0.8} ${x - r},${y + r * 0.8}` });
    }
    if (health === 'minor') return svg('rect', { ...attrs, class: cls, x: x - r * 0.8, y: y - r * 0.8, width: r * 1.6, height: r * 1.6 });
    return svg('circle', { ...attrs, class: cls, cx: x, cy: y, r });
  }

  let drawing = 0; // the latest request: an older answer arriving late is dropped
  async function drawMap(box, query) {
    const mine = ++drawing;
    let m;
    try {
      m = await ops.call('GET', '/ops/api/fleet/map' + (query ? '?' + query : ''));
    } catch (e) {
      show(box, el('p', { class: 'msg bad' }, 'Could not load the map: ' + e.message));
      return;
    }
    if (mine !== drawing || !box.isConnected) return;
    if (!m.bounds) {
      show(box, el('p', { class: 'muted' }, m.matched ? 'None of these sites has coordinates.' : 'No sites to show.'));
      return;
    }
    const at = projector(m.bounds);
    const sites = m.cells.reduce((a, c) => a + c.sites, 0);
    const desc = `${m.located} of ${m.matched} sites have coordinates: ${m.markers.length} site` +
      `${m.markers.length === 1 ? '' : 's'} with problems drawn one by one (links), ${sites} other sites in ` +
      `${m.cells.length} groups. The table lists the same sites.`;
    const max = Math.max(1, ...m.cells.map((c) => c.sites));
    const cells = svg('g', { class: 'cells', 'aria-hidden': 'true' }, m.cells.map((c) => {
      const [x, y] = at(c.lat, c.lon);
      const dot = shape(c.health, x, y, 3 + 5 * Math.sqrt(c.sites / max), { 'data-sites': c.sites });
      dot.append(svg('title', {}, `${c.sites} sites`));
      return dot;
    }));
    // The worst last, so that it is drawn on top.
    const markers = svg('g', { class: 'markers' }, m.markers.slice().reverse().map((mk) => {
      const [x, y] = at(mk.lat, mk.lon);
      const name = `${mk.name || mk.site}: ${HEALTH[mk.health] || mk.health}, ${mk.problem.replace(/_/g, ' ')}`;
      return svg('a', { href: '#/site/' + encodeURIComponent(mk.site), 'aria-label': name, 'data-site': mk.site, class: 'marker' },
        svg('title', {}, name), shape(mk.health, x, y, 9, {}));
    }));
    show(box,
      svg('svg', { id: 'map', viewBox: `0 0 ${W} ${H}`, role: 'group', 'aria-labelledby': 'map-title', 'aria-describedby': 'map-desc' },
        svg('title', { id: 'map-title' }, 'Map of the fleet'), svg('desc', { id: 'map-desc' }, desc),
        svg('rect', { class: 'map-bg', x: 0, y: 0, width: W, height: H }), cells, markers),
      el('p', { class: 'muted', id: 'map-text' }, desc),
      el('ul', { class: 'legend', 'aria-label': 'Map legend' }, Object.entries(HEALTH).map(([k, l]) =>
        el('li', {}, svg('svg', { viewBox: '0 0 20 20', width: 16, height: 16, 'aria-hidden': 'true' }, shape(k, 10, 10, 7, {})), ' ' + l))));
  }

  ops.drawMap = drawMap;
})();
