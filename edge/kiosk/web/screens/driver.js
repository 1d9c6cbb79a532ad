// Driver mode: sign in with the loading credential (typed, or a QR scanner that types),
// the manifest of orders to load, loaded and expired (refreshed every
// TIMING.manifestPollMs), open a door to load it, report a problem with a door (the edge
// moves the order to another door), take an expired order back, sign out. A 401 on any
// driver call means the kiosk token is over: back to sign-in.
// Machine states: driver-login, driver, driver-problem (machine.js).
import { doorPlace } from '../i18n.js';
import { emptyEntry } from '../keypad.js';
import { TIMING } from '../timers.js';

// groupManifest splits the driver's orders by state, in the order the driver works.
export function groupManifest(manifest) {
  const groups = { reserved: [], loaded: [], expired: [] };
  const orders = (manifest && Array.isArray(manifest.orders)) ? manifest.orders : [];
  for (const o of orders) {
    if (o && groups[o.state]) groups[o.state].push(o);
  }
  return groups;
}

// showLogin puts the sign-in screen up by `event` (driverLink, refused, signedOut), with
// messageKey in the banner if there is one.
export function showLogin(k, event, messageKey) {
  k.timers.cancelAll();
  k.state.entry = emptyEntry();
  const input = k.$('#credential');
  input.value = '';
  k.go(event, { focusEl: input });
  if (messageKey) k.banner('error', [messageKey]);
  else k.clearBanner();
}

async function login(k, ev) {
  const { state } = k;
  ev.preventDefault();
  const input = k.$('#credential');
  const credential = input.value.trim();
  input.value = '';
  if (!credential) {
    k.banner('error', ['credentialMissing']);
    input.focus();
    return;
  }
  state.busyKey = 'workingDriver';
  k.go('signIn');
  const r = await k.api.driverLogin(credential);
  if (r.ok && r.body.token) {
    state.driver = {
      token: r.body.token,
      id: r.body.driver || '',
      manifest: null,
      manifestJSON: '',
      failed: false
    };
    k.clearBanner();
    k.later('driverToken', TIMING.driverTokenMs, () => logout(k, 'sessionEnded'));
    k.go('signedIn');
    await refreshManifest(k);
    return;
  }
  const key = r.code === 'bad_credential' || r.status === 401 ? 'badCredential'
    : r.code === 'expired' ? 'credentialExpired'
      : r.code === 'network' ? 'networkBody' : 'errorBody';
  showLogin(k, 'refused', key);
}

function unauthorized(k, r) {
  if (r.status === 401) {
    logout(k, 'sessionEnded', { skipServer: true });
    return true;
  }
  return false;
}

// logout ends driver mode: 'loggedOut' (the driver's own tap) goes back to the start,
// any other messageKey (idle, token over) to sign-in with that message.
export function logout(k, messageKey, opts) {
  const { state } = k;
  const d = state.driver;
  state.driver = null;
  state.problem = null;
  k.timers.cancelAll();
  if (d && !(opts && opts.skipServer)) k.api.driverLogout(d.token); // best effort
  if (messageKey === 'loggedOut') {
    k.home({ keepBanner: true });
    k.banner('ok', ['loggedOut']);
  } else {
    showLogin(k, 'signedOut', messageKey);
  }
}

async function refreshManifest(k) {
  const { state } = k;
  const d = state.driver;
  if (!d) return;
  const r = await k.api.manifest(d.token);
  if (state.driver !== d) return;
  if (r.ok) {
    const json = JSON.stringify(r.body);
    d.failed = false;
    if (json !== d.manifestJSON) {
      d.manifestJSON = json;
      d.manifest = r.body;
      if (state.screen === 'driver') render(k);
    }
  } else if (unauthorized(k, r)) {
    return;
  } else if (!d.failed) {
    d.failed = true;
    k.banner('error', [r.code === 'network' ? 'networkBody' : 'manifestFailed']);
  }
  k.later('manifest', TIMING.manifestPollMs, () => {
    if (state.screen === 'driver' || state.screen === 'driver-problem') refreshManifest(k);
  });
}

