package edge

import (
	"context"
	"errors"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/larder-lockers/larder/edge/hw"
	"github.com/larder-lockers/larder/protocol"
)

// PickupResult is what the kiosk shows after a successful code: which doors opened.
type PickupResult struct {
	Session     string `json:"session"`
	OrderRef    string `json:"order_ref"`
	Doors       []Door `json:"doors"`
	Compromised bool   `json:"compromised"`
}

// The shape of what a resident types, from the wire contract: the cloud draws every
// pickup code with protocol.CodeDigits digits, so a code of any other length cannot
// belong to an order: it is a typing or client error, answered bad_request and counted
// nowhere, not a guess.
const (
	CodeDigits   = protocol.CodeDigits   // a pickup code
	FactorDigits = protocol.FactorDigits // the second factor: the last digits of the phone number
)

// digits reports whether s is exactly n decimal digits.
func digits(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// badShape is nil when code and factor have the shape of a pickup attempt, else the
// bad_request to answer, naming the field (code before factor) in "field".
func badShape(code, factor string) *Error {
	switch {
	case !digits(code, CodeDigits):
		return errorf(CodeBadRequest, "pickup", "A pickup code has 8 digits. Please enter your code again.",
			"取件码为8位数字，请重新输入。").with("field", "code")
	case !digits(factor, FactorDigits):
		return errorf(CodeBadRequest, "pickup", "Please enter the last 4 digits of your phone number.",
			"请输入手机号后4位。").with("field", "factor")
	}
	return nil
}

// delayAfter is how long the keypad waits after the n-th wrong code in a row: nothing for
// the first FreeFailures (a resident's typos), then DelayBase doubling up to DelayMax.
func (l *Locker) delayAfter(n int) time.Duration {
	if n <= l.cfg.FreeFailures {
		return 0
	}
	d := l.cfg.DelayBase
	for i := l.cfg.FreeFailures + 1; i < n && d < l.cfg.DelayMax; i++ {
		d *= 2
	}
	return min(d, l.cfg.DelayMax)
}

// ThrottledFor is how long the keypad waits before it checks another code (0: it checks
// the next one at once).
func (l *Locker) ThrottledFor() time.Duration {
	var th Throttle
	_ = l.cfg.Store.View(func(tx Tx) error {
		var err error
		th, err = tx.Throttle()
		return err
	})
	return l.waitLeft(th, l.clock.Now())
}

// waitLeft is the wait th imposes at now. It never exceeds DelayMax, so that a clock set
// back after a wrong code cannot stretch the wait past the promise to residents (Pickup
// then stores the shorter wait).
func (l *Locker) waitLeft(th Throttle, now time.Time) time.Duration {
	return min(max(0, th.WaitUntil.Sub(now)), l.cfg.DelayMax)
}

// secondsUp is d in whole seconds, rounded up, as the kiosk shows it.
func secondsUp(d time.Duration) int { return int(math.Ceil(d.Seconds())) }

func lockedErr(d time.Duration) *Error {
	return errorf(CodeLocked, "pickup", "Too many wrong codes. Please wait a moment and try again.",
		"错误次数过多，请稍候再试。").with("retry_after_seconds", secondsUp(d))
}

// fail counts one wrong code in th and returns the answer: wrong_code with the tries left
// before the keypad starts to wait, or with the wait itself. It enqueues code_lockout
// (reason wrong_code_budget) with the wrong code that spends the window's budget, once
// per window; the budget only alerts, it never refuses anyone.
func (l *Locker) fail(tx Tx, th *Throttle, now time.Time) (e *Error, budgetSpent bool, err error) {
	// A time in the future means the clock was set back: start over rather than wait
	// for the clock to catch up.
	if now.Sub(th.LastFailure) >= l.cfg.DelayQuiet || now.Before(th.LastFailure) {
		th.Failures = 0
	}
	if now.Sub(th.BudgetFrom) >= l.cfg.BudgetWindow || now.Before(th.BudgetFrom) {
		th.BudgetFrom, th.BudgetUsed = now, 0
	}
	th.Failures++
	th.BudgetUsed++
	th.LastFailure = now
	wait := l.delayAfter(th.Failures)
	th.WaitUntil = now.Add(wait)
	if th.BudgetUsed == l.cfg.FailureBudget {
		budgetSpent = true
		// No Seconds: nothing is locked.
		if err := enqueue(tx, now, protocol.Event{Kind: protocol.EventCodeLockout, Credential: protocol.CredPickup,
			Reason: "wrong_code_budget"}); err != nil {
			return nil, false, err
		}
	}
	e = errorf(CodeWrongCode, "pickup", "That code or phone number is not right. Please check and try again.",
		"取件码或手机尾号不正确，请核对后重试。")
	if wait > 0 {
		e = e.with("retry_after_seconds", secondsUp(wait))
	} else {
		e = e.with("attempts_left", l.cfg.FreeFailures-th.Failures+1)
	}
	return e, budgetSpent, tx.PutThrottle(*th)
}

// Pickup checks a resident's code and second factor and opens every compartment of the
// order, staggered. The pickup is recorded in progress (session, audit entries) before
// any relay is pulsed; picked_up is recorded when the doors close and the infrared sees
// the compartments empty. Codes are looked up by keyed digest and the factor compared in
// constant time; neither is ever logged. A code that is not CodeDigits digits or a factor
// that is not FactorDigits digits is bad_request (with "field") and counts as no guess.
//
// Wrong codes and wrong factors feed the keypad's Throttle: after the first FreeFailures
// the keypad waits (DelayBase doubling to DelayMax) before it checks another code, and an
// attempt during the wait is answered locked with the seconds left, unchecked. A
// resident therefore never waits more than DelayMax, whatever anyone typed before, and a
// guesser is held to about one guess per DelayMax (docs/codes.md).
func (l *Locker) Pickup(ctx context.Context, code, factor string, acceptCompromised bool) (PickupResult, error) {
	// Checked before the store is touched: a malformed attempt counts toward neither the
	// keypad's throttle nor the order's wrong second factors.
	if e := badShape(code, factor); e != nil {
		return PickupResult{}, e
	}
	return l.pickup(ctx, code, factor, false, acceptCompromised)
}

// pickup is Pickup after the shape check, and PickupQR after the tag check (byQR): a
// verified tag stands for the second factor and for the keypad's turn, so byQR skips the
// throttle's wait and the factor, and nothing it finds counts as a wrong code.
func (l *Locker) pickup(ctx context.Context, code, factor string, byQR, acceptCompromised bool) (PickupResult, error) {
	key := l.cfg.SiteKey
	codeDigest := protocol.CodeDigest(key, code)
	var (
		outcome  *Error
		sess     Session
		resumed  bool
		order    Reservation
		failures int
		lockouts int
	)
	err := l.cfg.Store.Update(func(tx Tx) error {
		outcome, resumed, failures, lockouts = nil, false, 0, 0
		// Read the clock once the transaction is ours: another attempt may have
		// held the store meanwhile, and the throttle must judge this one at its turn.
		now := l.clock.Now()
		th, err := tx.Throttle()
		if err != nil {
			return err
		}
		// While the keypad waits, nothing is checked and nothing counted: a guess then
		// costs the guesser nothing but also learns nothing, and cannot lengthen the
		// wait for the resident behind them.
		if wait := l.waitLeft(th, now); wait > 0 && !byQR {
			outcome = lockedErr(wait)
			if th.WaitUntil.Sub(now) > wait {
				// The clock was set back: keep the promise of at most DelayMax.
				th.WaitUntil = now.Add(wait)
				return tx.PutThrottle(th)
			}
			return nil
		}
		orderID, found, err := tx.OrderByCode(codeDigest)
		if err != nil {
			return err
		}
		var r Reservation
		if found {
			r, found, err = tx.Reservation(orderID)
			if err != nil {
				return err
			}
		}
		if !found {
			// A finished order's code with its right factor: say so, and count nothing.
			if used, ok, err := tx.UsedCode(codeDigest); err != nil {
				return err
			} else if ok {
				if r, ok, err := tx.Reservation(used); err != nil {
					return err
				} else if ok && (byQR || protocol.DigestEqual(protocol.SecondFactorDigest(key, r.Order, factor), r.FactorDigest)) {
					outcome = errorf(CodeAlreadyPickedUp, "pickup", "This order has already been picked up. If it was not you, please press Help.",
						"该订单已被取走。如果不是您取的，请按求助键。")
					return nil
				}
			}
			if byQR {
				// The cloud tagged a code this edge holds no order for (not yet
				// delivered, or cancelled): not a guess.
				outcome = errorf(CodeNotFound, "pickup", "No order for this QR code is waiting here. Please type your code, or press Help.",
					"这里没有这个二维码的订单。请输入取件码，或按求助键。")
				return nil
			}
			failures++
			var spent bool
			outcome, spent, err = l.fail(tx, &th, now)
			if spent {
				lockouts++
			}
			return err
		}
		if !byQR && !protocol.DigestEqual(protocol.SecondFactorDigest(key, r.Order, factor), r.FactorDigest) {
			failures++
			r.WrongAttempts++
			if r.WrongAttempts >= l.cfg.MaxOrderFailures && r.State != OrderPicking {
				// The code may have leaked: kill it; the cloud drops it and a new one
				// is drawn by reissue.
				r.State = OrderInvalidated
				lockouts++
				if err := enqueue(tx, now, protocol.Event{Kind: protocol.EventCodeLockout, Credential: protocol.CredPickup,
					Order: r.Order, Reason: "order_invalidated"}); err != nil {
					return err
				}
			}
			if err := tx.PutReservation(r); err != nil {
				return err
			}
			var spent bool
			outcome, spent, err = l.fail(tx, &th, now)
			if spent {
				lockouts++
			}
			return err
		}
		if l.expired(&r, now) {
			outcome = errorf(CodeExpired, "pickup", "Your pickup time has ended; the courier will return the order.",
				"取件时间已过，配送员会将订单取回。")
			return nil
		}
		switch r.State {
		case OrderPicking:
			// The same person again (a refresh, a second press): show the same session.
			s, ok, err := tx.Session(r.Session)
			if err != nil {
				return err
			}
			if ok {
				sess, resumed, order = s, true, r
				return nil
			}
		case OrderReserved:
			outcome = errorf(CodeNotReady, "pickup", "Your order has not been loaded yet. You will get a message when it is ready.",
				"您的订单尚未放入，放好后会通知您。")
			return nil
		case OrderLoaded:
		default:
			outcome = errorf(CodeAlreadyPickedUp, "pickup", "This order has already been picked up.", "该订单已被取走。")
			return nil
		}
		if r.Compromised && !acceptCompromised {
			outcome = errorf(CodeCompromised, "pickup",
				"This order was out of its safe temperature for too long. You can leave it for a refund or redelivery, or open it anyway.",
				"该订单超出安全温度时间过长。您可以放弃取件以获得退款或重新配送，或选择仍然打开。").
				with("minutes_out", int(math.Round(r.OutSeconds/60)))
			return nil
		}
		sess = Session{ID: newToken(), Kind: SessionPickup, Order: r.Order, Credential: protocol.CredPickup, QR: byQR, Started: now}
		for _, s := range r.Slots {
			sess.Compartments = append(sess.Compartments, s.Compartment)
		}
		r.State, r.Session, r.WrongAttempts = OrderPicking, sess.ID, 0
		order = r
		if err := tx.PutReservation(r); err != nil {
			return err
		}
		return l.openDoors(tx, sess, sess.reason(), now)
	})
	l.m.CodeFailures.Add(float64(failures))
	l.m.CodeLockouts.Add(float64(lockouts))
	if err != nil {
		return PickupResult{}, internal("pickup", err)
	}
	if failures > 0 || lockouts > 0 {
		l.notify()
	}
	if outcome != nil {
		if outcome.Code == CodeLocked || outcome.Code == CodeWrongCode {
			l.log.Info("pickup refused", "reason", string(outcome.Code))
		}
		return PickupResult{}, outcome
	}
	return l.pulseSession(ctx, sess, order, resumed)
}

// PickupQR opens the order of a device-bound QR payload,
// larder:v1:{site}:{code}:{expires}:{tag}, the QR code the resident page shows to whoever
// holds the order link (docs/codes.md). A tag that protocol.QRTag under the site key
// confirms stands for the second factor, so the doors open without it, and for the
// keypad's turn: it is honoured while the keypad waits after wrong codes. Otherwise the
// order is handled as by Pickup (expired, not loaded, compromised, the same session
// again), and the audit entries and events say it was a QR code.
//
// A payload that is not of that shape is bad_request ("field": "qr"). One for another
// site, with a tag that does not verify, or outside its validity (expired, or expiring
// more than twice protocol.QRTagLifetime ahead) is qr_refused with a "reason"
// (other_site, bad_tag, expired): the code in it is not looked up, and nothing counts
// toward the throttle or the order's limit, because a tag cannot be guessed and so
// teaches nothing about codes. Every refusal is counted in
// larder_qr_refused_total{reason} and logged at most once a minute (qrRefused), so a
// scanner loop or a forging program shows.
func (l *Locker) PickupQR(ctx context.Context, payload string, acceptCompromised bool) (PickupResult, error) {
	code, reason := l.verifyQR(payload, l.clock.Now())
	switch reason {
	case "":
		return l.pickup(ctx, code, "", true, acceptCompromised)
	case "malformed":
		l.qrRefused(reason)
		return PickupResult{}, errorf(CodeBadRequest, "pickup", "That QR code could not be read. Please type the code from your message.",
			"无法识别这个二维码，请输入短信里的取件码。").with("field", "qr")
	}
	l.qrRefused(reason)
	msg, msgZH := "This QR code does not open anything here. Please type the code from your message.",
		"这个二维码在这里无效，请输入短信里的取件码。"
	if reason == "expired" {
		msg, msgZH = "This QR code has expired. Open your order page again for a new one, or type your code.",
			"二维码已过期。请重新打开订单页面获取新的二维码，或输入取件码。"
	}
	return PickupResult{}, errorf(CodeQRRefused, "pickup", msg, msgZH).with("reason", reason)
}

// verifyQR returns the code of a device-bound QR payload valid at now, or why not:
// malformed, other_site, bad_tag or expired. The tag is compared in constant time before
// its expiry is looked at, so a forged payload is always bad_tag.
func (l *Locker) verifyQR(payload string, now time.Time) (code, reason string) {
	f := strings.Split(payload, ":")
	if len(f) != 6 || f[0] != "larder" || f[1] != "v1" || !protocol.ValidSite(f[2]) || !digits(f[3], CodeDigits) ||
		!hexLower(f[5], 2*protocol.QRTagBytes) {
		return "", "malformed"
	}
	site, code := f[2], f[3]
	unix, err := strconv.ParseUint(f[4], 10, 63) // decimal digits only, no sign
	if err != nil {
		return "", "malformed"
	}
	expires := time.Unix(int64(unix), 0)
	switch {
	case site != l.cfg.Site:
		return "", "other_site"
	case !protocol.DigestEqual(protocol.QRTag(l.cfg.SiteKey, site, code, expires), f[5]):
		return "", "bad_tag"
	case !now.Before(expires) || expires.Sub(now) > 2*protocol.QRTagLifetime:
		return "", "expired"
	}
	return code, ""
}

// hexLower reports whether s is n lower-case hex digits.
func hexLower(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return true
}

// qrRefused counts a refused QR payload and logs refusals at most once a minute, with
// how many there were since the last line: a loop then costs one line a minute.
func (l *Locker) qrRefused(reason string) {
	l.m.QRRefused.WithLabelValues(reason).Inc()
	now := l.clock.Now()
	l.mu.Lock()
	l.qrRefusals++
	n := l.qrRefusals
	due := l.qrLoggedAt.IsZero() || now.Sub(l.qrLoggedAt) >= time.Minute || now.Before(l.qrLoggedAt)
	if due {
		l.qrLoggedAt, l.qrRefusals = now, 0
	}
	l.mu.Unlock()
	if due {
		l.log.Info("qr refused", "reason", reason, "refusals", n)
	}
}

// reason is the audit reason of a pickup session's door openings; eventReason is the
// reason its door_opened and picked_up events carry ("qr" for a QR pickup, else none).
func (s Session) reason() string {
	if s.QR {
		return "pickup_qr"
	}
	return "pickup"
}

func (s Session) eventReason() string {
	if s.QR {
		return "qr"
	}
	return ""
}

// openDoors records a session's doors as opening (with their audit entries) in tx,
// before any relay moves.
func (l *Locker) openDoors(tx Tx, s Session, why string, now time.Time) error {
	for _, c := range s.Compartments {
		comp, _, err := tx.Compartment(c)
		if err != nil {
			return err
		}
		switch s.Kind {
		case SessionLoading:
			comp.State = StateLoading
		default:
			comp.State = StateOpening
		}
		comp.Since = now
		if err := tx.PutCompartment(comp); err != nil {
			return err
		}
		if err := tx.Audit(AuditEntry{At: now, Compartment: c, Reason: why, Credential: s.Credential, Order: s.Order, Actor: s.Actor}); err != nil {
			return err
		}
	}
	return tx.PutSession(s)
}

// pulseSession opens a recorded session's doors and reports jams. When no door opened,
// the session is abandoned (the code keeps working) and the person is told.
func (l *Locker) pulseSession(ctx context.Context, s Session, r Reservation, resumed bool) (PickupResult, error) {
	l.trackSession(s)
	var open []int
	for _, c := range s.Compartments {
		if p := l.Physical(c); resumed && p.Door == hw.DoorOpen {
			continue
		}
		open = append(open, c)
	}
	// Once recorded, the doors open even if the person's browser goes away.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	errs := l.unlockAll(ctx, open)
	var jammed []int
	var failures []error
	for i, err := range errs {
		if err != nil {
			jammed = append(jammed, open[i])
			failures = append(failures, err)
			l.log.Warn("door did not open", "compartment", open[i], "order", s.Order, "err", err)
		}
	}
	if len(jammed) > 0 {
		l.recordJams(s, jammed, failures)
		if len(jammed) == len(s.Compartments) {
			_ = l.abandon(s)
			return PickupResult{}, errorf(CodeHardware, "pickup", "Sorry, the door could not be opened. Staff have been alerted.",
				"抱歉，柜门无法打开，已通知工作人员。")
		}
		s.Jammed = append(s.Jammed, jammed...)
	}
	res := PickupResult{Session: s.ID, OrderRef: orderRef(r.Order), Compromised: r.Compromised}
	for _, c := range s.Compartments {
		d := l.door(c, contains(s.Jammed, c))
		if !contains(s.Jammed, c) {
			d.State = "open"
		}
		res.Doors = append(res.Doors, d)
	}
	return res, nil
}

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// recordJams stores the doors that did not open in the session and writes lock_jammed for
// those whose latch jammed (errs[i] is the error of jammed[i]); an offline board is
// reported by the poller.
func (l *Locker) recordJams(s Session, jammed []int, errs []error) {
	now := l.clock.Now()
	err := l.cfg.Store.Update(func(tx Tx) error {
		cur, ok, err := tx.Session(s.ID)
		if err != nil || !ok {
			return err
		}
		for i, c := range jammed {
			if !contains(cur.Jammed, c) {
				cur.Jammed = append(cur.Jammed, c)
			}
			if !errors.Is(errs[i], hw.ErrJammed) {
				continue
			}
			if err := enqueue(tx, now, protocol.Event{Kind: protocol.EventLockJammed, Credential: s.Credential,
				Compartment: c, Order: s.Order}); err != nil {
				return err
			}
		}
		return tx.PutSession(cur)
	})
	if err != nil {
		l.log.Error("recording jammed doors failed", "order", s.Order, "err", err)
	}
	l.notify()
}

// unlockErr turns a latch error into a person's message.
func unlockErr(op string, err error) *Error {
	e := errorf(CodeHardware, op, "Sorry, the door could not be opened. Staff have been alerted.", "抱歉，柜门无法打开，已通知工作人员。")
	e.Err = err
	if errors.Is(err, hw.ErrJammed) {
		e = e.with("reason", "jammed")
	}
	return e
}

// orderRef is the last 4 characters of an order id, enough for a person to recognise it.
func orderRef(order string) string {
	if len(order) <= 4 {
		return order
	}
	return order[len(order)-4:]
}

// Info is the kiosk's idle state: the site and how long the keypad waits before it checks
// another code, in whole seconds.
func (l *Locker) Info() (site string, lockedSeconds int) {
	return l.cfg.Site, secondsUp(l.ThrottledFor())
}

// Help raises a help_requested alert for ops, at most one per HelpInterval for the
// kiosk: a press within HelpInterval of the last alert raises nothing and reports
// raised false (staff already know; the cloud keeps one open help alarm per kiosk
// anyway), so neither a worried resident pressing again nor a prankster can flood ops.
// The interval lives in memory only: a restart allows one alert at once.
func (l *Locker) Help(ctx context.Context, where string) (raised bool, err error) {
	now := l.clock.Now()
	if len(where) > 32 {
		where = where[:32]
	}
	// Claim the slot before writing, so two presses at once raise one alert; give it
	// back if the write fails, so the next press tries again.
	l.mu.Lock()
	last := l.helpAt
	if !last.IsZero() && now.Sub(last) < l.cfg.HelpInterval {
		l.mu.Unlock()
		return false, nil
	}
	l.helpAt = now
	l.mu.Unlock()
	err = l.cfg.Store.Update(func(tx Tx) error {
		return enqueue(tx, now, protocol.Event{Kind: protocol.EventHelpRequested, Credential: protocol.CredNone, Reason: where})
	})
	if err != nil {
		l.mu.Lock()
		if l.helpAt.Equal(now) {
			l.helpAt = last
		}
		l.mu.Unlock()
		return false, internal("help", err)
	}
	l.notify()
	return true, nil
}
