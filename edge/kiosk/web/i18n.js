// Strings and the words around doors: every piece of text on the page. Chinese first (the
// default), English one tap away. `{name}` placeholders are filled by t(); both languages
// use the same placeholders (test/i18n.test.js checks it).
export const STRINGS = {
  zh: {
    pageTitle: '生鲜取菜柜',
    brand: '生鲜取菜柜',
    site: '站点 {site}',
    clockNow: '现在 {time}',
    zoneBeijing: '北京时间',
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
    qrRead: '已读取二维码。请输入手机号码后 4 位。',
    qrOtherSite: '这个取件码属于另一个取菜柜，不能在这里取件。',
    qrUnreadable: '无法识别这个二维码，请输入短信里的取件码。',
    qrNoSite: '现在无法核对二维码，请输入短信里的取件码。',
    qrExpired: '这个二维码已过期。请重新打开订单页面，或输入取件码。',
    qrInvalid: '这个二维码在这里无效，请输入短信里的取件码。',
    qrNoOrder: '这里没有这个二维码的订单。请输入取件码，或按求助键。',
    qrLockedPlain: '请等倒计时结束再输入取件码，或扫描订单页面上的二维码（不用输入手机号）。',

    workingTitle: '请稍候',
    working: '正在开门，请稍候…',
    workingDriver: '正在处理，请稍候…',

    wrongCode: '取件码或手机后 4 位不对，请重新输入。',
    attemptsLeft: '还可以再试 {n} 次，之后每次输错都要稍等片刻。',
    badRequest: '请输入 8 位取件码和手机号码后 4 位。',
    lockedTitle: '请稍等片刻',
    lockedBody: '输错的次数太多了。为了保护大家的订单，每次输错后键盘都要等一会儿，最多 1 分钟。',
    lockedCountdown: '请在 {time}后再试',
    lockedQR: '有订单页面上的二维码？现在就可以扫码开门。',
    lockedHelp: '忘了取件码，或者一直打不开？请按下面的按钮，工作人员会来帮您。',
    countdownMinSec: '{m} 分 {s} 秒',
    countdownMin: '{m} 分钟',
    countdownSec: '{s} 秒',
    retryPhone: '请再输入一次手机号码后 4 位。如果取件码也输错了，请按“重新开始”。',
    lockedAnnounce: '请在 {seconds} 秒后再试。',
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
    clockNow: 'Now {time}',
    zoneBeijing: 'Beijing time',
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
    qrRead: 'QR code read. Now enter the last 4 digits of your phone number.',
    qrOtherSite: 'This code is for another locker bank. It cannot be used here.',
    qrUnreadable: 'That QR code could not be read. Please type the code from your text message.',
    qrNoSite: 'The QR code cannot be checked right now. Please type the code from your text message.',
    qrExpired: 'This QR code has expired. Open your order page again, or type your code.',
    qrInvalid: 'This QR code does not work here. Please type the code from your text message.',
    qrNoOrder: 'No order for this QR code is waiting here. Please type your code, or press Help.',
    qrLockedPlain: 'Please type your code when the countdown ends, or scan the QR code on your order page (no phone digits needed).',

    workingTitle: 'Please wait',
    working: 'Opening the doors, please wait…',
    workingDriver: 'Working, please wait…',

    wrongCode: 'The code or the phone digits are not right. Please try again.',
    attemptsLeft: '{n} more tries, then the keypad makes you wait a little after each wrong code.',
    badRequest: 'Please enter the 8-digit code and the last 4 digits of your phone.',
    lockedTitle: 'One moment',
    lockedBody: "Too many wrong codes. To keep everyone's orders safe, the keypad waits a little after each wrong code, a minute at most.",
    lockedCountdown: 'Try again in {time}',
    lockedQR: 'Have the QR code from your order page? Scan it now to open.',
    lockedHelp: 'Forgot your code, or it keeps failing? Press the button below and staff will come to help.',
    countdownMinSec: '{m} min {s} s',
    countdownMin: '{m} min',
    countdownSec: '{s} s',
    retryPhone: 'Enter the last 4 digits of your phone again. If the code was wrong too, press Start over.',
    lockedAnnounce: 'Please try again in {seconds} seconds.',
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

export const LANGS = ['zh', 'en'];
export const DEFAULT_LANG = 'zh';
export const HTML_LANG = { zh: 'zh-CN', en: 'en' };

export function format(template, params) {
  return String(template).replace(/\{(\w+)\}/g, (m, k) =>
    params && params[k] !== undefined && params[k] !== null ? String(params[k]) : m);
}

// t looks a key up in one language, falling back to the other so a missing string shows
// something readable; a key in neither (test/i18n.test.js checks there is none) shows
// nothing, never the key itself.
export function t(lang, key, params) {
  const table = STRINGS[lang] || STRINGS[DEFAULT_LANG];
  let s = table[key];
  if (s === undefined) s = STRINGS.en[key];
  if (s === undefined) s = STRINGS.zh[key];
  if (s === undefined) return '';
  return format(s, params);
}

// formatCountdown says a wait in minutes and seconds, in words: "4 分 58 秒" / "4 min
// 58 s", never "4:58", which reads like a time of day.
export function formatCountdown(seconds, lang) {
  const total = Math.max(0, Math.ceil(Number(seconds) || 0));
  const m = Math.floor(total / 60);
  const s = total % 60;
  if (m === 0) return t(lang, 'countdownSec', { s });
  if (s === 0) return t(lang, 'countdownMin', { m });
  return t(lang, 'countdownMinSec', { m, s });
}

// BEIJING are the IANA names of China Standard Time, which people there call 北京时间.
const BEIJING = ['Asia/Shanghai', 'Asia/Chongqing', 'Asia/Chungking', 'Asia/Harbin', 'PRC'];

// formatClock is the time of day at ms in the site's zone tz, named as the resident's SMS
// names it (cloud/notify LocalTime): "现在 18:30（北京时间）", "Now 18:30 (UTC+9)", so a
// deadline in the SMS reads against the clock on the screen. '' for a zone this browser
// does not know (the header then shows no clock rather than a wrong one).
export function formatClock(ms, tz, lang) {
  if (!tz) return '';
  try {
    const time = new Intl.DateTimeFormat('en-GB', { timeZone: tz, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' })
      .format(new Date(ms));
    let zone = t(lang, 'zoneBeijing');
    if (!BEIJING.includes(tz)) {
      const part = new Intl.DateTimeFormat('en-GB', { timeZone: tz, timeZoneName: 'shortOffset' })
        .formatToParts(new Date(ms)).find((p) => p.type === 'timeZoneName');
      zone = part ? part.value.replace(/^GMT(\+0)?/, 'UTC') : tz;
    }
    return t(lang, 'clockNow', { time }) + (lang === 'zh' ? '（' + zone + '）' : ' (' + zone + ')');
  } catch (e) {
    return '';
  }
}

// doorPlace returns where a door is, in words, without the leading "door 12, " that the
// edge puts in where_en / where_zh, so that the page can say "Door 12 is open — bottom
// row, left" without repeating the number. An unexpected shape is shown unchanged.
export function doorPlace(door, lang) {
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
export function doorSentence(lang, door, key) {
  const place = doorPlace(door, lang);
  const head = t(lang, key || 'doorOpenBanner', { n: door.number });
  return place ? head + t(lang, 'placeSep') + place : head;
}
