// Door open: after a pickup the doors open one after another; this screen names each door
// in words ("Door 12 is open — bottom row, left"), chimes once per door, polls the session
// (GET /api/sessions/{id}) and follows every door until all are closed and empty, then
// thanks the resident. Machine state: doors (machine.js).
import { doorPlace } from '../i18n.js';
import { TIMING } from '../timers.js';
import * as thanks from './thanks.js';

// start shows the doors of a pickup answer ({session, doors, compromised, order_ref}).
export function start(k, body) {
  const { state } = k;
  const doors = Array.isArray(body.doors) ? body.doors : [];
  state.session = {
    id: body.session,
    doors,
    compromised: !!body.compromised,
    ref: typeof body.order_ref === 'string' ? body.order_ref : '',
    done: false
  };
  state.announced = {};
  state.everOpen = {};
  state.fullSince = {};
  noteFull(k, doors);
  state.lastChange = k.now();
  state.pollFailures = 0;
  k.clearBanner();
  k.go('opened');
  announce(k, doors, true);
  if (state.session.id) k.later('poll', TIMING.pollMs, () => poll(k));
  k.later('doorsQuiet', TIMING.doorsQuietMs, () => checkQuiet(k));
}

// noteFull remembers since when each door has read closed with something inside.
function noteFull(k, doors) {
  const { state } = k;
  const now = k.now();
  for (const d of doors) {
    if (d.state === 'closed' && d.empty === false) {
      if (!state.fullSince[d.number]) state.fullSince[d.number] = now;
    } else {
      delete state.fullSince[d.number];
    }
  }
}

// phase: what the resident is told about a door. "Closed but something inside" waits
// a few seconds, so that the infrared reading after a close does not raise a false alarm.
export function phase(state, d, now) {
  if (d.state === 'open' || d.state === 'jammed') return d.state;
  if (d.state === 'closed') {
    if (d.empty === true) return 'closed-empty';
    const since = state.fullSince[d.number];
    if (d.empty === false && since && now - since >= TIMING.fullGraceMs) return 'closed-full';
  }
  return 'closed';
}

// announce says, and chimes, each door that newly opened, one after another like the
// doors themselves; and says which doors got stuck or were closed with something inside.
function announce(k, doors, first) {
  const { state } = k;
  const opened = [];
  const notes = [];
  for (const d of doors) {
    const prev = state.announced[d.number];
    const now = phase(state, d, k.now());
    if (now === prev) continue;
    state.announced[d.number] = now;
    if (now === 'open' && !state.everOpen[d.number]) {
      state.everOpen[d.number] = true;
      opened.push(d);
    } else if (now === 'open') {
      opened.push(d); // opened again (someone re-opened it): say so again
    } else if (now === 'jammed') {
      notes.push({ key: 'doorJammedAnnounce', params: { n: d.number } });
    } else if (now === 'closed-full' && state.everOpen[d.number]) {
      notes.push({ key: 'doorStillFull', params: { n: d.number } });
    }
  }
  if (!opened.length && !notes.length) return;
  const parts = opened.map((d) => ({ door: d, key: 'doorOpenBanner' })).concat(notes);
  if (first && state.session && state.session.compromised) parts.push('compromisedReminder');
  k.banner(notes.length && !opened.length ? 'error' : 'door', parts);
  opened.forEach((d, i) => k.later('chime' + d.number, i * TIMING.announceStaggerMs, k.chime));
}

async function poll(k) {
  const { state } = k;
  const s = state.session;
  if (!s || state.screen !== 'doors') return;
  const r = await k.api.session(s.id);
  if (state.session !== s || state.screen !== 'doors') return;
  if (r.ok) {
    if (state.pollFailures >= 3) k.clearBanner();
    state.pollFailures = 0;
    const doors = Array.isArray(r.body.doors) ? r.body.doors : s.doors;
    if (JSON.stringify(doors) !== JSON.stringify(s.doors)) {
      state.lastChange = k.now();
      k.later('doorsQuiet', TIMING.doorsQuietMs, () => checkQuiet(k));
    }
    s.doors = doors;
    noteFull(k, doors);
    if (r.body.done) {
      s.done = true;
      thanks.show(k);
      return;
    }
    render(k);
    announce(k, doors, false);
  } else if (r.status === 404 || r.status === 410) {
    // The edge no longer knows the session (it ended or the daemon restarted).
    k.home();
    return;
  } else {
    state.pollFailures++;
    if (state.pollFailures === 3) k.banner('info', ['pollTrouble']);
  }
  k.later('poll', TIMING.pollMs, () => poll(k));
}

// checkQuiet gives up on the doors screen after TIMING.doorsQuietMs without any change.
function checkQuiet(k) {
  const { state } = k;
  if (state.screen !== 'doors') return;
  if (k.now() - state.lastChange >= TIMING.doorsQuietMs) k.home();
  else k.later('doorsQuiet', TIMING.doorsQuietMs - (k.now() - state.lastChange), () => checkQuiet(k));
}

function doorStateKey(state, d, now) {
  switch (phase(state, d, now)) {
    case 'open': return { key: 'stateOpen', cls: 'open', icon: 'door' };
    case 'jammed': return { key: 'stateJammed', cls: 'jammed', icon: 'error' };
    case 'closed-empty': return { key: 'stateClosedEmpty', cls: 'done', icon: 'ok' };
    case 'closed-full': return { key: 'stateClosedFull', cls: 'full', icon: 'error' };
    default: return { key: 'stateClosed', cls: 'closed', icon: 'info' };
  }
}

export function render(k) {
  const { state, $, L } = k;
  const s = state.session;
  if (!s) return;
  const warn = $('#doors-compromised');
  warn.hidden = !s.compromised;
  warn.textContent = s.compromised ? L('compromisedReminder') : '';
  $('#doors-ref').textContent = s.ref ? L('orderRef', { ref: s.ref }) : '';
  const list = $('#door-list');
  list.textContent = '';
  for (const d of s.doors) {
    const st = doorStateKey(state, d, k.now());
    const place = doorPlace(d, state.lang);
    list.append(k.el('li', { class: 'door door-' + st.cls },
      k.el('span', { class: 'door-num', 'aria-hidden': 'true' }, String(d.number)),
      k.el('div', { class: 'door-text' },
        k.el('p', { class: 'door-name' }, L('doorName', { n: d.number })),
        place ? k.el('p', { class: 'door-where' }, place) : null,
        k.el('p', { class: 'door-state' }, k.icon(st.icon), k.el('span', null, L(st.key))))));
  }
}