function zoneName(k, zone) {
  const key = 'zone_' + zone;
  const s = k.L(key);
  return s === key ? String(zone || '') : s;
}

function doorStatus(k, d) {
  const parts = [];
  if (d.state === 'open') parts.push(k.L('doorStateOpen'));
  else if (d.state === 'jammed') parts.push(k.L('doorStateJammed'));
  else parts.push(k.L('doorStateClosed'));
  if (d.empty === true) parts.push(k.L('doorEmpty'));
  else if (d.empty === false) parts.push(k.L('doorLoaded'));
  return parts.join(' · ');
}

// render rebuilds the manifest; the focused button is found again by its data-focus key
// so a background refresh never throws the driver's place away.
export function render(k) {
  const { state, $, L, doc } = k;
  const d = state.driver;
  if (!d) return;
  $('#driver-who').textContent = d.id ? L('driverWho', { driver: d.id }) : '';
  const box = $('#manifest');
  const focusKey = doc.activeElement && box.contains(doc.activeElement)
    ? doc.activeElement.dataset.focus : null;
  box.textContent = '';
  if (!d.manifest) return; // first load still on its way
  const groups = groupManifest(d.manifest);
  const spec = [
    ['reserved', 'groupToLoad'],
    ['expired', 'groupExpired'],
    ['loaded', 'groupLoaded']
  ];
  for (const [stateName, headKey] of spec) {
    const orders = groups[stateName];
    const headId = 'group-' + stateName;
    const section = k.el('section', { class: 'group group-' + stateName, 'aria-labelledby': headId },
      k.el('h2', { id: headId }, L(headKey, { n: orders.length })));
    if (!orders.length) section.append(k.el('p', { class: 'note' }, L('groupEmpty')));
    const ul = k.el('ul', { class: 'orders' });
    for (const o of orders) ul.append(renderOrder(k, o, stateName));
    if (orders.length) section.append(ul);
    box.append(section);
  }
  if (focusKey) {
    const again = Array.from(box.querySelectorAll('[data-focus]')).find((b) => b.dataset.focus === focusKey);
    if (again) again.focus();
  }
}

function renderOrder(k, o, stateName) {
  const { state, L } = k;
  const doors = Array.isArray(o.doors) ? o.doors : [];
  const meta = [zoneName(k, o.zone)];
  if (o.accessible) meta.push(L('accessibleNote'));
  const li = k.el('li', { class: 'order' },
    k.el('h3', { class: 'order-head' }, L('orderHeading', { order: o.order })),
    k.el('p', { class: 'order-meta' }, meta.join(' · ')));
  const ul = k.el('ul', { class: 'ddoors' });
  for (const door of doors) {
    const place = doorPlace(door, state.lang);
    const item = k.el('li', { class: 'ddoor ddoor-' + (door.state || 'closed') },
      k.el('p', { class: 'ddoor-name' },
        k.el('strong', null, L('doorName', { n: door.number })),
        place ? L('placeSep') + place : ''),
      k.el('p', { class: 'ddoor-state' }, doorStatus(k, door)));
    if (stateName === 'reserved') {
      item.append(k.el('div', { class: 'ddoor-actions' },
        k.el('button', {
          type: 'button',
          class: 'btn btn-primary',
          'data-focus': 'open:' + o.order + ':' + door.number,
          onclick: () => open(k, o.order, door.number)
        }, L('openDoor', { n: door.number })),
        k.el('button', {
          type: 'button',
          class: 'btn btn-secondary',
          'data-focus': 'problem:' + o.order + ':' + door.number,
          onclick: () => {
            state.problem = { order: o.order, compartment: door.number };
            state.bannerKey = null; // an older "door N is open" would muddle the question
            k.go('problem');
          }
        }, L('problem', { n: door.number }))));
    }
    ul.append(item);
  }
  li.append(ul);
  if (stateName === 'expired') {
    li.append(k.el('button', {
      type: 'button',
      class: 'btn btn-primary',
      'data-focus': 'return:' + o.order,
      onclick: () => takeBack(k, o.order)
    }, L('returnOrder')));
  }
  return li;
}

