/*
 * Larder driver page (phone): sign in with a driver key, pick a site, see today's manifest
 * (orders to load, orders to take back), get a loading credential for the kiosk or open a
 * door remotely, and report a problem with a compartment so the order moves to another.
 * Chinese by default, English one tap away. The key stays in this tab (sessionStorage);
 * recent site ids (not secret) are remembered in localStorage.
 */
(function () {
  'use strict';
  const { api, el, show, i18n, fmtTime, session } = globalThis.Larder;
  const KEY = 'larder.driver.key';
  const SITES = 'larder.driver.sites';
  const $ = (id) => document.getElementById(id);

  const L = i18n({
    zh: {
      brand: 'Larder 司机', signInTitle: '司机登录', keyLabel: '司机密钥', signIn: '登录', signOut: '退出',
      todayTitle: '今日任务', siteLabel: '站点编号', loadManifest: '查看清单', langToggle: 'English',
      loading: '正在加载…', badKey: '密钥无效，请重新登录。', notDriver: '这不是司机密钥。',
      noSite: '没有这个站点。', network: '网络不通，请稍后再试。', error: '出错了：{msg}',
      credTitle: '柜机装货凭证', credHelp: '在柜机上按“配送员入口”，扫描二维码或输入这串数字，然后按“登录”。', credButton: '获取装货凭证',
      credValid: '有效期至 {time}', qrLabel: '装货凭证二维码', toLoad: '待装货', toReturn: '待取回（已过期）', compromised: '待取回（温度超标）',
      loadedPart: '部分已装', nothing: '这个站点今天没有任务。', ordersTitle: '订单（{n}）',
      door: '{n} 号门', size: '尺寸 {size}', zone: '温区：{zone}', loaded: '已装', notLoaded: '未装',
      parcels: '{n} 件', window: '送达时段 {start} – {end}', open: '远程开 {n} 号门', opening: '正在开门…',
      opened: '{n} 号门已打开。', openFailed: '开门失败：{msg}',
      problem: '{n} 号门有问题', problemReason: '问题', problemSend: '报告并换门',
      moved: '已换到 {doors} 号门。', useKiosk: '暂时不能在手机上换门，请在柜机上按"问题"。', reasons_jammed: '门锁卡住', reasons_occupied: '里面有东西',
      reasons_dirty: '不干净', reasons_too_small: '放不下', reasons_faulty: '其他故障',
      zones_frozen: '冷冻', zones_chilled: '冷藏', zones_cool: '恒温', zones_ambient: '常温',
      split: '这一单分放在 {n} 个温区（{zones}）：每件放进下面写着它的那个门。',
      slotFor: '{zone} · 放：{parcels}', parcelN: '第 {n} 件（{size}）',
    },
    en: {
      brand: 'Larder driver', signInTitle: 'Driver sign-in', keyLabel: 'Driver key', signIn: 'Sign in', signOut: 'Sign out',
      todayTitle: "Today's work", siteLabel: 'Site id', loadManifest: 'Show manifest', langToggle: '中文',
      loading: 'Loading…', badKey: 'Unknown key: sign in again.', notDriver: 'This is not a driver key.',
      noSite: 'No such site.', network: 'No network: try again shortly.', error: 'Something went wrong: {msg}',
      credTitle: 'Kiosk loading credential', credHelp: 'At the kiosk press "Driver", scan the QR code or type these digits, then press Sign in.',
      credButton: 'Get a loading credential', credValid: 'Valid until {time}', qrLabel: 'QR code of the loading credential', toLoad: 'To load',
      toReturn: 'Take back (expired)', compromised: 'Take back (temperature)', loadedPart: 'Partly loaded',
      nothing: 'Nothing to do at this site today.', ordersTitle: 'Orders ({n})',
      door: 'Door {n}', size: 'size {size}', zone: 'Zone: {zone}', loaded: 'loaded', notLoaded: 'not loaded',
      parcels: '{n} parcel(s)', window: 'Window {start} – {end}', open: 'Open door {n} remotely', opening: 'Opening…',
      opened: 'Door {n} is open.', openFailed: 'Could not open: {msg}',
      problem: 'Problem with door {n}', problemReason: 'Problem', problemSend: 'Report and move',
      moved: 'Moved to door {doors}.', useKiosk: 'Moving from the phone is not available yet: press "Problem" on the kiosk.', reasons_jammed: 'Lock jammed', reasons_occupied: 'Something inside',
      reasons_dirty: 'Dirty', reasons_too_small: 'Too small', reasons_faulty: 'Other fault',
      zones_frozen: 'frozen', zones_chilled: 'chilled', zones_cool: 'cool', zones_ambient: 'ambient',
      split: 'This order is split across {n} zones ({zones}): put each parcel behind the door listed for it.',
      slotFor: '{zone} · put in: {parcels}', parcelN: 'parcel {n} ({size})',
    },
  }, 'larder.lang', 'zh');
  const t = L.t;
  const REASONS = ['jammed', 'occupied', 'dirty', 'too_small', 'faulty'];

  let key = session.get(KEY);
  let site = '';
  let last = null;

  function say(text, kind) {
    $('msg').className = 'msg ' + (kind || 'info');
    $('msg').textContent = text || '';
  }

  function explain(e) {
    if (e.status === 401) { signOut(); return t('badKey'); }
    if (e.status === 403) return t('notDriver');
    if (e.status === 0) return t('network');
    if (e.status === 501) return t('useKiosk');
    return t('error', { msg: e.message });
  }

  function call(method, path, body) { return api(method, path, { key, body }); }

  function signOut() {
    key = '';
    session.drop(KEY);
    $('signin').hidden = false;
    $('work').hidden = true;
    $('signout').hidden = true;
  }

  function signedIn() {
    $('signin').hidden = true;
    $('work').hidden = false;
    $('signout').hidden = false;
    const recent = JSON.parse(localStorage.getItem(SITES) || '[]');
    show($('recent-sites'), recent.map((s) => el('option', { value: s })));
    if (!$('site').value && recent.length) $('site').value = recent[0];
  }

  function remember(s) {
    const recent = JSON.parse(localStorage.getItem(SITES) || '[]').filter((x) => x !== s);
    recent.unshift(s);
    localStorage.setItem(SITES, JSON.stringify(recent.slice(0, 8)));
  }

  $('signin-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    key = $('key').value.trim();
    $('key').value = '';
    session.set(KEY, key);
    say('');
    signedIn();
    if ($('site').value) loadManifest();
  });
  $('signout').addEventListener('click', () => { signOut(); show($('manifest')); say(''); });
  $('site-form').addEventListener('submit', (ev) => { ev.preventDefault(); loadManifest(); });
  $('lang').addEventListener('click', () => {
    L.set(L.lang === 'zh' ? 'en' : 'zh');
    applyLang();
    if (last) renderManifest(last);
  });

  function applyLang() {
    L.apply(document);
    $('lang').textContent = t('langToggle');
    $('lang').setAttribute('lang', L.lang === 'zh' ? 'en' : 'zh-CN');
    document.title = t('brand');
  }

  async function loadManifest() {
    site = $('site').value.trim().toLowerCase();
    if (!site) return;
    say(t('loading'));
    try {
      last = await call('GET', `/v1/sites/${encodeURIComponent(site)}/manifest`);
      remember(site);
      say('');
      renderManifest(last);
    } catch (e) {
      say(e.status === 404 ? t('noSite') : explain(e), 'bad');
    }
  }

  function stateText(o) {
    if (o.state === 'expired') return t('toReturn');
    if (o.state === 'compromised') return t('compromised');
    if ((o.slots || []).some((s) => s.loaded)) return t('loadedPart');
    return t('toLoad');
  }

  function renderManifest(m) {
    const cred = el('div', { class: 'card', id: 'cred' },
      el('h2', {}, t('credTitle')),
      el('p', {}, t('credHelp')),
      el('div', { id: 'cred-out', 'aria-live': 'polite' }),
      el('button', { type: 'button', onclick: getCredential }, t('credButton')));
    const orders = m.orders || [];
    show($('manifest'), cred,
      el('h2', {}, t('ordersTitle', { n: orders.length })),
      orders.length ? orders.map(orderCard) : el('p', {}, t('nothing')));
  }

  async function getCredential() {
    const out = $('cred-out');
    show(out, el('p', {}, t('loading')));
    try {
      const c = await call('POST', `/v1/sites/${encodeURIComponent(site)}/loading-credentials`);
      const digits = c.credential.replace(/(\d{5})(?=\d)/g, '$1 ');
      show(out, globalThis.LarderQR.svg(c.credential, t('qrLabel')),
        el('p', { class: 'credential' }, digits), el('p', {}, t('credValid', { time: fmtTime(c.expires_at, L.lang) })));
    } catch (e) {
      show(out, el('p', { class: 'msg bad' }, explain(e)));
    }
  }

  // slotParcels says which of the order's parcels go behind door s, and in which zone:
  // "chilled · put in: parcel 1 (M)".
  function slotParcels(o, s) {
    const parcels = (s.parcels || []).map((i) => t('parcelN', { n: i + 1, size: ((o.parcels || [])[i] || s).size }));
    return t('slotFor', { zone: t('zones_' + (s.zone || o.zone)), parcels: parcels.join(', ') || '—' });
  }

  function orderCard(o) {
    const status = el('p', { class: 'msg', role: 'status' });
    const zones = [...new Set((o.slots || []).map((s) => s.zone || o.zone))];
    return el('article', { class: 'card', dataset: { order: o.order } },
      el('h3', {}, o.external_id || o.order),
      el('p', { class: 'status-line' }, stateText(o)),
      zones.length > 1
        ? el('p', { class: 'split' }, t('parcels', { n: (o.parcels || []).length }), ' · ',
          t('split', { n: zones.length, zones: zones.map((z) => t('zones_' + z)).join(L.lang === 'zh' ? '、' : ', ') }))
        : el('p', {}, t('zone', { zone: t('zones_' + o.zone) }), ' · ', t('parcels', { n: (o.parcels || []).length })),
      o.window ? el('p', {}, t('window', { start: fmtTime(o.window.start, L.lang, o.time_zone), end: fmtTime(o.window.end, L.lang, o.time_zone) })) : null,
      el('ul', { class: 'doors' }, (o.slots || []).map((s) => el('li', { dataset: { door: String(s.compartment) } },
        el('span', { class: 'door-n' }, t('door', { n: s.compartment })), ' ',
        el('span', {}, `${t('size', { size: s.size })} · ${s.loaded ? t('loaded') : t('notLoaded')}`), el('br'),
        el('span', { class: 'slot-parcels' }, slotParcels(o, s)),
        o.state === 'assigned' && !s.loaded ? [
          el('button', { type: 'button', onclick: () => openDoor(o, s, status) }, t('open', { n: s.compartment })),
          problemForm(o, s, status),
        ] : null))),
      status);
  }

  function problemForm(o, s, status) {
    const id = `p-${o.order}-${s.compartment}`;
    const sel = el('select', { id, name: 'reason' }, REASONS.map((r) => el('option', { value: r }, t('reasons_' + r))));
    return el('details', {},
      el('summary', {}, t('problem', { n: s.compartment })),
      el('form', {
        onsubmit: async (ev) => {
          ev.preventDefault();
          status.className = 'msg info';
          status.textContent = t('loading');
          try {
            const r = await call('POST', `/driver/api/orders/${encodeURIComponent(o.order)}/problem`,
              { compartment: s.compartment, reason: sel.value });
            const doors = r.slots.map((x) => x.compartment).join(', ');
            await loadManifest();
            say(t('moved', { doors }), 'ok');
          } catch (e) {
            status.className = 'msg bad';
            status.textContent = explain(e);
          }
        },
      }, el('label', { for: id }, t('problemReason')), sel, el('button', { type: 'submit', class: 'danger' }, t('problemSend'))));
  }

  async function openDoor(o, s, status) {
    status.className = 'msg info';
    status.textContent = t('opening');
    try {
      let cmd = await call('POST', `/v1/orders/${encodeURIComponent(o.order)}/open`, { compartment: s.compartment });
      for (let i = 0; i < 60 && !['SUCCEEDED', 'FAILED', 'TIMED_OUT', 'REJECTED'].includes(cmd.state); i++) {
        await new Promise((r) => setTimeout(r, 1000));
        cmd = await call('GET', '/v1/commands/' + encodeURIComponent(cmd.id));
      }
      if (cmd.state === 'SUCCEEDED') {
        status.className = 'msg ok';
        status.textContent = t('opened', { n: s.compartment });
      } else {
        status.className = 'msg bad';
        status.textContent = t('openFailed', { msg: cmd.message || cmd.state });
      }
    } catch (e) {
      status.className = 'msg bad';
      status.textContent = explain(e);
    }
  }

  applyLang();
  if (key) signedIn(); else signOut();
})();
