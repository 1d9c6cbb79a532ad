// The kiosk's one state machine: which screen is up, and which event moves it to which
// screen. Pure data and one lookup, no DOM: the page's shell (kiosk.js) asks transition()
// before it changes screen, and test/machine.test.js drives the table directly.
//
// The keypad is two states (code, then phone) on one section of index.html; every other
// state has a section of its own. `section` is the <section data-screen> shown (and
// body[data-screen]); `idle` says which idle rule applies (kiosk.js idleLimit): resident
// screens go back to the start after TIMING.idleMs, driver screens sign the driver out
// after TIMING.driverIdleMs, and 'own' screens run their own clock (locked, doors,
// thanks) or are waiting for the edge (busy). `help` is the context sent with a Help
// press when no driver is signed in.
export const SCREENS = {
  code: { section: 'keypad', idle: 'resident', help: 'pickup' },
  phone: { section: 'keypad', idle: 'resident', help: 'pickup' },
  busy: { section: 'busy', idle: 'own', help: 'pickup' },
  compromised: { section: 'compromised', idle: 'resident', help: 'pickup' },
  message: { section: 'message', idle: 'resident', help: 'pickup' },
  locked: { section: 'locked', idle: 'own', help: 'pickup' },
  doors: { section: 'doors', idle: 'own', help: 'pickup' },
  thanks: { section: 'thanks', idle: 'own', help: 'pickup' },
  'driver-login': { section: 'driver-login', idle: 'resident', help: 'other' },
  driver: { section: 'driver', idle: 'driver', help: 'other' },
  'driver-problem': { section: 'driver-problem', idle: 'driver', help: 'other' }
};

export const START = 'code';

// TRANSITIONS: state × event → next state. The '*' row holds the events every screen
// takes. An event a state does not list is refused (transition returns null) and the
// screen stays as it is: a stray key or a late reply cannot jump screens.
export const TRANSITIONS = {
  '*': {
    home: 'code', // back to the start: idle, Back to start, session over, signed out
    lock: 'locked' // the edge says the keypad is locked (a reply, /api/info, or at home)
  },
  code: {
    codeDone: 'phone', // 8 digits and Next
    qr: 'busy', // a scanned device-bound QR code goes to the edge at once
    driverLink: 'driver-login'
  },
  phone: {
    back: 'code', // Delete on an empty phone step, or Start over
    submit: 'busy', // 4 digits and Open: the pickup goes to the edge
    qr: 'busy',
    driverLink: 'driver-login' // the driver link shows on both keypad steps
  },
  busy: {
    opened: 'doors', // pickup answered with open doors
    compromised: 'compromised', // out of temperature: ask before opening
    retry: 'code', // malformed entry or a refused QR code: the keypad again, with the message
    retryPhone: 'phone', // wrong code or phone digits: the phone step again, the code kept
    failed: 'message', // expired, already picked up, not ready, hardware, network, ...
    signedIn: 'driver',
    refused: 'driver-login' // credential not accepted
  },
  compromised: {
    openAnyway: 'busy', // resend the same attempt with accept_compromised
    leave: 'message'
  },
  message: {},
  locked: {
    qr: 'busy' // a device-bound QR code is honoured while the keypad waits
  },
  doors: {
    done: 'thanks' // every door closed and emptied
  },
  thanks: {},
  'driver-login': {
    signIn: 'busy'
  },
  driver: {
    problem: 'driver-problem',
    signedOut: 'driver-login' // token over, idle sign-out
  },
  'driver-problem': {
    reason: 'driver', // a reason chosen: the move runs from the manifest screen
    cancel: 'driver',
    signedOut: 'driver-login'
  }
};

// transition returns the state `event` leads to from `state`, or null when `state` does
// not take `event`.
export function transition(state, event) {
  const row = TRANSITIONS[state];
  if (!row) return null;
  if (Object.hasOwn(row, event)) return row[event];
  if (Object.hasOwn(TRANSITIONS['*'], event)) return TRANSITIONS['*'][event];
  return null;
}

export function sectionOf(state) {
  return SCREENS[state] ? SCREENS[state].section : '';
}
