// The page's shell: the one mutable state, screen changes through the state machine
// (machine.js), the banner (the assertive live region), language, idle return, the
// /api/info poll and the wiring of the controls that are on every screen. What each
// screen shows and does lives in screens/*.js; each takes the kiosk object `k` made here.
//
// Everything outside is injected (document, window, api, clock), so node tests run the
// whole page on test/fake-dom.js, the fake edge and a fake clock.
//
// Secrets: the pickup code, the second factor and the driver credential live only in memory
// for the length of one attempt, are cleared after it and are never logged.
import { DEFAULT_LANG, HTML_LANG, LANGS, doorSentence, formatClock, t } from './i18n.js';
import { SCREENS, START, sectionOf, transition } from './machine.js';
import { TIMING, createTimers } from './timers.js';
import { el, icon } from './dom.js';
import { createSound } from './sound.js';
import { emptyEntry } from './keypad.js';
import * as pickup from './screens/pickup.js';
import * as answer from './screens/answer.js';
import * as locked from './screens/locked.js';
import * as doorOpen from './screens/door-open.js';
import * as thanks from './screens/thanks.js';
import * as help from './screens/help.js';
import * as driver from './screens/driver.js';

// What each section of index.html renders, by its data-screen name.
const RENDER = {
  keypad: pickup.render,
  busy: answer.renderBusy,
  compromised: answer.renderCompromised,
  message: answer.renderMessage,
  locked: locked.render,
  doors: doorOpen.render,
  thanks: thanks.render,
  'driver-login': () => {},
  driver: driver.render,
  'driver-problem': driver.renderProblem
};

