package cloudd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/larder-lockers/larder/cloud"
	"github.com/larder-lockers/larder/cloud/notify"
)

// queueKey returns the 32-byte key that seals the notification outbox (pending notices
// hold pickup codes and phone numbers) and the codes held on orders (cloud.Options
// CodeKey): from the configuration, or drawn once into
// DataDir/notify.key (0600). A key beside the database protects copies of the database
// alone (backups); protect the directory as a whole.
func (m *Main) queueKey() ([]byte, error) {
	if m.cfg.NotifyKey != "" {
		return hex.DecodeString(m.cfg.NotifyKey)
	}
	path := filepath.Join(m.cfg.DataDir, "notify.key")
	b, err := os.ReadFile(path)
	if err == nil {
		return hex.DecodeString(strings.TrimSpace(string(b)))
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("cloudd: %s: %w", path, err)
	}
	key := make([]byte, 32)
	rand.Read(key)
	if err := os.WriteFile(path, []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("cloudd: write %s: %w", path, err)
	}
	return key, nil
}

// noticeQueue is the durable outbox: notify.BoltQueue in the bbolt file, or
// notify.PGQueue in the PostgreSQL store.
type noticeQueue interface {
	notify.Queue
	notify.TxOutbox
	Purge(ctx context.Context, before time.Time) (int, error)
}

// openNotify builds the durable outbox (in the cloud's store), the domain's
// Notifier over it and the delivery worker (webhooks always; SMS when a gateway is set).
// The Notifier is transactional (cloud.TxNotifier): the domain writes each notice into
// the outbox in the transaction of the change it reports. publicURL is the base of the
// resident page's link that notices carrying a code include; key seals the outbox.
func (m *Main) openNotify(publicURL string, key []byte) (cloud.Notifier, error) {
	if m.pg != nil {
		q, err := notify.NewPGQueue(m.pg.Pool(), key)
		if err != nil {
			return nil, err
		}
		q.Claimer = m.cfg.ReplicaID // each replica's worker claims notices under its own name
		m.queue = q
	} else {
		q, err := notify.NewBoltQueue(m.db, "notify", key)
		if err != nil {
			return nil, err
		}
		m.queue = q
	}
	q := m.queue
	// ServiceEndpoints answers notify.ErrNoEndpoint for a platform that set no webhook, so
	// the worker cancels its webhook notices: nothing to deliver, nothing for ops to fix.
	senders := map[notify.Channel]notify.Sender{notify.ChannelWebhook: &notify.Webhook{Endpoints: notify.ServiceEndpoints{Service: m.svc}}}
	if m.cfg.SMSURL != "" {
		loc, _ := cloud.LoadZone(m.cfg.DefaultTimeZone) // validated
		senders[notify.ChannelSMS] = &notify.SMS{URL: m.cfg.SMSURL, Token: m.cfg.SMSToken, Location: loc}
	}
	var err error
	m.worker, err = notify.NewWorker(notify.WorkerConfig{Queue: q, Senders: senders, Registry: m.reg,
		Logger: m.log.With("component", "notify")})
	if err != nil {
		return nil, err
	}
	return &notify.Notifier{Outbox: q, PublicURL: publicURL, NoSMS: m.cfg.SMSURL == "", Wake: m.worker.Wake}, nil
}

// noticeRetention is how long delivered and cancelled notifications stay in the outbox:
// long after any caller could enqueue the same idempotency key again, short enough that
// the file does not keep every notice ever sent.
const noticeRetention = 30 * 24 * time.Hour

// purgeNotices drops finished notifications older than noticeRetention, at start and
// then daily, until ctx ends; with replicas, only the one holding the periodic work
// purges.
func (m *Main) purgeNotices(ctx context.Context) {
	tick := time.NewTicker(24 * time.Hour)
	defer tick.Stop()
	for {
		n, err := 0, error(nil)
		if m.holdsWork() {
			n, err = m.queue.Purge(ctx, time.Now().Add(-noticeRetention))
		}
		switch {
		case err != nil && ctx.Err() == nil:
			m.log.Warn("notification purge failed", "err", err)
		case n > 0:
			m.log.Info("notifications purged", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// holdsWork reports whether this process runs the fleet's periodic work: always for a
// cloud of one process, else while it holds the work lease.
func (m *Main) holdsWork() bool {
	if m.leases == nil {
		return true
	}
	_, ok := m.leases.Work()
	return ok
}
