// The edge's answer to a pickup attempt: the busy screen while it opens doors, the
// compromised choice (out of temperature: take it anyway or leave it), the message screen
// for answers that end the attempt, and the way back to the keypad after a wrong code.
// Machine states: busy, compromised, message (machine.js).
import { emptyEntry } from '../keypad.js';
import * as doorOpen from './door-open.js';
import * as locked from './locked.js';

// send posts the attempt (POST /api/pickup) and shows what the edge answered. attempt is
// {code, factor} from the phone step, or {qr} from a scanned device-bound QR code
// (screens/pickup.js); the second send, with acceptCompromised, comes from "Open anyway".
export async function send(k, attempt, acceptCompromised) {
  const { state } = k;
  state.busy = true;
  state.busyKey = 'working';
  k.clearBanner();
  const viaQR = Boolean(attempt.qr);
  if (acceptCompromised) k.go('openAnyway');
  else k.go(viaQR ? 'qr' : 'submit');
  const r = viaQR
    ? await k.api.pickupQR(attempt.qr, acceptCompromised)
    : await k.api.pickup(attempt.code, attempt.factor, acceptCompromised);
  state.busy = false;
  if (r.ok) {
    state.pending = null;
    doorOpen.start(k, r.body);
    return;
  }
  if (r.code === 'compromised' && !acceptCompromised) {
    state.pending = attempt; // needed to resend with accept_compromised
    state.minutesOut = Number.isFinite(Number(r.body.minutes_out)) ? Number(r.body.minutes_out) : null;
    k.clearBanner();
    k.go('compromised');
    return;
  }
  state.pending = null;
  refused(k, r, attempt);
}

// refused shows a pickup the edge did not open, by its error code (docs/kiosk-api.md).
function refused(k, r, attempt) {
  switch (r.code) {
    case 'wrong_code': {
      // Past the first few wrong codes the edge waits before it checks another one
      // (retry_after_seconds): show the wait rather than a keypad that would be refused.
      const wait = Number(r.body.retry_after_seconds);
      if (Number.isFinite(wait) && wait > 0) {
        k.state.lockUntil = k.now() + wait * 1000;
        locked.show(k, { announce: true, wrongCode: true });
        return;
      }
      // The edge cannot say which of the two was wrong; the 8 digits are more work to
      // type and more often right, so they stay and the phone step comes back (Start
      // over or Delete on it reaches the code). A QR attempt has no digits: the keypad.
      const parts = ['wrongCode'];
      const left = Number(r.body.attempts_left);
      if (Number.isFinite(left) && left > 0) parts.push({ key: 'attemptsLeft', params: { n: left } });
      if (attempt.code) {
        parts.push('retryPhone');
        k.home({ keepLang: true, keepBanner: true, event: 'retryPhone',
          entry: { step: 'factor', code: attempt.code, factor: '' } });
      } else {
        k.home({ keepLang: true, keepBanner: true, event: 'retry' });
      }
      k.banner('error', parts);
      k.resetIdle(); // so the message does not greet the next person
      return;
    }
    case 'bad_request':
      k.state.entry = emptyEntry();
      k.home({ keepLang: true, event: 'retry' });
      k.banner('error', [r.body.field === 'qr' ? 'qrUnreadable' : 'badRequest']);
      k.resetIdle();
      return;
    case 'qr_refused': {
      // A QR code the edge could not verify counts nothing: back to the keypad (or to
      // the wait it interrupted), saying why.
      const why = { other_site: 'qrOtherSite', expired: 'qrExpired' }[r.body.reason] || 'qrInvalid';
      k.state.entry = emptyEntry();
      k.home({ keepLang: true, keepBanner: true, event: 'retry' });
      k.banner('error', [why]);
      k.resetIdle();
      return;
    }
    case 'not_found': return showMessage(k, 'failed', 'errorTitle', 'qrNoOrder', 'error');
    case 'locked': {
      const secs = Number(r.body.retry_after_seconds) || Number(r.body.locked_seconds) || 60; // 60: the edge's longest wait
      k.state.lockUntil = k.now() + secs * 1000;
      locked.show(k, { announce: true });
      return;
    }
    case 'expired': return showMessage(k, 'failed', 'expiredTitle', 'expiredBody', 'info');
    case 'already_picked_up': return showMessage(k, 'failed', 'alreadyTitle', 'alreadyBody', 'info');
    case 'not_ready': return showMessage(k, 'failed', 'notReadyTitle', 'notReadyBody', 'info');
    case 'hardware':
      // If the edge says which doors did open (beyond the contract, but cheap to honour),
      // show them: the resident may still take what is behind them.
      if (r.body.session && Array.isArray(r.body.doors) && r.body.doors.length) {
        doorOpen.start(k, r.body);
        k.banner('error', ['hardwareBody']);
        return;
      }
      return showMessage(k, 'failed', 'hardwareTitle', 'hardwareBody', 'error');
    case 'network': return showMessage(k, 'failed', 'networkTitle', 'networkBody', 'error');
    default: return showMessage(k, 'failed', 'errorTitle', 'errorBody', 'error');
  }
}

function showMessage(k, event, titleKey, bodyKey, kind) {
  k.state.message = { titleKey, bodyKey };
  k.go(event);
  k.banner(kind || 'info', [bodyKey]);
}

export function renderMessage(k) {
  const m = k.state.message || { titleKey: 'errorTitle', bodyKey: 'errorBody' };
  k.$('#message-title').textContent = k.L(m.titleKey);
  k.$('#message-body').textContent = k.L(m.bodyKey);
}

export function renderBusy(k) {
  k.$('#busy-text').textContent = k.L(k.state.busyKey);
}

export function renderCompromised(k) {
  const { state } = k;
  k.$('#compromised-body').textContent = state.minutesOut !== null
    ? k.L('compromisedBody', { minutes: state.minutesOut })
    : k.L('compromisedBodyPlain');
}

export function wire(k) {
  k.$('#leave-it').addEventListener('click', () => {
    k.state.pending = null;
    showMessage(k, 'leave', 'leftTitle', 'leftBody', 'ok');
  });
  k.$('#open-anyway').addEventListener('click', () => {
    const attempt = k.state.pending;
    k.state.pending = null;
    if (attempt) send(k, attempt, true);
    else k.home();
  });
}