// action runs one door call for the signed-in driver, one at a time, says the outcome and
// reads the manifest again.
async function action(k, call, onOk) {
  const { state } = k;
  const d = state.driver;
  if (!d || state.busy) return;
  state.busy = true;
  const r = await call(d.token);
  state.busy = false;
  if (state.driver !== d) return;
  if (unauthorized(k, r)) return;
  if (r.ok) onOk(r.body);
  else if (r.code === 'no_compartment') k.banner('error', ['noCompartment']);
  else if (r.code === 'not_found') k.banner('error', ['driverNotHere']);
  else if (r.code === 'conflict') k.banner('error', ['driverWrongDoor']);
  else if (r.code === 'hardware') k.banner('error', ['hardwareBody']);
  else if (r.code === 'network') k.banner('error', ['networkBody']);
  else k.banner('error', ['errorBody']);
  k.resetIdle();
  k.cancel('manifest');
  refreshManifest(k);
}

function open(k, order, compartment) {
  k.ensureAudio();
  return action(k, (tok) => k.api.driverOpen(tok, order, compartment), (body) => {
    const door = body.door || { number: compartment };
    if (door.state === 'jammed') {
      k.banner('error', [{ key: 'driverDoorJammed', params: { n: door.number } }]);
      return;
    }
    k.banner('door', [{ door, key: 'doorOpenBanner' }, 'driverDoorOpen']);
    k.chime();
  });
}

function problem(k, reason) {
  const p = k.state.problem;
  if (!p) return;
  k.ensureAudio();
  k.state.problem = null;
  k.go('reason');
  return action(k, (tok) => k.api.driverProblem(tok, p.order, p.compartment, reason), (body) => {
    const door = body.door;
    if (!door) return;
    k.banner('door', [{ door, key: 'newDoor' }]);
    k.chime();
  });
}

function takeBack(k, order) {
  k.ensureAudio();
  return action(k, (tok) => k.api.driverReturn(tok, order), (body) => {
    const doors = Array.isArray(body.doors) ? body.doors : [];
    k.banner('door', ['returnOpened'].concat(doors.map((door) => ({ door, key: 'doorOpenBanner' }))));
    doors.forEach((_, i) => k.later('chimeReturn' + i, i * TIMING.announceStaggerMs, k.chime));
  });
}

export function renderProblem(k) {
  const p = k.state.problem;
  k.$('#problem-title').textContent = p ? k.L('problemTitle', { n: p.compartment }) : '';
}

// onKey: a QR scanner types like a keyboard: on the sign-in screen send its keys to the
// credential field even if a finger moved the focus away. True when it took the key.
export function onKey(k, ev) {
  const input = k.$('#credential');
  if (k.state.screen === 'driver-login' && ev.key.length === 1 && ev.target !== input &&
    !ev.ctrlKey && !ev.metaKey && !ev.altKey) {
    input.focus();
    return true;
  }
  return false;
}

export function wire(k) {
  const { $, $$, state } = k;
  $('#driver-link').addEventListener('click', () => showLogin(k, 'driverLink', null));
  $('#driver-login-form').addEventListener('submit', (ev) => login(k, ev));
  $('#driver-logout').addEventListener('click', () => logout(k, 'loggedOut'));
  $('#driver-refresh').addEventListener('click', () => {
    k.cancel('manifest');
    if (state.driver) state.driver.manifestJSON = '';
    refreshManifest(k);
  });
  for (const b of $$('[data-reason]')) b.addEventListener('click', () => problem(k, b.dataset.reason));
  $('#problem-cancel').addEventListener('click', () => {
    state.problem = null;
    k.go('cancel');
  });
}
