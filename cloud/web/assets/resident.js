/*
 * Larder resident page, opened from the pickup notification: /r/{order}#c={code}.
 * The code is in the fragment, which the browser never sends to the server; this script
 * moves it to sessionStorage, removes it from the address bar and sends it in the
 * X-Pickup-Code header. Shows the order's status, the code and, while the order waits in the
 * locker, a QR code the kiosk opens without the phone digits, the doors and where they are,
 * the deadline, and an "extend" button when the rules allow it; once the order was picked up
 * or returned, its cold-chain record in the server's words. Chinese by default, English
 * one tap away; large type and high contrast for older residents.
 */
(function () {
  'use strict';
  const { api, el, show, i18n, fmtTime, session } = globalThis.Larder;
  const $ = (id) => document.getElementById(id);

  const L = i18n({
    zh: {
      brand: '生鲜取菜柜', title: '您的订单', loading: '正在加载…', langToggle: 'English',
      codeTitle: '取件码', codeHelp: '在柜机上输入取件码，再输入您手机号码的最后 4 位。',
      doorsTitle: '柜门', expiryTitle: '取件期限', coldTitle: '冷链记录', codeLabel: '短信里的 8 位取件码', show: '查看订单',
      st_assigned: '正在配送，送到后会再通知您。', st_loaded: '已送到，可以取菜了。',
      st_picked_up: '已取走，谢谢！', st_expired: '已过期，工作人员会来取回。请联系商家。',
      st_returned: '已退回商家。', st_cancelled: '订单已取消。',
      st_compromised: '这份订单温度超标，为了安全请不要食用。商家会为您退款或重新配送。',
      codeInvalid: '这个取件码已失效。请联系商家重新获取。',
      door: '{n} 号门', zone_frozen: '冷冻', zone_chilled: '冷藏', zone_cool: '恒温', zone_ambient: '常温',
      row_low: '下排（离地 {cm} 厘米）', row_middle: '中排（离地 {cm} 厘米）', row_high: '上排（离地 {cm} 厘米）',
      siteAt: '{name}', until: '请在 {time} 前取走。', loadedUntil: '请在 {time} 前取走。',
      extendBtn: '延长 {hours} 小时', extendOk: '已延长到 {time}。', extendUntil: '可以延长到 {time}。',
      ex_not_loaded: '送到后才能延长。', ex_limit: '已经延长过，不能再延长。',
      ex_food_safety: '为了食品安全，冷藏和冷冻的菜不能再延长。', ex_closed: '这份订单不能再延长。',
      wrongCode: '链接或取件码不对。请打开短信里的链接，或输入 8 位取件码。',
      locked: '错误次数太多，请 {min} 分钟后再试。', network: '网络不通，请稍后再试。', error: '出错了，请稍后再试。',
      noOrder: '链接不完整。请打开短信里的链接。',
      qrLabel: '取件二维码', qrHelp: '或者把这个二维码对准柜机的扫码口，不用输入手机号。{time} 前有效，打开本页会自动更新。',
      qrOld: '二维码已过期。请在有网络时重新打开本页，或在柜机上输入取件码。',
    },
    en: {
      brand: 'Fresh food locker', title: 'Your order', loading: 'Loading…', langToggle: '中文',
      codeTitle: 'Pickup code', codeHelp: 'At the locker screen type this code, then the last 4 digits of your phone number.',
      doorsTitle: 'Doors', expiryTitle: 'Pick up by', coldTitle: 'Cold chain', codeLabel: 'The 8-digit code from the text message', show: 'Show my order',
      st_assigned: 'On its way. We will tell you when it is in the locker.', st_loaded: 'In the locker: ready to pick up.',
      st_picked_up: 'Picked up. Thank you!', st_expired: 'Expired: staff will take it back. Please contact the shop.',
      st_returned: 'Returned to the shop.', st_cancelled: 'This order was cancelled.',
      st_compromised: 'This order got too warm: for your safety do not eat it. The shop will refund or deliver again.',
      codeInvalid: 'This code no longer works. Please ask the shop for a new one.',
      door: 'Door {n}', zone_frozen: 'frozen', zone_chilled: 'chilled', zone_cool: 'cool', zone_ambient: 'room temperature',
      row_low: 'bottom row ({cm} cm from the ground)', row_middle: 'middle row ({cm} cm from the ground)',
      row_high: 'top row ({cm} cm from the ground)',
      siteAt: '{name}', until: 'Please pick it up by {time}.', loadedUntil: 'Please pick it up by {time}.',
      extendBtn: 'Extend by {hours} hours', extendOk: 'Extended until {time}.', extendUntil: 'You can extend it until {time}.',
      ex_not_loaded: 'You can extend once it is in the locker.', ex_limit: 'It was already extended as far as allowed.',
      ex_food_safety: 'For food safety, chilled and frozen food cannot wait longer.', ex_closed: 'This order cannot be extended.',
      wrongCode: 'This link or code is not right. Open the link in the text message, or type the 8-digit code.',
      locked: 'Too many wrong tries. Please try again in {min} minutes.', network: 'No network: please try again shortly.',
      error: 'Something went wrong: please try again later.', noOrder: 'This link is incomplete. Open the link in the text message.',
      qrLabel: 'Pickup QR code', qrHelp: 'Or hold this QR code to the locker\'s scanner: no phone digits needed. Valid until {time}; it renews while this page is open.',
      qrOld: 'The QR code has expired. Open this page again with a network connection, or type the code at the locker.',
    },
  }, 'larder.lang', 'zh');
  const t = L.t;

  const order = decodeURIComponent(location.pathname.split('/').filter(Boolean)[1] || '');
  const CODE = 'larder.code.' + order;
  let view = null;

  // Take the code out of the fragment: keep it for this tab, drop it from the address bar.
  const frag = new URLSearchParams(location.hash.replace(/^#/, ''));
  if (frag.get('c')) {
    session.set(CODE, frag.get('c'));
    history.replaceState(null, '', location.pathname + location.search);
  }

  function status(text, kind) {
    $('status').className = 'msg ' + (kind || 'info');
    $('status').textContent = text;
  }

  function fail(e) {
    if (e.code === 'wrong_code') {
      session.drop(CODE);
      $('order').hidden = true;
      $('code-form').hidden = false;
      status(t('wrongCode'), 'bad');
    } else if (e.status === 429) {
      status(t('locked', { min: Math.max(1, Math.ceil((e.retryAfter || 60) / 60)) }), 'bad');
    } else if (e.status === 0) {
      status(t('network'), 'bad');
    } else {
      status(t('error'), 'bad');
    }
  }

  async function load() {
    const code = session.get(CODE);
    if (!order) { status(t('noOrder'), 'bad'); return; }
    if (!code) { $('code-form').hidden = false; status(t('wrongCode'), 'info'); return; }
    if (!view) status(t('loading'));
    try {
      view = await api('GET', '/r/api/orders/' + encodeURIComponent(order), { headers: { 'X-Pickup-Code': code } });
      render();
    } catch (e) { fail(e); }
  }

  function render() {
    if (!view) return;
    const v = view;
    const code = session.get(CODE);
    $('code-form').hidden = true;
    $('order').hidden = false;
    const bad = v.state === 'compromised' || v.state === 'expired' || v.state === 'cancelled';
    status(t('st_' + v.state), bad ? 'bad' : v.state === 'loaded' ? 'ok' : 'info');
    $('state').textContent = '';
    $('code').textContent = v.code_valid ? code.replace(/(\d{4})(?=\d)/, '$1 ') : '—';
    renderQR(v, code);
    if (!v.code_valid && v.state !== 'picked_up' && v.state !== 'returned' && v.state !== 'cancelled') {
      $('state').textContent = t('codeInvalid');
    }
    show($('site'), el('strong', {}, v.site.name || v.site.id), v.site.address ? el('br') : null, v.site.address || '');
    show($('doors'), v.doors.map((d) => el('li', { dataset: { door: String(d.number) } },
      el('span', { class: 'door-n' }, t('door', { n: d.number })), el('br'),
      t('zone_' + d.zone), d.row ? ' · ' + t('row_' + d.row, { cm: d.height_cm }) : '')));
    $('expiry').textContent = t('until', { time: fmtTime(v.expires_at, L.lang, v.site.time_zone) });
    // An order that has ended has no deadline left; one picked up or returned has its
    // cold-chain record instead.
    $('deadline').hidden = v.state === 'picked_up' || v.state === 'returned' || v.state === 'cancelled';
    $('cold').hidden = !v.cold_chain;
    $('cold-text').textContent = v.cold_chain ? v.cold_chain[L.lang] : '';
    const x = v.extend || {};
    const btn = $('extend');
    btn.hidden = !x.allowed;
    if (x.allowed) {
      btn.textContent = t('extendBtn', { hours: Math.round(x.seconds / 3600) });
      $('extend-info').textContent = t('extendUntil', { time: fmtTime(x.until, L.lang, v.site.time_zone) });
    } else {
      $('extend-info').textContent = x.reason ? t('ex_' + x.reason) : '';
    }
  }

  // renderQR shows the device-bound QR code, larder:v1:{site}:{code}:{expires}:{tag}
  // (the answer's qr: the code is ours, the tag the cloud's): the kiosk's scanner reads it
  // and the locker opens without the phone digits until it expires. Each load renews it.
  function renderQR(v, code) {
    const box = $('qr');
    box.hidden = !v.qr;
    if (!v.qr) return;
    const expires = new Date(v.qr.expires * 1000);
    if (expires <= Date.now()) {
      show($('qr-code'));
      $('qr-help').textContent = t('qrOld');
      return;
    }
    const payload = 'larder:v1:' + v.site.id + ':' + code + ':' + v.qr.expires + ':' + v.qr.tag;
    show($('qr-code'), globalThis.LarderQR.svg(payload, t('qrLabel')));
    $('qr-help').textContent = t('qrHelp', { time: fmtTime(expires, L.lang, v.site.time_zone) });
  }

  $('extend').addEventListener('click', async () => {
    const btn = $('extend');
    btn.disabled = true;
    try {
      view = await api('POST', '/r/api/orders/' + encodeURIComponent(order) + '/extend',
        { headers: { 'X-Pickup-Code': session.get(CODE) } });
      render();
      status(t('extendOk', { time: fmtTime(view.expires_at, L.lang, view.site.time_zone) }), 'ok');
    } catch (e) { fail(e); } finally { btn.disabled = false; }
  });

  $('code-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    session.set(CODE, $('code-input').value.replace(/\D/g, ''));
    $('code-input').value = '';
    load();
  });

  $('lang').addEventListener('click', () => {
    L.set(L.lang === 'zh' ? 'en' : 'zh');
    applyLang();
    if (view) render();
  });

  function applyLang() {
    L.apply(document);
    $('lang').textContent = t('langToggle');
    $('lang').setAttribute('lang', L.lang === 'zh' ? 'en' : 'zh-CN');
    document.title = t('title') + ' · ' + t('brand');
  }

  // While the order can still change (on its way, waiting in the locker), look again every
  // minute when the page is in view, so that "on its way" turns into the door number.
  // The reload also renews the QR code; one that expired meanwhile (no network) says so.
  const live = () => view && (view.state === 'assigned' || view.state === 'loaded');
  setInterval(() => {
    if (live() && document.visibilityState === 'visible') load();
    if (view && view.qr && view.qr.expires * 1000 <= Date.now()) render();
  }, 60000);
  // A phone taken out of the pocket at the locker shows a fresh QR code at once.
  document.addEventListener('visibilitychange', () => {
    if (live() && document.visibilityState === 'visible') load();
  });

  applyLang();
  load();
})();
