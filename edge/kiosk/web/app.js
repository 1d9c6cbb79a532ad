/*
 * Larder kiosk page: the locker bank's touchscreen, served by the edge daemon with no
 * internet. Plain ES2020, no build step, no dependencies.
 *
 * The file has two halves:
 *   1. pure parts (the string dictionary, formatting, keypad entry, error classification,
 *      the JSON API client) that also load under Node for the tests in test/;
 *   2. the user interface, which only starts when a `document` exists.
 * Under Node, `require('./app.js')` returns the pure parts; in the browser they are on
 * `globalThis.LarderKiosk`.
 *
 * Secrets: the pickup code, the second factor and the driver credential live only in memory
 * for the length of one attempt, are cleared after it and are never logged.
 */
(function (root) {
  'use strict';

  // ---------------------------------------------------------------------------------------
  // Strings: every piece of text on the page. Chinese first (the default), English one tap
  // away. `{name}` placeholders are filled by t(); both languages use the same placeholders
  // (test/i18n.test.js checks it).
  // ---------------------------------------------------------------------------------------
  const STRINGS = {
    zh: {
      pageTitle: '生鲜取菜柜',
      brand: '生鲜取菜柜',
      site: '站点 {site}',
      langToggle: 'English',
      langToggleLang: 'en',
      help: '呼叫帮助',
      helpPending: '正在通知工作人员…',
      helpSent: '已通知工作人员，请在柜子旁稍候。',
      helpFailed: '暂时无法通知工作人员，请稍后再按一次。',

      pickupTitle: '取菜',
      stepOf: '第 {n} 步，共 2 步',
      enterCode: '请输入短信里的 8 位取件码',
      enterFactor: '请输入您手机号码的最后 4 位',
      codeLabel: '取件码',
      factorLabel: '手机号码后 4 位',
      codeSummary: '取件码：{code}',
      digitsEntered: '已输入 {count} 位，共 {total} 位：{digits}',
      digitsNone: '还没有输入，共 {total} 位',
      keypadLabel: '数字键盘',
      delete: '删除',
      next: '下一步',
      confirm: '开门',
      startOver: '重新开始',
      needMoreDigits: '请输入全部 {total} 位数字。',

      workingTitle: '请稍候',
      working: '正在开门，请稍候…',
      workingDriver: '正在处理，请稍候…',

      wrongCode: '取件码或手机后 4 位不对，请重新输入。',
      attemptsLeft: '还可以再试 {n} 次，之后键盘会暂时锁定。',
      badRequest: '请输入 8 位取件码和手机号码后 4 位。',
      lockedTitle: '键盘已锁定',
      lockedBody: '输错的次数太多了。为了保护大家的订单，键盘暂时锁定。',
      lockedCountdown: '请在 {time} 后再试',
      lockedAnnounce: '键盘已锁定，请 {minutes} 分钟后再试。',
      expiredTitle: '取件时间已过',
      expiredBody: '您的取件时间已经结束，配送员会把订单取回。平台会联系您办理退款或重新配送。',
      alreadyTitle: '订单已经取走了',
      alreadyBody: '这个订单已经取走了。如果不是您取的，请按“呼叫帮助”。',
      notReadyTitle: '订单还没有放进柜子',
      notReadyBody: '配送员还没有把您的订单放进来。放好后您会收到短信，请到时再来。',
      driverNotHere: '这个订单不在这里等待放入或取回。列表已刷新。',
      driverWrongDoor: '这个柜门现在不能为这个订单打开。列表已刷新。',
      hardwareTitle: '柜门没有打开',
      hardwareBody: '很抱歉，柜门出了故障，工作人员已经收到通知。请按“呼叫帮助”，或稍后再试。',
      networkTitle: '柜子暂时没有响应',
      networkBody: '柜子暂时没有响应，请等一分钟再试。如果一直这样，请按“呼叫帮助”。',
      offlineNotice: '柜子暂时没有响应，请稍后再试。',
      errorTitle: '出了点问题',
      errorBody: '请稍后再试，或按“呼叫帮助”。',
      backToStart: '返回首页',

      compromisedTitle: '请不要食用这份订单',
      compromisedBody: '这份订单有 {minutes} 分钟不在安全温度内，吃了可能不安全。',
      compromisedBodyPlain: '这份订单离开安全温度的时间太长，吃了可能不安全。',
      compromisedRefund: '平台会为您办理退款或重新配送。',
      leaveIt: '不取了（退款或重新配送）',
      openAnyway: '仍然开门',
      leftTitle: '订单留在柜子里',
      leftBody: '您没有取这份订单。平台会联系您办理退款或重新配送。谢谢！',
      compromisedReminder: '提醒：这份订单可能已经不能吃了，请不要食用。',

      doorsTitle: '柜门已打开',
      doorsIntro: '请取出里面的全部物品，然后关好柜门。',
      orderRef: '订单尾号 {ref}',
      doorOpenBanner: '{n}号门已打开',
      doorName: '{n}号门',
      placeSep: '：',
      stateOpen: '已打开，请取出物品',
      stateClosedEmpty: '已关好，已取空',
      stateClosedFull: '已关门，但里面还有东西',
      stateClosed: '已关门',
      stateJammed: '门卡住了，已通知工作人员',
      doorStillFull: '{n}号门已关上，但里面还有东西。如果需要帮助，请按“呼叫帮助”。',
      doorJammedAnnounce: '{n}号门卡住了，工作人员已经收到通知。',
      pollTrouble: '正在重新连接柜子…',

      thanksTitle: '谢谢！',
      thanksBody: '取件完成，祝您生活愉快。',
      thanksReturn: '{s} 秒后返回首页',
      idleWarning: '还在吗？{s} 秒后返回首页。',
      idleWarningDriver: '还在吗？{s} 秒后退出配送员模式。',
      stillHere: '我还在',

      driverLink: '配送员入口',
      driverLoginTitle: '配送员登录',
      driverLoginHint: '请扫描配送员页面上的二维码，或输入凭证，然后按“登录”。',
      credentialLabel: '配送员凭证',
      login: '登录',
      back: '返回',
      credentialMissing: '请先扫描或输入凭证。',
      badCredential: '凭证无效，请重新扫描。',
      credentialExpired: '凭证已过期，请在配送员页面重新获取。',
      sessionEnded: '登录已过期，请重新扫描凭证。',
      idleLoggedOut: '长时间没有操作，已退出配送员模式。',
      loggedOut: '已退出配送员模式。',
      driverTitle: '装货清单',
      driverWho: '配送员 {driver}',
      logout: '退出',
      refresh: '刷新',
      groupToLoad: '待装货（{n}）',
      groupLoaded: '已装货（{n}）',
      groupExpired: '过期待取回（{n}）',
      groupEmpty: '没有。',
      orderHeading: '订单 {order}',
      zone_chilled: '冷藏',
      zone_frozen: '冷冻',
      zone_cool: '凉爽（蔬果）',
      zone_ambient: '常温',
      accessibleNote: '无障碍：低位柜门',
      openDoor: '打开{n}号门',
      problem: '{n}号门有问题',
      returnOrder: '取回这份订单',
      driverDoorOpen: '请放入货物，然后关好柜门。',
      driverDoorJammed: '{n}号门卡住了，请按“{n}号门有问题”。',
      doorLoaded: '已放入',
      doorEmpty: '空',
      doorStateOpen: '开着',
      doorStateClosed: '关着',
      doorStateJammed: '卡住',
      problemTitle: '{n}号门有什么问题？',
      reason_jammed: '门卡住了 / 打不开',
      reason_faulty: '柜格故障（温度、灯等）',
      reason_full: '放不下 / 里面有东西',
      cancel: '取消',
      newDoor: '请改用{n}号门，已经打开了',
      noCompartment: '这个温区没有空柜格了。请把订单带回，并联系运营人员。',
      returnOpened: '请取出过期订单，然后关门：',
      manifestFailed: '无法读取装货清单，请点“刷新”。'
    },
    en: {
      pageTitle: 'Fresh-food locker',
      brand: 'Fresh-food locker',
      site: 'Site {site}',
      langToggle: '中文',
      langToggleLang: 'zh-CN',
      help: 'Help',
      helpPending: 'Calling staff…',
      helpSent: 'Help is on the way. Please wait by the locker.',
      helpFailed: 'Could not reach staff right now. Please press Help again in a moment.',

      pickupTitle: 'Pick up your order',
      stepOf: 'Step {n} of 2',
      enterCode: 'Enter the 8-digit pickup code from your text message',
      enterFactor: 'Enter the last 4 digits of your phone number',
      codeLabel: 'Pickup code',
      factorLabel: 'Last 4 digits of your phone',
      codeSummary: 'Pickup code: {code}',
      digitsEntered: '{count} of {total} digits entered: {digits}',
      digitsNone: 'Nothing entered yet, {total} digits needed',
      keypadLabel: 'Number keys',
      delete: 'Delete',
      next: 'Next',
      confirm: 'Open',
      startOver: 'Start over',
      needMoreDigits: 'Please enter all {total} digits.',

      workingTitle: 'Please wait',
      working: 'Opening the doors, please wait…',
      workingDriver: 'Working, please wait…',

      wrongCode: 'The code or the phone digits are not right. Please try again.',
      attemptsLeft: '{n} more tries before the keypad is locked for a while.',
      badRequest: 'Please enter the 8-digit code and the last 4 digits of your phone.',
      lockedTitle: 'Keypad locked',
      lockedBody: "Too many wrong codes. To keep everyone's orders safe, the keypad is locked for a while.",
      lockedCountdown: 'Try again in {time}',
      lockedAnnounce: 'The keypad is locked. Please try again in {minutes} minutes.',
      expiredTitle: 'Pickup time has ended',
      expiredBody: 'Your pickup time has ended; the courier will return the order. The platform will contact you about a refund or a new delivery.',
      alreadyTitle: 'Already picked up',
      alreadyBody: 'This order has already been picked up. If that was not you, press Help.',
      notReadyTitle: 'Your order is not in the locker yet',
      notReadyBody: 'The courier has not put your order in yet. You will get a text message when it is ready.',
      driverNotHere: 'This order is not waiting here to be loaded or returned. The list is updated.',
      driverWrongDoor: 'This door cannot be opened for this order now. The list is updated.',
      hardwareTitle: 'A door did not open',
      hardwareBody: 'Sorry, a door is not working and staff have been told. Press Help, or try again later.',
      networkTitle: 'The locker is not responding',
      networkBody: 'The locker is not responding right now. Please wait a minute and try again. If it keeps happening, press Help.',
      offlineNotice: 'The locker is not responding right now. Please try again later.',
      errorTitle: 'Something went wrong',
      errorBody: 'Please try again later, or press Help.',
      backToStart: 'Back to start',

      compromisedTitle: 'Please do not eat this order',
      compromisedBody: 'This order was out of its safe temperature for {minutes} minutes and may not be safe to eat.',
      compromisedBodyPlain: 'This order was out of its safe temperature for too long and may not be safe to eat.',
      compromisedRefund: 'The platform will offer you a refund or a new delivery.',
      leaveIt: 'Leave it (refund or new delivery)',
      openAnyway: 'Open anyway',
      leftTitle: 'The order stays in the locker',
      leftBody: 'You did not take this order. The platform will contact you about a refund or a new delivery. Thank you!',
      compromisedReminder: 'Reminder: this order may not be safe to eat. Please do not eat it.',

      doorsTitle: 'Your doors are open',
      doorsIntro: 'Please take everything out, then close the doors.',
      orderRef: 'Order ending {ref}',
      doorOpenBanner: 'Door {n} is open',
      doorName: 'Door {n}',
      placeSep: ' — ',
      stateOpen: 'Open: please take your items',
      stateClosedEmpty: 'Closed and empty',
      stateClosedFull: 'Closed, but something is still inside',
      stateClosed: 'Closed',
      stateJammed: 'Stuck: staff have been told',
      doorStillFull: 'Door {n} is closed but something is still inside. If you need help, press Help.',
      doorJammedAnnounce: 'Door {n} is stuck. Staff have been told.',
      pollTrouble: 'Reconnecting to the locker…',

      thanksTitle: 'Thank you!',
      thanksBody: 'Your order is picked up. Have a good day.',
      thanksReturn: 'Back to the start in {s} seconds',
      idleWarning: 'Are you still there? Going back to the start in {s} seconds.',
      idleWarningDriver: 'Are you still there? Signing out of driver mode in {s} seconds.',
      stillHere: "I'm still here",

      driverLink: 'Driver',
      driverLoginTitle: 'Driver sign-in',
      driverLoginHint: 'Scan the QR code from the driver page, or type the credential, then press Sign in.',
      credentialLabel: 'Driver credential',
      login: 'Sign in',
      back: 'Back',
      credentialMissing: 'Please scan or type the credential first.',
      badCredential: 'That credential was not accepted. Please scan again.',
      credentialExpired: 'That credential has expired. Get a new one from the driver page.',
      sessionEnded: 'Your driver session has ended. Please scan your credential again.',
      idleLoggedOut: 'Signed out of driver mode after a period without activity.',
      loggedOut: 'Signed out of driver mode.',
      driverTitle: 'Loading list',
      driverWho: 'Driver {driver}',
      logout: 'Sign out',
      refresh: 'Refresh',
      groupToLoad: 'To load ({n})',
      groupLoaded: 'Loaded ({n})',
      groupExpired: 'Expired, take back ({n})',
      groupEmpty: 'None.',
      orderHeading: 'Order {order}',
      zone_chilled: 'Chilled',
      zone_frozen: 'Frozen',
      zone_cool: 'Cool (produce)',
      zone_ambient: 'Ambient',
      accessibleNote: 'Accessible: low door',
      openDoor: 'Open door {n}',
      problem: 'Problem with door {n}',
      returnOrder: 'Take this order back',
      driverDoorOpen: 'Load it, then close the door.',
      driverDoorJammed: 'Door {n} is stuck. Press "Problem with door {n}".',
      doorLoaded: 'Loaded',
      doorEmpty: 'Empty',
      doorStateOpen: 'Open',
      doorStateClosed: 'Closed',
      doorStateJammed: 'Stuck',
      problemTitle: 'What is wrong with door {n}?',
      reason_jammed: 'Door jammed / will not open',
      reason_faulty: 'Compartment faulty (temperature, light…)',
      reason_full: 'Too small / already full',
      cancel: 'Cancel',
      newDoor: 'Use door {n} instead; it is open now',
      noCompartment: 'No free compartment in this zone. Take the order back and tell operations.',
      returnOpened: 'Take the expired order out, then close the door:',
      manifestFailed: 'Could not read the loading list. Press Refresh.'
    }
  };

  const LANGS = ['zh', 'en'];
  const DEFAULT_LANG = 'zh';
  const HTML_LANG = { zh: 'zh-CN', en: 'en' };
  const CODE_LEN = 8;
  const FACTOR_LEN = 4;

  // Timings, in milliseconds. Generous on purpose: many residents are elderly.
  const TIMING = {
    idleMs: 90000, // resident screens go back to the start after this long untouched
    idleWarnMs: 20000, // ...with a visible warning this long before
    driverIdleMs: 300000, // driver mode signs out after 5 min untouched (token lives 15 min)
    driverTokenMs: 15 * 60000,
    doorsQuietMs: 600000, // doors screen gives up after 10 min without any change
    fullGraceMs: 3000, // a just-closed door may read "not empty" until the infrared settles
    pollMs: 1000, // session polling while doors are open
    manifestPollMs: 3000,
    thanksMs: 10000,
    infoPollMs: 60000,
    helpRepeatMs: 30000,
    announceStaggerMs: 900, // one chime per door, like the physical stagger
    pickupTimeoutMs: 45000, // doors open one after another before the reply comes
    requestTimeoutMs: 15000
  };

  function format(template, params) {
    return String(template).replace(/\{(\w+)\}/g, (m, k) =>
      params && params[k] !== undefined && params[k] !== null ? String(params[k]) : m);
  }

  // t looks a key up in one language, falling back to the other so a missing string shows
  // something readable rather than nothing.
  function t(lang, key, params) {
    const table = STRINGS[lang] || STRINGS[DEFAULT_LANG];
    let s = table[key];
    if (s === undefined) s = STRINGS.en[key];
    if (s === undefined) s = STRINGS.zh[key];
    if (s === undefined) return key;
    return format(s, params);
  }

  function formatCountdown(seconds) {
    const s = Math.max(0, Math.ceil(Number(seconds) || 0));
    const m = Math.floor(s / 60);
    const r = s % 60;
    return m + ':' + (r < 10 ? '0' : '') + r;
  }

  // doorPlace returns where a door is, in words, without the leading "door 12, " that the
  // edge puts in where_en / where_zh, so that the page can say "Door 12 is open — bottom
  // row, left" without repeating the number. An unexpected shape is shown unchanged.
  function doorPlace(door, lang) {
    if (!door) return '';
    const raw = String((lang === 'zh' ? door.where_zh : door.where_en) ||
      door.where_en || door.where_zh || '').trim();
    const n = door.number;
    const prefixes = [
      new RegExp('^door\\s*' + n + '\\s*[,，:：]\\s*', 'i'),
      new RegExp('^' + n + '\\s*号门\\s*[,，:：、]\\s*'),
      new RegExp('^' + n + '\\s*号柜门\\s*[,，:：、]\\s*')
    ];
    for (const re of prefixes) {
      if (re.test(raw)) return raw.replace(re, '');
    }
    if (new RegExp('^(door\\s*)?' + n + '(\\s*号门)?$', 'i').test(raw)) return '';
    return raw;
  }

  // doorSentence: "Door 12 is open — bottom row, left".
  function doorSentence(lang, door, key) {
    const place = doorPlace(door, lang);
    const head = t(lang, key || 'doorOpenBanner', { n: door.number });
    return place ? head + t(lang, 'placeSep') + place : head;
  }

  // Keypad entry: the pure state machine behind the on-screen and physical keypads.
  // step 'code' takes CODE_LEN digits, then 'factor' takes FACTOR_LEN; delete on an empty
  // factor goes back to the code step so nobody is stuck on the second screen.
  function emptyEntry() {
    return { step: 'code', code: '', factor: '' };
  }

  function keypadReduce(entry, key) {
    const e = { step: entry.step, code: entry.code, factor: entry.factor };
    if (key === 'clear') return emptyEntry();
    if (key === 'delete') {
      if (e.step === 'factor') {
        if (e.factor.length > 0) e.factor = e.factor.slice(0, -1);
        else e.step = 'code';
      } else {
        e.code = e.code.slice(0, -1);
      }
      return e;
    }
    if (key === 'next') {
      if (e.step === 'code' && e.code.length === CODE_LEN) e.step = 'factor';
      return e;
    }
    if (/^[0-9]$/.test(key)) {
      if (e.step === 'code' && e.code.length < CODE_LEN) e.code += key;
      else if (e.step === 'factor' && e.factor.length < FACTOR_LEN) e.factor += key;
    }
    return e;
  }

  function entryComplete(entry) {
    return entry.code.length === CODE_LEN && entry.factor.length === FACTOR_LEN;
  }

  // classify maps an HTTP reply to one error code of the contract. The edge always sends
  // {"error": "..."}; without one (a proxy page, a crashed daemon) the status decides, and
  // gateway errors count as "network": the edge daemon is not answering.
  function classify(status, body) {
    if (body && typeof body.error === 'string' && body.error !== '') return body.error;
    if (!status) return 'network';
    if (status === 400) return 'bad_request';
    if (status === 401) return 'unauthorized';
    if (status === 404) return 'not_found';
    if (status === 410) return 'expired';
    if (status === 423) return 'locked';
    if (status === 502 || status === 503 || status === 504) return 'network';
    return 'unknown';
  }

  // createApi is the client of the kiosk JSON API (see kiosk-contract.md). Every call
  // resolves, never rejects: {ok, status, body, code}; code is 'network' when the edge did
  // not answer at all (it is local, so that means the daemon is down or stuck).
  function createApi(opts) {
    const o = opts || {};
    const base = o.base || '';
    const fetchImpl = o.fetch || (root.fetch ? root.fetch.bind(root) : null);
    const defaultTimeout = o.timeoutMs || TIMING.requestTimeoutMs;

    async function call(method, path, body, extra) {
      const x = extra || {};
      const headers = { Accept: 'application/json' };
      if (body !== undefined) headers['Content-Type'] = 'application/json';
      if (x.token) headers.Authorization = 'Bearer ' + x.token;
      const ctrl = typeof AbortController === 'function' ? new AbortController() : null;
      const timer = ctrl ? setTimeout(() => ctrl.abort(), x.timeoutMs || defaultTimeout) : null;
      try {
        const res = await fetchImpl(base + path, {
          method,
          headers,
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: ctrl ? ctrl.signal : undefined,
          cache: 'no-store',
          credentials: 'same-origin'
        });
        let text = '';
        try {
          text = await res.text();
        } catch (_) {
          text = '';
        }
        let data = {};
        if (text) {
          try {
            const parsed = JSON.parse(text);
            if (parsed && typeof parsed === 'object') data = parsed;
          } catch (_) {
            data = {};
          }
        }
        if (res.ok) return { ok: true, status: res.status, body: data, code: '' };
        return { ok: false, status: res.status, body: data, code: classify(res.status, data) };
      } catch (_) {
        return { ok: false, status: 0, body: {}, code: 'network' };
      } finally {
        if (timer) clearTimeout(timer);
      }
    }

    return {
      info: () => call('GET', '/api/info'),
      pickup: (code, factor, acceptCompromised) => call('POST', '/api/pickup',
        { code, factor, accept_compromised: !!acceptCompromised },
        { timeoutMs: TIMING.pickupTimeoutMs }),
      session: (id) => call('GET', '/api/sessions/' + encodeURIComponent(id)),
      help: (context) => call('POST', '/api/help', { context }),
      driverLogin: (credential) => call('POST', '/api/driver/login', { credential }),
      manifest: (token) => call('GET', '/api/driver/manifest', undefined, { token }),
      driverOpen: (token, order, compartment) => call('POST', '/api/driver/open',
        { order, compartment }, { token, timeoutMs: TIMING.pickupTimeoutMs }),
      driverProblem: (token, order, compartment, reason) => call('POST', '/api/driver/problem',
        { order, compartment, reason }, { token, timeoutMs: TIMING.pickupTimeoutMs }),
      driverReturn: (token, order) => call('POST', '/api/driver/return',
        { order }, { token, timeoutMs: TIMING.pickupTimeoutMs }),
      driverLogout: (token) => call('POST', '/api/driver/logout', undefined, { token })
    };
  }

  // groupManifest splits the driver's orders by state, in the order the driver works.
  function groupManifest(manifest) {
    const groups = { reserved: [], loaded: [], expired: [] };
    const orders = (manifest && Array.isArray(manifest.orders)) ? manifest.orders : [];
    for (const o of orders) {
      if (o && groups[o.state]) groups[o.state].push(o);
    }
    return groups;
  }

  const Kiosk = {
    STRINGS, LANGS, DEFAULT_LANG, HTML_LANG, CODE_LEN, FACTOR_LEN, TIMING,
    format, t, formatCountdown, doorPlace, doorSentence,
    emptyEntry, keypadReduce, entryComplete, classify, createApi, groupManifest
  };

  if (typeof module === 'object' && module && module.exports) {
    module.exports = Kiosk;
  } else {
    root.LarderKiosk = Kiosk;
  }

  if (typeof document !== 'undefined' && typeof window !== 'undefined') {
    if (document.readyState === 'loading') {
      document.addEventListener('DOMContentLoaded', () => startUI(Kiosk));
    } else {
      startUI(Kiosk);
    }
  }

  // ---------------------------------------------------------------------------------------
  // User interface.
  // ---------------------------------------------------------------------------------------
  function startUI(K) {
    const api = K.createApi({});
    const $ = (sel) => document.querySelector(sel);
    const $$ = (sel) => Array.from(document.querySelectorAll(sel));

    const state = {
      lang: K.DEFAULT_LANG,
      screen: 'keypad',
      site: '',
      entry: K.emptyEntry(),
      pending: null, // {code, factor} kept only while the compromised choice is on screen
      minutesOut: null,
      lockUntil: 0,
      session: null, // {id, doors, compromised}
      announced: {}, // door number -> last phase announced
      everOpen: {}, // door number -> seen open in this session
      fullSince: {}, // door number -> when it was first seen closed with something inside
      lastChange: 0,
      pollFailures: 0,
      message: null, // {title, body}
      bannerKey: null, // re-rendered on language change: {kind, parts}
      helpAt: 0,
      driver: null, // {token, id, manifest, manifestJSON, expiresAt}
      problem: null, // {order, compartment}
      thanksUntil: 0,
      busy: false,
      busyKey: 'working'
    };

    const timers = {};
    function later(name, ms, fn) {
      clearTimeout(timers[name]);
      timers[name] = setTimeout(() => {
        delete timers[name];
        fn();
      }, ms);
    }
    function cancel(name) {
      clearTimeout(timers[name]);
      delete timers[name];
    }

    const L = (key, params) => K.t(state.lang, key, params);

    // --- elements -------------------------------------------------------------------------
    const el = (tag, attrs, ...children) => {
      const n = document.createElement(tag);
      if (attrs) {
        for (const [k, v] of Object.entries(attrs)) {
          if (v === undefined || v === null || v === false) continue;
          if (k === 'class') n.className = v;
          else if (k === 'text') n.textContent = v;
          else if (k.startsWith('on')) n.addEventListener(k.slice(2), v);
          else n.setAttribute(k, v === true ? '' : String(v));
        }
      }
      for (const c of children) {
        if (c === null || c === undefined || c === false) continue;
        n.append(c.nodeType ? c : document.createTextNode(String(c)));
      }
      return n;
    };

    const ICONS = {
      door: '<svg class="icon" viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M5 21V3h11v18" fill="none" stroke="currentColor" stroke-width="2.2" stroke-linejoin="round"/><path d="M16 5l3 1.5V21" fill="none" stroke="currentColor" stroke-width="2.2" stroke-linejoin="round"/><circle cx="13" cy="12" r="1.3" fill="currentColor"/><path d="M2 21h20" stroke="currentColor" stroke-width="2.2" stroke-linecap="round"/></svg>',
      error: '<svg class="icon" viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M12 2.5 1.5 21h21z" fill="none" stroke="currentColor" stroke-width="2.2" stroke-linejoin="round"/><path d="M12 9v5.5" stroke="currentColor" stroke-width="2.4" stroke-linecap="round"/><circle cx="12" cy="17.6" r="1.4" fill="currentColor"/></svg>',
      ok: '<svg class="icon" viewBox="0 0 24 24" aria-hidden="true" focusable="false"><circle cx="12" cy="12" r="10" fill="none" stroke="currentColor" stroke-width="2.2"/><path d="m7 12.5 3.2 3.2L17 9" fill="none" stroke="currentColor" stroke-width="2.6" stroke-linecap="round" stroke-linejoin="round"/></svg>',
      info: '<svg class="icon" viewBox="0 0 24 24" aria-hidden="true" focusable="false"><circle cx="12" cy="12" r="10" fill="none" stroke="currentColor" stroke-width="2.2"/><path d="M12 11v6" stroke="currentColor" stroke-width="2.6" stroke-linecap="round"/><circle cx="12" cy="7.3" r="1.5" fill="currentColor"/></svg>'
    };
    const icon = (name) => {
      const span = document.createElement('span');
      span.className = 'icon-wrap';
      span.innerHTML = ICONS[name];
      return span;
    };

    // --- sound ------------------------------------------------------------------------------
    // A two-note chime made with Web Audio (no audio files). Low, loud-ish notes: high
    // frequencies are the first that older ears lose. The context is created on the first
    // touch because browsers only allow sound after a user gesture.
    let audio = null;
    function ensureAudio() {
      const AC = window.AudioContext || window.webkitAudioContext;
      if (!AC) return null;
      try {
        if (!audio) audio = new AC();
        if (audio.state === 'suspended') audio.resume().catch(() => {});
      } catch (_) {
        audio = null;
      }
      return audio;
    }
    function chime() {
      const ctx = ensureAudio();
      if (!ctx) return;
      try {
        const start = ctx.currentTime + 0.02;
        [[784, 0], [523.25, 0.32]].forEach(([freq, at]) => {
          const osc = ctx.createOscillator();
          const gain = ctx.createGain();
          osc.type = 'sine';
          osc.frequency.value = freq;
          gain.gain.setValueAtTime(0.0001, start + at);
          gain.gain.exponentialRampToValueAtTime(0.6, start + at + 0.02);
          gain.gain.exponentialRampToValueAtTime(0.0001, start + at + 0.6);
          osc.connect(gain).connect(ctx.destination);
          osc.start(start + at);
          osc.stop(start + at + 0.65);
        });
      } catch (_) {
        // Sound is a cue on top of the visible banner; never let it break the flow.
      }
    }

    // --- banner (the assertive live region) ---------------------------------------------------
    // The banner is kept as keys + params, not text, so switching language re-says it.
    function banner(kind, parts) {
      state.bannerKey = parts && parts.length ? { kind, parts } : null;
      renderBanner();
    }
    function clearBanner() {
      banner(null, null);
    }
    function partText(p) {
      if (typeof p === 'string') return L(p);
      if (p.door) return K.doorSentence(state.lang, p.door, p.key);
      return L(p.key, p.params);
    }
    function renderBanner() {
      const box = $('#announcer');
      box.textContent = '';
      box.className = 'banner';
      const b = state.bannerKey;
      if (!b) return;
      box.classList.add('banner-' + b.kind, 'banner-on');
      const iconName = { door: 'door', error: 'error', ok: 'ok', info: 'info' }[b.kind] || 'info';
      const lines = el('div', { class: 'banner-lines' });
      for (const p of b.parts) lines.append(el('p', { class: 'banner-line' }, partText(p)));
      box.append(icon(iconName), lines);
    }

    // --- screens ----------------------------------------------------------------------------
    const RESIDENT_SCREENS = new Set(['keypad', 'message', 'compromised', 'busy']);
    const DRIVER_SCREENS = new Set(['driver', 'driver-problem']);

    function show(name, opts) {
      const o = opts || {};
      state.screen = name;
      for (const s of $$('.screen')) s.hidden = s.dataset.screen !== name;
      document.body.dataset.screen = name;
      $('#driver-link').hidden = name !== 'keypad';
      render();
      if (o.focus !== false) {
        const target = o.focusEl || $('.screen[data-screen="' + name + '"] h1');
        if (target) target.focus({ preventScroll: false });
      }
      window.scrollTo(0, 0);
      resetIdle();
    }

    function render() {
      renderStatic();
      renderBanner();
      switch (state.screen) {
        case 'keypad': renderKeypad(); break;
        case 'busy': $('#busy-text').textContent = L(state.busyKey); break;
        case 'locked': renderLocked(); break;
        case 'compromised': renderCompromised(); break;
        case 'doors': renderDoors(); break;
        case 'thanks': renderThanks(); break;
        case 'message': renderMessage(); break;
        case 'driver': renderDriver(); break;
        case 'driver-problem': renderProblem(); break;
        default: break;
      }
      renderIdleWarning();
    }

    function renderStatic() {
      document.documentElement.lang = K.HTML_LANG[state.lang];
      document.title = L('pageTitle');
      for (const n of $$('[data-i18n]')) n.textContent = L(n.dataset.i18n);
      const toggle = $('#lang-toggle');
      toggle.textContent = L('langToggle');
      toggle.setAttribute('lang', L('langToggleLang'));
      $('#site-name').textContent = state.site ? L('site', { site: state.site }) : '';
    }

    function setLang(lang) {
      state.lang = K.LANGS.includes(lang) ? lang : K.DEFAULT_LANG;
      render();
    }

    // home: back to the start, everything forgotten, Chinese again for the next person.
    function home(opts) {
      for (const name of Object.keys(timers)) cancel(name);
      state.entry = K.emptyEntry();
      state.pending = null;
      state.session = null;
      state.announced = {};
      state.everOpen = {};
      state.fullSince = {};
      state.message = null;
      state.minutesOut = null;
      state.problem = null;
      if (!(opts && opts.keepLang)) state.lang = K.DEFAULT_LANG;
      if (!(opts && opts.keepBanner)) state.bannerKey = null;
      if (state.lockUntil > Date.now()) {
        showLocked();
        return;
      }
      show('keypad', { focus: !(opts && opts.noFocus) });
      scheduleInfo();
    }

    // --- idle -------------------------------------------------------------------------------
    let idleDeadline = 0;
    function idleLimit() {
      if (state.driver && (state.screen === 'driver' || state.screen === 'driver-problem')) {
        return K.TIMING.driverIdleMs;
      }
      if (state.screen === 'driver-login') return K.TIMING.idleMs;
      if (RESIDENT_SCREENS.has(state.screen)) {
        // The empty start screen has nothing to forget.
        if (state.screen === 'keypad' && !state.entry.code && state.lang === K.DEFAULT_LANG &&
          !state.bannerKey) return 0;
        if (state.screen === 'busy') return 0;
        return K.TIMING.idleMs;
      }
      return 0; // locked, doors, thanks run their own clocks
    }
    function resetIdle() {
      cancel('idle');
      cancel('idleTick');
      const limit = idleLimit();
      idleDeadline = limit ? Date.now() + limit : 0;
      renderIdleWarning();
      if (!limit) return;
      later('idleTick', Math.max(0, limit - K.TIMING.idleWarnMs), idleTick);
    }
    function idleTick() {
      const left = idleDeadline - Date.now();
      if (!idleDeadline) return;
      if (left <= 0) {
        idleDeadline = 0;
        renderIdleWarning();
        onIdle();
        return;
      }
      renderIdleWarning();
      later('idleTick', Math.min(1000, left), idleTick);
    }
    function renderIdleWarning() {
      const box = $('#idle-warning');
      const left = idleDeadline - Date.now();
      if (!idleDeadline || left > K.TIMING.idleWarnMs) {
        box.hidden = true;
        return;
      }
      const key = state.driver ? 'idleWarningDriver' : 'idleWarning';
      $('#idle-text').textContent = L(key, { s: Math.max(0, Math.ceil(left / 1000)) });
      box.hidden = false;
    }
    function onIdle() {
      if (state.driver) {
        driverLogout('idleLoggedOut');
        return;
      }
      home();
    }

    // --- info (site name, lock state, edge reachable) ------------------------------------------
    async function loadInfo() {
      const r = await api.info();
      if (r.ok) {
        state.site = typeof r.body.site === 'string' ? r.body.site : '';
        const locked = Number(r.body.locked_seconds) || 0;
        if (state.bannerKey && state.bannerKey.parts[0] === 'offlineNotice') clearBanner();
        renderStatic();
        if (locked > 0 && (state.screen === 'keypad' || state.screen === 'locked')) {
          state.lockUntil = Date.now() + locked * 1000;
          showLocked({ announce: state.screen !== 'locked' });
          return true;
        }
      } else if (r.code === 'network' && state.screen === 'keypad') {
        banner('error', ['offlineNotice']);
      }
      return false;
    }
    function scheduleInfo() {
      later('info', K.TIMING.infoPollMs, async () => {
        if (state.screen === 'keypad' && !state.entry.code) await loadInfo();
        if (state.screen === 'keypad') scheduleInfo();
      });
    }

    // --- keypad -----------------------------------------------------------------------------
    function renderKeypad() {
      const e = state.entry;
      const isCode = e.step === 'code';
      const total = isCode ? K.CODE_LEN : K.FACTOR_LEN;
      const value = isCode ? e.code : e.factor;
      $('#keypad-step').textContent = L('stepOf', { n: isCode ? 1 : 2 });
      $('#keypad-hint').textContent = L(isCode ? 'enterCode' : 'enterFactor');
      $('#digits-label').textContent = L(isCode ? 'codeLabel' : 'factorLabel');
      const box = $('#digits');
      box.textContent = '';
      box.dataset.len = String(total);
      const cells = el('span', { class: 'cells', 'aria-hidden': 'true' });
      for (let i = 0; i < total; i++) {
        if (isCode && i === 4) cells.append(el('span', { class: 'cell-gap' }));
        const filled = i < value.length;
        const cls = 'cell' + (filled ? ' cell-filled' : '') + (i === value.length ? ' cell-next' : '');
        cells.append(el('span', { class: cls }, filled ? value[i] : ''));
      }
      const spoken = value.length
        ? L('digitsEntered', { count: value.length, total, digits: value.split('').join(' ') })
        : L('digitsNone', { total });
      box.append(cells, el('span', { class: 'sr-only' }, spoken));
      const summary = $('#code-summary');
      if (isCode) {
        summary.hidden = true;
        summary.textContent = '';
      } else {
        summary.hidden = false;
        summary.textContent = L('codeSummary', { code: e.code.slice(0, 4) + ' ' + e.code.slice(4) });
      }
      const ok = $('#key-ok');
      ok.textContent = L(isCode ? 'next' : 'confirm');
      ok.classList.toggle('key-ready', value.length === total);
    }

    function press(key) {
      if (state.screen !== 'keypad' || state.busy) return;
      ensureAudio();
      if (key === 'enter') {
        submitStep();
        return;
      }
      const before = state.entry;
      state.entry = K.keypadReduce(state.entry, key);
      if (key === 'clear' || (key === 'delete' && before.step !== state.entry.step)) clearBanner();
      renderKeypad();
      resetIdle();
    }

    function submitStep() {
      const e = state.entry;
      if (e.step === 'code') {
        if (e.code.length < K.CODE_LEN) {
          banner('error', [{ key: 'needMoreDigits', params: { total: K.CODE_LEN } }]);
          return;
        }
        clearBanner();
        state.entry = K.keypadReduce(e, 'next');
        renderKeypad();
        resetIdle();
        return;
      }
      if (e.factor.length < K.FACTOR_LEN) {
        banner('error', [{ key: 'needMoreDigits', params: { total: K.FACTOR_LEN } }]);
        return;
      }
      const attempt = { code: e.code, factor: e.factor };
      // Clear the digits at once: the next person must never see them.
      state.entry = K.emptyEntry();
      pickup(attempt, false);
    }

    async function pickup(attempt, acceptCompromised) {
      state.busy = true;
      state.busyKey = 'working';
      clearBanner();
      show('busy');
      const r = await api.pickup(attempt.code, attempt.factor, acceptCompromised);
      state.busy = false;
      if (r.ok) {
        state.pending = null;
        startDoors(r.body);
        return;
      }
      if (r.code === 'compromised' && !acceptCompromised) {
        state.pending = attempt; // needed to resend with accept_compromised
        state.minutesOut = Number.isFinite(Number(r.body.minutes_out)) ? Number(r.body.minutes_out) : null;
        clearBanner();
        show('compromised');
        return;
      }
      state.pending = null;
      pickupError(r);
    }

    function pickupError(r) {
      switch (r.code) {
        case 'wrong_code': {
          const parts = ['wrongCode'];
          const left = Number(r.body.attempts_left);
          if (Number.isFinite(left) && left > 0) parts.push({ key: 'attemptsLeft', params: { n: left } });
          state.entry = K.emptyEntry();
          home({ keepLang: true, keepBanner: true });
          banner('error', parts);
          resetIdle(); // so the message does not greet the next person
          return;
        }
        case 'bad_request':
          state.entry = K.emptyEntry();
          home({ keepLang: true });
          banner('error', ['badRequest']);
          resetIdle();
          return;
        case 'locked': {
          const secs = Number(r.body.retry_after_seconds) || Number(r.body.locked_seconds) || 300;
          state.lockUntil = Date.now() + secs * 1000;
          showLocked({ announce: true });
          return;
        }
        case 'expired': return showMessage('expiredTitle', 'expiredBody', 'info');
        case 'already_picked_up': return showMessage('alreadyTitle', 'alreadyBody', 'info');
        case 'not_ready': return showMessage('notReadyTitle', 'notReadyBody', 'info');
        case 'hardware':
          // If the edge says which doors did open (beyond the contract, but cheap to honour),
          // show them: the resident may still take what is behind them.
          if (r.body.session && Array.isArray(r.body.doors) && r.body.doors.length) {
            startDoors(r.body);
            banner('error', ['hardwareBody']);
            return;
          }
          return showMessage('hardwareTitle', 'hardwareBody', 'error');
        case 'network': return showMessage('networkTitle', 'networkBody', 'error');
        default: return showMessage('errorTitle', 'errorBody', 'error');
      }
    }

    function showMessage(titleKey, bodyKey, kind) {
      state.message = { titleKey, bodyKey };
      show('message');
      banner(kind || 'info', [bodyKey]);
    }
    function renderMessage() {
      const m = state.message || { titleKey: 'errorTitle', bodyKey: 'errorBody' };
      $('#message-title').textContent = L(m.titleKey);
      $('#message-body').textContent = L(m.bodyKey);
    }

    // --- locked -----------------------------------------------------------------------------
    function showLocked(opts) {
      state.entry = K.emptyEntry();
      show('locked');
      if (opts && opts.announce) {
        const minutes = Math.max(1, Math.ceil((state.lockUntil - Date.now()) / 60000));
        banner('error', [{ key: 'lockedAnnounce', params: { minutes } }]);
      }
      lockedTick();
    }
    function lockedTick() {
      const left = (state.lockUntil - Date.now()) / 1000;
      if (state.screen !== 'locked') return;
      renderLocked();
      if (left <= 0) {
        state.lockUntil = 0;
        // Ask the edge rather than trust our clock: another attempt may have re-locked it.
        loadInfo().then((stillLocked) => {
          if (!stillLocked) home();
        });
        return;
      }
      later('locked', Math.min(1000, Math.max(50, (left % 1) * 1000 || 1000)), lockedTick);
    }
    function renderLocked() {
      const left = (state.lockUntil - Date.now()) / 1000;
      $('#locked-countdown').textContent = L('lockedCountdown', { time: K.formatCountdown(left) });
    }

    // --- compromised ------------------------------------------------------------------------
    function renderCompromised() {
      $('#compromised-body').textContent = state.minutesOut !== null
        ? L('compromisedBody', { minutes: state.minutesOut })
        : L('compromisedBodyPlain');
    }

    // --- doors (after a successful pickup) ------------------------------------------------------
    function startDoors(body) {
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
      noteFull(doors);
      state.lastChange = Date.now();
      state.pollFailures = 0;
      clearBanner();
      show('doors');
      announceDoors(doors, true);
      if (state.session.id) later('poll', K.TIMING.pollMs, poll);
      later('doorsQuiet', K.TIMING.doorsQuietMs, checkQuiet);
    }

    // announceDoors says, and chimes, each door that newly opened, one after another like the
    // doors themselves; and says which doors got stuck or were closed with something inside.
    function noteFull(doors) {
      const now = Date.now();
      for (const d of doors) {
        if (d.state === 'closed' && d.empty === false) {
          if (!state.fullSince[d.number]) state.fullSince[d.number] = now;
        } else {
          delete state.fullSince[d.number];
        }
      }
    }

    // doorPhase: what the resident is told about a door. "Closed but something inside" waits
    // a few seconds, so that the infrared reading after a close does not raise a false alarm.
    function doorPhase(d) {
      if (d.state === 'open' || d.state === 'jammed') return d.state;
      if (d.state === 'closed') {
        if (d.empty === true) return 'closed-empty';
        const since = state.fullSince[d.number];
        if (d.empty === false && since && Date.now() - since >= K.TIMING.fullGraceMs) return 'closed-full';
      }
      return 'closed';
    }

    function announceDoors(doors, first) {
      const opened = [];
      const notes = [];
      for (const d of doors) {
        const prev = state.announced[d.number];
        const now = doorPhase(d);
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
      banner(notes.length && !opened.length ? 'error' : 'door', parts);
      opened.forEach((d, i) => later('chime' + d.number, i * K.TIMING.announceStaggerMs, chime));
    }

    async function poll() {
      const s = state.session;
      if (!s || state.screen !== 'doors') return;
      const r = await api.session(s.id);
      if (state.session !== s || state.screen !== 'doors') return;
      if (r.ok) {
        if (state.pollFailures >= 3) clearBanner();
        state.pollFailures = 0;
        const doors = Array.isArray(r.body.doors) ? r.body.doors : s.doors;
        if (JSON.stringify(doors) !== JSON.stringify(s.doors)) {
          state.lastChange = Date.now();
          later('doorsQuiet', K.TIMING.doorsQuietMs, checkQuiet);
        }
        s.doors = doors;
        noteFull(doors);
        if (r.body.done) {
          s.done = true;
          showThanks();
          return;
        }
        renderDoors();
        announceDoors(doors, false);
      } else if (r.status === 404 || r.status === 410) {
        // The edge no longer knows the session (it ended or the daemon restarted).
        home();
        return;
      } else {
        state.pollFailures++;
        if (state.pollFailures === 3) banner('info', ['pollTrouble']);
      }
      later('poll', K.TIMING.pollMs, poll);
    }

    function checkQuiet() {
      if (state.screen !== 'doors') return;
      if (Date.now() - state.lastChange >= K.TIMING.doorsQuietMs) home();
      else later('doorsQuiet', K.TIMING.doorsQuietMs - (Date.now() - state.lastChange), checkQuiet);
    }

    function doorStateKey(d) {
      switch (doorPhase(d)) {
        case 'open': return { key: 'stateOpen', cls: 'open', icon: 'door' };
        case 'jammed': return { key: 'stateJammed', cls: 'jammed', icon: 'error' };
        case 'closed-empty': return { key: 'stateClosedEmpty', cls: 'done', icon: 'ok' };
        case 'closed-full': return { key: 'stateClosedFull', cls: 'full', icon: 'error' };
        default: return { key: 'stateClosed', cls: 'closed', icon: 'info' };
      }
    }

    function renderDoors() {
      const s = state.session;
      if (!s) return;
      const warn = $('#doors-compromised');
      warn.hidden = !s.compromised;
      warn.textContent = s.compromised ? L('compromisedReminder') : '';
      $('#doors-ref').textContent = s.ref ? L('orderRef', { ref: s.ref }) : '';
      const list = $('#door-list');
      list.textContent = '';
      for (const d of s.doors) {
        const st = doorStateKey(d);
        const place = K.doorPlace(d, state.lang);
        list.append(el('li', { class: 'door door-' + st.cls },
          el('span', { class: 'door-num', 'aria-hidden': 'true' }, String(d.number)),
          el('div', { class: 'door-text' },
            el('p', { class: 'door-name' }, L('doorName', { n: d.number })),
            place ? el('p', { class: 'door-where' }, place) : null,
            el('p', { class: 'door-state' }, icon(st.icon), el('span', null, L(st.key))))));
      }
    }

    function showThanks() {
      cancel('poll');
      cancel('doorsQuiet');
      state.session = null;
      state.thanksUntil = Date.now() + K.TIMING.thanksMs;
      clearBanner();
      show('thanks');
      thanksTick();
    }
    function thanksTick() {
      if (state.screen !== 'thanks') return;
      const left = state.thanksUntil - Date.now();
      if (left <= 0) {
        home();
        return;
      }
      renderThanks();
      later('thanks', Math.min(1000, left), thanksTick);
    }
    function renderThanks() {
      const left = Math.max(0, Math.ceil((state.thanksUntil - Date.now()) / 1000));
      $('#thanks-countdown').textContent = L('thanksReturn', { s: left });
    }

    // --- help ---------------------------------------------------------------------------------
    async function help() {
      ensureAudio();
      const ctx = state.driver ? 'driver'
        : (RESIDENT_SCREENS.has(state.screen) || state.screen === 'doors' ||
          state.screen === 'locked' || state.screen === 'thanks') ? 'pickup' : 'other';
      if (Date.now() - state.helpAt < K.TIMING.helpRepeatMs) {
        banner('ok', ['helpSent']);
        return;
      }
      banner('info', ['helpPending']);
      const r = await api.help(ctx);
      if (r.ok) {
        state.helpAt = Date.now();
        banner('ok', ['helpSent']);
      } else {
        banner('error', ['helpFailed']);
      }
      resetIdle();
    }

    // --- driver mode ----------------------------------------------------------------------------
    function showDriverLogin(messageKey) {
      for (const name of Object.keys(timers)) cancel(name);
      state.entry = K.emptyEntry();
      const input = $('#credential');
      input.value = '';
      show('driver-login', { focusEl: input });
      if (messageKey) banner('error', [messageKey]);
      else clearBanner();
    }

    async function driverLogin(ev) {
      ev.preventDefault();
      const input = $('#credential');
      const credential = input.value.trim();
      input.value = '';
      if (!credential) {
        banner('error', ['credentialMissing']);
        input.focus();
        return;
      }
      state.busyKey = 'workingDriver';
      show('busy');
      const r = await api.driverLogin(credential);
      if (r.ok && r.body.token) {
        state.driver = {
          token: r.body.token,
          id: r.body.driver || '',
          manifest: null,
          manifestJSON: '',
          failed: false
        };
        clearBanner();
        later('driverToken', K.TIMING.driverTokenMs, () => driverLogout('sessionEnded'));
        show('driver');
        await refreshManifest();
        return;
      }
      const key = r.code === 'bad_credential' || r.status === 401 ? 'badCredential'
        : r.code === 'expired' ? 'credentialExpired'
          : r.code === 'network' ? 'networkBody' : 'errorBody';
      showDriverLogin(key);
    }

    // A 401 on any driver call means the kiosk token is over: back to sign-in.
    function driverUnauthorized(r) {
      if (r.status === 401) {
        driverLogout('sessionEnded', { skipServer: true });
        return true;
      }
      return false;
    }

    async function driverLogout(messageKey, opts) {
      const d = state.driver;
      state.driver = null;
      state.problem = null;
      for (const name of Object.keys(timers)) cancel(name);
      if (d && !(opts && opts.skipServer)) api.driverLogout(d.token); // best effort
      if (messageKey === 'loggedOut') {
        home({ keepBanner: true });
        banner('ok', ['loggedOut']);
      } else {
        showDriverLogin(messageKey);
      }
    }

    async function refreshManifest() {
      const d = state.driver;
      if (!d) return;
      const r = await api.manifest(d.token);
      if (state.driver !== d) return;
      if (r.ok) {
        const json = JSON.stringify(r.body);
        d.failed = false;
        if (json !== d.manifestJSON) {
          d.manifestJSON = json;
          d.manifest = r.body;
          if (state.screen === 'driver') renderDriver();
        }
      } else if (driverUnauthorized(r)) {
        return;
      } else if (!d.failed) {
        d.failed = true;
        banner('error', [r.code === 'network' ? 'networkBody' : 'manifestFailed']);
      }
      later('manifest', K.TIMING.manifestPollMs, () => {
        if (state.screen === 'driver' || state.screen === 'driver-problem') refreshManifest();
      });
    }

    function zoneName(zone) {
      const key = 'zone_' + zone;
      const s = L(key);
      return s === key ? String(zone || '') : s;
    }

    function driverDoorStatus(d) {
      const parts = [];
      if (d.state === 'open') parts.push(L('doorStateOpen'));
      else if (d.state === 'jammed') parts.push(L('doorStateJammed'));
      else parts.push(L('doorStateClosed'));
      if (d.empty === true) parts.push(L('doorEmpty'));
      else if (d.empty === false) parts.push(L('doorLoaded'));
      return parts.join(' · ');
    }

    // renderDriver rebuilds the manifest; the focused button is found again by its
    // data-focus key so a background refresh never throws the driver's place away.
    function renderDriver() {
      const d = state.driver;
      if (!d) return;
      $('#driver-who').textContent = d.id ? L('driverWho', { driver: d.id }) : '';
      const box = $('#manifest');
      const focusKey = document.activeElement && box.contains(document.activeElement)
        ? document.activeElement.dataset.focus : null;
      box.textContent = '';
      if (!d.manifest) return; // first load still on its way
      const groups = K.groupManifest(d.manifest);
      const spec = [
        ['reserved', 'groupToLoad'],
        ['expired', 'groupExpired'],
        ['loaded', 'groupLoaded']
      ];
      for (const [stateName, headKey] of spec) {
        const orders = groups[stateName];
        const headId = 'group-' + stateName;
        const section = el('section', { class: 'group group-' + stateName, 'aria-labelledby': headId },
          el('h2', { id: headId }, L(headKey, { n: orders.length })));
        if (!orders.length) section.append(el('p', { class: 'note' }, L('groupEmpty')));
        const ul = el('ul', { class: 'orders' });
        for (const o of orders) ul.append(renderOrder(o, stateName));
        if (orders.length) section.append(ul);
        box.append(section);
      }
      if (focusKey) {
        const again = box.querySelector('[data-focus="' + CSS.escape(focusKey) + '"]');
        if (again) again.focus();
      }
    }

    function renderOrder(o, stateName) {
      const doors = Array.isArray(o.doors) ? o.doors : [];
      const meta = [zoneName(o.zone)];
      if (o.accessible) meta.push(L('accessibleNote'));
      const li = el('li', { class: 'order' },
        el('h3', { class: 'order-head' }, L('orderHeading', { order: o.order })),
        el('p', { class: 'order-meta' }, meta.join(' · ')));
      const ul = el('ul', { class: 'ddoors' });
      for (const door of doors) {
        const place = K.doorPlace(door, state.lang);
        const item = el('li', { class: 'ddoor ddoor-' + (door.state || 'closed') },
          el('p', { class: 'ddoor-name' },
            el('strong', null, L('doorName', { n: door.number })),
            place ? L('placeSep') + place : ''),
          el('p', { class: 'ddoor-state' }, driverDoorStatus(door)));
        if (stateName === 'reserved') {
          item.append(el('div', { class: 'ddoor-actions' },
            el('button', {
              type: 'button',
              class: 'btn btn-primary',
              'data-focus': 'open:' + o.order + ':' + door.number,
              onclick: () => driverOpen(o.order, door.number)
            }, L('openDoor', { n: door.number })),
            el('button', {
              type: 'button',
              class: 'btn btn-secondary',
              'data-focus': 'problem:' + o.order + ':' + door.number,
              onclick: () => {
                state.problem = { order: o.order, compartment: door.number };
                state.bannerKey = null; // an older "door N is open" would muddle the question
                show('driver-problem');
              }
            }, L('problem', { n: door.number }))));
        }
        ul.append(item);
      }
      li.append(ul);
      if (stateName === 'expired') {
        li.append(el('button', {
          type: 'button',
          class: 'btn btn-primary',
          'data-focus': 'return:' + o.order,
          onclick: () => driverReturn(o.order)
        }, L('returnOrder')));
      }
      return li;
    }

    async function driverAction(call, onOk) {
      const d = state.driver;
      if (!d || state.busy) return;
      state.busy = true;
      const r = await call(d.token);
      state.busy = false;
      if (state.driver !== d) return;
      if (driverUnauthorized(r)) return;
      if (r.ok) onOk(r.body);
      else if (r.code === 'no_compartment') banner('error', ['noCompartment']);
      else if (r.code === 'not_found') banner('error', ['driverNotHere']);
      else if (r.code === 'conflict') banner('error', ['driverWrongDoor']);
      else if (r.code === 'hardware') banner('error', ['hardwareBody']);
      else if (r.code === 'network') banner('error', ['networkBody']);
      else banner('error', ['errorBody']);
      resetIdle();
      cancel('manifest');
      refreshManifest();
    }

    function driverOpen(order, compartment) {
      ensureAudio();
      return driverAction((tok) => api.driverOpen(tok, order, compartment), (body) => {
        const door = body.door || { number: compartment };
        if (door.state === 'jammed') {
          banner('error', [{ key: 'driverDoorJammed', params: { n: door.number } }]);
          return;
        }
        banner('door', [{ door, key: 'doorOpenBanner' }, 'driverDoorOpen']);
        chime();
      });
    }

    function driverProblem(reason) {
      const p = state.problem;
      if (!p) return;
      ensureAudio();
      state.problem = null;
      show('driver');
      return driverAction((tok) => api.driverProblem(tok, p.order, p.compartment, reason), (body) => {
        const door = body.door;
        if (!door) return;
        banner('door', [{ door, key: 'newDoor' }]);
        chime();
      });
    }

    function driverReturn(order) {
      ensureAudio();
      return driverAction((tok) => api.driverReturn(tok, order), (body) => {
        const doors = Array.isArray(body.doors) ? body.doors : [];
        banner('door', ['returnOpened'].concat(doors.map((door) => ({ door, key: 'doorOpenBanner' }))));
        doors.forEach((_, i) => later('chimeReturn' + i, i * K.TIMING.announceStaggerMs, chime));
      });
    }

    function renderProblem() {
      const p = state.problem;
      $('#problem-title').textContent = p ? L('problemTitle', { n: p.compartment }) : '';
    }

    // --- wiring -------------------------------------------------------------------------------
    $('#keypad').addEventListener('click', (ev) => {
      const b = ev.target.closest('button[data-key]');
      if (b) press(b.dataset.key);
    });
    $('#start-over').addEventListener('click', () => press('clear'));
    $('#lang-toggle').addEventListener('click', () => {
      setLang(state.lang === 'zh' ? 'en' : 'zh');
      resetIdle();
    });
    $('#help-btn').addEventListener('click', help);
    $('#leave-it').addEventListener('click', () => {
      state.pending = null;
      showMessage('leftTitle', 'leftBody', 'ok');
    });
    $('#open-anyway').addEventListener('click', () => {
      const attempt = state.pending;
      state.pending = null;
      if (attempt) pickup(attempt, true);
      else home();
    });
    for (const b of $$('[data-action="home"]')) b.addEventListener('click', () => home());
    $('#driver-link').addEventListener('click', () => showDriverLogin(null));
    $('#driver-login-form').addEventListener('submit', driverLogin);
    $('#driver-logout').addEventListener('click', () => driverLogout('loggedOut'));
    $('#driver-refresh').addEventListener('click', () => {
      cancel('manifest');
      if (state.driver) state.driver.manifestJSON = '';
      refreshManifest();
    });
    for (const b of $$('[data-reason]')) b.addEventListener('click', () => driverProblem(b.dataset.reason));
    $('#problem-cancel').addEventListener('click', () => {
      state.problem = null;
      show('driver');
    });
    $('#idle-stay').addEventListener('click', resetIdle);

    // Any touch or key counts as activity, and unlocks sound for the door chime.
    for (const type of ['pointerdown', 'keydown', 'input']) {
      document.addEventListener(type, () => {
        ensureAudio();
        if (idleDeadline) resetIdle();
      }, { capture: true, passive: true });
    }

    // Physical keyboard on the keypad screen: digits, Backspace, Enter, Escape. Enter and
    // Space on a focused button keep their normal meaning (press that button).
    document.addEventListener('keydown', (ev) => {
      // A QR scanner types like a keyboard: on the sign-in screen send its keys to the
      // credential field even if a finger moved the focus away.
      if (state.screen === 'driver-login' && ev.key.length === 1 && ev.target !== $('#credential') &&
        !ev.ctrlKey && !ev.metaKey && !ev.altKey) {
        $('#credential').focus();
        return;
      }
      if (state.screen !== 'keypad' || ev.ctrlKey || ev.metaKey || ev.altKey) return;
      const target = ev.target;
      if (target && (target.tagName === 'INPUT' || target.tagName === 'TEXTAREA')) return;
      const onButton = target && target.tagName === 'BUTTON';
      let key = null;
      if (/^[0-9]$/.test(ev.key)) key = ev.key;
      else if (ev.key === 'Backspace' || ev.key === 'Delete') key = 'delete';
      else if (ev.key === 'Escape') key = 'clear';
      else if (ev.key === 'Enter' && !onButton) key = 'enter';
      if (!key) return;
      ev.preventDefault();
      // Typing on a physical keypad means "keypad mode": let go of whatever button a finger
      // last touched, so that the following Enter submits instead of pressing, say, Help.
      if (onButton && key !== 'enter') target.blur();
      press(key);
    });

    // Start.
    renderStatic();
    home({ noFocus: true });
    loadInfo();
  }
})(typeof globalThis !== 'undefined' ? globalThis : this);