export function createKiosk({ document: doc, window: win, api, clock }) {
  const $ = (sel) => doc.querySelector(sel);
  const $$ = (sel) => Array.from(doc.querySelectorAll(sel));
  const timers = createTimers(clock);
  const sound = createSound(win);

  const state = {
    lang: DEFAULT_LANG,
    screen: START, // a state of machine.js
    site: '',
    siteName: '',
    timeZone: '',
    entry: emptyEntry(),
    scan: null, // {text, at}: a QR scanner's keys so far (screens/pickup.js)
    pending: null, // {code, factor} kept only while the compromised choice is on screen
    minutesOut: null,
    lockUntil: 0,
    session: null, // {id, doors, compromised, ref, done}
    announced: {}, // door number -> last phase announced
    everOpen: {}, // door number -> seen open in this session
    fullSince: {}, // door number -> when it was first seen closed with something inside
    lastChange: 0,
    pollFailures: 0,
    message: null, // {titleKey, bodyKey}
    bannerKey: null, // re-rendered on language change: {kind, parts}
    helpAt: 0,
    driver: null, // {token, id, manifest, manifestJSON, failed}
    problem: null, // {order, compartment}
    thanksUntil: 0,
    busy: false,
    busyKey: 'working',
    idleDeadline: 0 // when the idle clock sends this screen home (0: no idle clock)
  };

  // k is what every screen module is handed: the state, the injected document, API
  // client and clock, the named timers on that clock, text in the current language, and
  // the shell's operations (go through the machine, banner, home, idle).
  const k = {
    state, doc, api, clock, timers, $, $$,
    later: timers.later,
    cancel: timers.cancel,
    now: () => clock.now(),
    L: (key, params) => t(state.lang, key, params),
    el: (tag, attrs, ...children) => el(doc, tag, attrs, ...children),
    icon: (name) => icon(doc, name),
    ensureAudio: sound.ensure,
    chime: sound.chime,
    section: () => sectionOf(state.screen),
    go, render, banner, clearBanner, bannerText, home, setLang, resetIdle, loadInfo, start
  };

  // --- screens --------------------------------------------------------------------------
  // go moves the machine by `event` and shows the new screen: the section, focus on its
  // heading (or opts.focusEl), scrolled to the top, idle clock restarted. A refused event
  // changes nothing and returns false. opts.quiet changes the state only (the keypad's
  // two steps share one section, and stepping must not move the focus off the keys).
  function go(event, opts) {
    const o = opts || {};
    const next = transition(state.screen, event);
    if (!next) return false;
    state.screen = next;
    if (o.quiet) return true;
    const name = sectionOf(next);
    for (const s of $$('.screen')) s.hidden = s.dataset.screen !== name;
    doc.body.dataset.screen = name;
    $('#driver-link').hidden = name !== 'keypad';
    render();
    if (o.focus !== false) {
      const target = o.focusEl || $('.screen[data-screen="' + name + '"] h1');
      if (target) target.focus({ preventScroll: false });
    }
    if (win && win.scrollTo) win.scrollTo(0, 0);
    resetIdle();
    return true;
  }

  function render() {
    renderStatic();
    renderBanner();
    const paint = RENDER[k.section()];
    if (paint) paint(k);
    renderIdleWarning();
  }

  function renderStatic() {
    doc.documentElement.lang = HTML_LANG[state.lang];
    doc.title = k.L('pageTitle');
    for (const n of $$('[data-i18n]')) n.textContent = k.L(n.dataset.i18n);
    const toggle = $('#lang-toggle');
    toggle.textContent = k.L('langToggle');
    toggle.setAttribute('lang', k.L('langToggleLang'));
    const name = state.siteName || state.site; // the cloud's name for the bank, else its id
    $('#site-name').textContent = name ? k.L('site', { site: name }) : '';
    renderClock();
  }

  // renderClock shows the time of day at the bank, in the site's zone (from /api/info);
  // none until the edge knows the zone.
  function renderClock() {
    $('#site-time').textContent = formatClock(clock.now(), state.timeZone, state.lang);
  }

  // clockTick redraws the clock at each new minute. It runs on the clock itself, not on
  // the named timers, which home() cancels.
  function clockTick() {
    renderClock();
    clock.setTimeout(clockTick, 60000 - (clock.now() % 60000));
  }

  function setLang(lang) {
    state.lang = LANGS.includes(lang) ? lang : DEFAULT_LANG;
    render();
  }

  // home: back to the start, everything forgotten, Chinese again for the next person.
  // Options: keepLang, keepBanner, noFocus, event (the machine event, 'home' unless the
  // caller has a more telling one) and entry (the keypad's digits to keep, for the phone
  // step after a wrong answer).
  function home(opts) {
    timers.cancelAll();
    state.entry = (opts && opts.entry) || emptyEntry();
    state.scan = null;
    state.pending = null;
    state.session = null;
    state.announced = {};
    state.everOpen = {};
    state.fullSince = {};
    state.message = null;
    state.minutesOut = null;
    state.problem = null;
    if (!(opts && opts.keepLang)) state.lang = DEFAULT_LANG;
    if (!(opts && opts.keepBanner)) state.bannerKey = null;
    if (state.lockUntil > clock.now()) {
      locked.show(k);
      return;
    }
    go((opts && opts.event) || 'home', { focus: !(opts && opts.noFocus) });
    scheduleInfo();
  }

  // --- banner (the assertive live region) ---------------------------------------------------
  // The banner is kept as keys + params, not text, so switching language re-says it.
  // A part is a key, {key, params}, or {door, key} (a door sentence: number and place).
  function banner(kind, parts) {
    state.bannerKey = parts && parts.length ? { kind, parts } : null;
    renderBanner();
  }
  function clearBanner() {
    banner(null, null);
  }
  function partText(p) {
    if (typeof p === 'string') return k.L(p);
    if (p.door) return doorSentence(state.lang, p.door, p.key);
    return k.L(p.key, p.params);
  }
  // bannerText is what the banner says now, one string per line.
  function bannerText() {
    return state.bannerKey ? state.bannerKey.parts.map(partText) : [];
  }
  function renderBanner() {
    const box = $('#announcer');
    box.textContent = '';
    box.className = 'banner';
    const b = state.bannerKey;
    if (!b) return;
    box.classList.add('banner-' + b.kind, 'banner-on');
    const iconName = { door: 'door', error: 'error', ok: 'ok', info: 'info' }[b.kind] || 'info';
    const lines = k.el('div', { class: 'banner-lines' });
    for (const line of bannerText()) lines.append(k.el('p', { class: 'banner-line' }, line));
    box.append(k.icon(iconName), lines);
  }

  // --- idle -------------------------------------------------------------------------------
  // idleLimit follows the screen's idle rule in machine.js.
  function idleLimit() {
    const rule = SCREENS[state.screen].idle;
    if (rule === 'driver') return state.driver ? TIMING.driverIdleMs : 0;
    if (rule !== 'resident') return 0; // locked, doors, thanks run their own clocks; busy waits
    // The empty start screen has nothing to forget.
    if (state.screen === START && !state.entry.code && state.lang === DEFAULT_LANG &&
      !state.bannerKey) return 0;
    return TIMING.idleMs;
  }
  function resetIdle() {
    timers.cancel('idle');
    timers.cancel('idleTick');
    const limit = idleLimit();
    state.idleDeadline = limit ? clock.now() + limit : 0;
    renderIdleWarning();
    if (!limit) return;
    timers.later('idleTick', Math.max(0, limit - TIMING.idleWarnMs), idleTick);
  }
  function idleTick() {
    const left = state.idleDeadline - clock.now();
    if (!state.idleDeadline) return;
    if (left <= 0) {
      state.idleDeadline = 0;
      renderIdleWarning();
      onIdle();
      return;
    }
    renderIdleWarning();
    timers.later('idleTick', Math.min(1000, left), idleTick);
  }
  function renderIdleWarning() {
    const box = $('#idle-warning');
    const left = state.idleDeadline - clock.now();
    if (!state.idleDeadline || left > TIMING.idleWarnMs) {
      box.hidden = true;
      return;
    }
    const key = state.driver ? 'idleWarningDriver' : 'idleWarning';
    $('#idle-text').textContent = k.L(key, { s: Math.max(0, Math.ceil(left / 1000)) });
    box.hidden = false;
  }
  function onIdle() {
    if (state.driver) {
      driver.logout(k, 'idleLoggedOut');
      return;
    }
    home();
  }

  // --- info (site name, lock state, edge reachable) ------------------------------------------
  // loadInfo resolves true when the edge says the keypad is locked (and shows it).
  async function loadInfo() {
    const r = await api.info();
    if (r.ok) {
      state.site = typeof r.body.site === 'string' ? r.body.site : '';
      state.siteName = typeof r.body.site_name === 'string' ? r.body.site_name : '';
      state.timeZone = typeof r.body.time_zone === 'string' ? r.body.time_zone : '';
      const lockedFor = Number(r.body.locked_seconds) || 0;
      if (state.bannerKey && state.bannerKey.parts[0] === 'offlineNotice') clearBanner();
      renderStatic();
      if (lockedFor > 0 && (k.section() === 'keypad' || state.screen === 'locked')) {
        state.lockUntil = clock.now() + lockedFor * 1000;
        locked.show(k, { announce: state.screen !== 'locked' });
        return true;
      }
    } else if (r.code === 'network' && k.section() === 'keypad') {
      banner('error', ['offlineNotice']);
    }
    return false;
  }
  function scheduleInfo() {
    timers.later('info', TIMING.infoPollMs, async () => {
      if (k.section() === 'keypad' && !state.entry.code) await loadInfo();
      if (k.section() === 'keypad') scheduleInfo();
    });
  }

  // --- wiring and start ---------------------------------------------------------------------
  function start() {
    pickup.wire(k);
    answer.wire(k);
    driver.wire(k);
    $('#lang-toggle').addEventListener('click', () => {
      setLang(state.lang === 'zh' ? 'en' : 'zh');
      resetIdle();
    });
    $('#help-btn').addEventListener('click', () => help.press(k));
    $('#locked-help').addEventListener('click', () => help.press(k));
    for (const b of $$('[data-action="home"]')) b.addEventListener('click', () => home());
    $('#idle-stay').addEventListener('click', resetIdle);

    // Any touch or key counts as activity, and unlocks sound for the door chime.
    for (const type of ['pointerdown', 'keydown', 'input']) {
      doc.addEventListener(type, () => {
        sound.ensure();
        if (state.idleDeadline) resetIdle();
      }, { capture: true, passive: true });
    }
    doc.addEventListener('keydown', (ev) => {
      if (driver.onKey(k, ev)) return;
      pickup.onKey(k, ev);
    });

    renderStatic();
    clockTick();
    home({ noFocus: true });
    return loadInfo();
  }

  return k;
}
