package edge

import (
	"context"
	"time"

	"github.com/larder-lockers/larder/protocol"
)

// The link to the cloud. The edge records durably (Link) since when it has been unable
// to reach the cloud: from the moment the sync lost the broker, from its own stop or,
// after a crash, its last sign of life (an edge that is not running does not reach the
// cloud either), or from its first start, until the sync is connected again. While that outage is longer than
// protocol.MinOutage, every flow honours a reservation past its ExpiresAt by the
// outage's length within the order's food-safety cap (Reservation.Deadline). When the
// link returns, the edge reports the outage in an outage event through the outbox,
// sequenced and durable like every fact, and the cloud moves its deadlines by the part
// of it that its own evidence has not counted; its desired delta then makes ExpiresAt
// the deadline again.

// AliveEvery is how often Tick records that the edge is running and linked (Link.Alive):
// a crash is counted as an outage from the last record, up to this much early.
const AliveEvery = 15 * time.Second

// LinkUp records that the edge reaches the cloud again: the sync calls it once a
// connection has completed its connect sequence, before the outbox drains. An outage
// longer than protocol.MinOutage is reported to the cloud (an outage event, in the same
// transaction that ends it).
func (l *Locker) LinkUp(ctx context.Context) error {
	now := l.clock.Now()
	var outage time.Duration
	err := l.cfg.Store.Update(func(tx Tx) error {
		k, err := tx.Link()
		if err != nil {
			return err
		}
		outage = k.Outage(now)
		if outage > protocol.MinOutage {
			if err := enqueue(tx, now, protocol.Event{Kind: protocol.EventOutage, Credential: protocol.CredNone,
				Seconds: outage.Seconds()}); err != nil {
				return err
			}
		}
		return tx.PutLink(Link{Alive: now})
	})
	if err != nil {
		return wrap("link up", err)
	}
	l.linkMu.Lock()
	l.down = time.Time{}
	l.linkMu.Unlock()
	if outage > protocol.MinOutage {
		l.log.Info("cloud reachable again", "outage_seconds", outage.Seconds())
		l.notify()
	}
	return nil
}

// LinkDown records that the edge has lost the cloud (the connection dropped, or the sync
// is shutting down): the outage starts now.
func (l *Locker) LinkDown(ctx context.Context) error {
	now := l.clock.Now()
	err := l.cfg.Store.Update(func(tx Tx) error {
		k, err := tx.Link()
		if err != nil || !k.Down.IsZero() {
			return err
		}
		k.Down = now
		return tx.PutLink(k)
	})
	if err != nil {
		return wrap("link down", err)
	}
	l.linkMu.Lock()
	if l.down.IsZero() {
		l.down = now
	}
	l.linkMu.Unlock()
	return nil
}

// Outage is how long the edge has been unable to reach the cloud (0 while linked).
func (l *Locker) Outage() time.Duration { return l.outage(l.clock.Now()) }

func (l *Locker) outage(now time.Time) time.Duration {
	l.linkMu.Lock()
	defer l.linkMu.Unlock()
	return Link{Down: l.down}.Outage(now)
}

// expired is the one answer to "is this order's pickup time over?" for every flow: the
// kiosk, the manifest, returns.
func (l *Locker) expired(r *Reservation, now time.Time) bool { return r.Expired(now, l.outage(now)) }

// resumeLink, at Start, makes an outage of the time the edge was not running: a link
// that was up when the edge stopped (a crash) is down since its last sign of life, and
// a first start is down until the first connection.
func (l *Locker) resumeLink(tx Tx, now time.Time) error {
	k, err := tx.Link()
	if err != nil {
		return err
	}
	if k.Down.IsZero() {
		k.Down = k.Alive
		if k.Down.IsZero() || k.Down.After(now) {
			k.Down = now
		}
		if err := tx.PutLink(k); err != nil {
			return err
		}
	}
	l.linkMu.Lock()
	l.down = k.Down
	l.linkMu.Unlock()
	return nil
}

// aliveTick records, every AliveEvery while linked, that the edge is running (Tick).
func (l *Locker) aliveTick(now time.Time) {
	l.linkMu.Lock()
	due := l.down.IsZero() && now.Sub(l.aliveAt) >= AliveEvery
	if due {
		l.aliveAt = now
	}
	l.linkMu.Unlock()
	if !due {
		return
	}
	err := l.cfg.Store.Update(func(tx Tx) error {
		k, err := tx.Link()
		if err != nil || !k.Down.IsZero() {
			return err
		}
		k.Alive = now
		return tx.PutLink(k)
	})
	if err != nil {
		l.log.Error("recording the link alive failed", "err", err)
	}
}
