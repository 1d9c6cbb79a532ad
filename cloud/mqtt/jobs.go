package mqtt

import (
	"sync"
	"time"

	"github.com/larder-lockers/larder/protocol"
)

// jobs keeps an expiry timer per pending command. The durable state of each command
// lives in the domain ([Commands]); jobs only decides when the cloud gives up on one.
// A timer does not act itself: it queues a task on the site's worker, so a timeout and
// the edge's acks for one site are handled one after the other, never concurrently.
type jobs struct {
	a *Adapter

	mu      sync.Mutex
	pending map[string]*job // by command id; guarded by mu
	stopped bool            // guarded by mu
}

type job struct {
	site  string
	cmd   protocol.Command
	timer *time.Timer
}

// retryAfter is how long a timeout waits before trying again when the domain failed
// to record it or the worker queue was full.
const retryAfter = 5 * time.Second

func newJobs(a *Adapter) *jobs { return &jobs{a: a, pending: map[string]*job{}} }

// arm starts (or keeps) the expiry timer of c at site, if this replica owns site: only
// the owner times a site's commands out (see the package doc).
func (j *jobs) arm(site string, c protocol.Command) {
	if !j.a.owns(site) {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.stopped {
		return
	}
	if _, ok := j.pending[c.ID]; ok {
		return
	}
	jb := &job{site: site, cmd: c}
	delay := c.ExpiresAt.Add(j.a.cfg.CommandGrace).Sub(j.a.now())
	jb.timer = time.AfterFunc(max(delay, 0), func() { j.fire(jb) })
	j.pending[c.ID] = jb
}

func (j *jobs) fire(jb *job) {
	if !j.a.dispatch(task{kind: taskTimeout, site: jb.site, timeoutCmd: jb.cmd.ID}) {
		j.retry(jb)
	}
}

func (j *jobs) retry(jb *job) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if !j.stopped && j.pending[jb.cmd.ID] == jb {
		jb.timer.Reset(retryAfter)
	}
}

// finish forgets command id (it reached a final state).
func (j *jobs) finish(id string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if jb, ok := j.pending[id]; ok {
		jb.timer.Stop()
		delete(j.pending, id)
	}
}

// forget drops the timer of command id without recording anything: the site's owner
// arms its own.
func (j *jobs) forget(id string) { j.finish(id) }

// disarmSite drops the timers of site's commands (the replica lost the site).
func (j *jobs) disarmSite(site string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for id, jb := range j.pending {
		if jb.site == site {
			jb.timer.Stop()
			delete(j.pending, id)
		}
	}
}

// reload arms the timers of every pending command of the sites this replica owns, now
// and every CommandGrace/2 until the adapter closes (only with an owner). A command
// published by a replica that does not own its site is armed here by the owner, at
// the latest half a grace after it was recorded, long before its expiry plus the grace.
func (j *jobs) reload() {
	a := j.a
	t := time.NewTicker(max(a.cfg.CommandGrace/2, time.Second))
	defer t.Stop()
	for {
		select {
		case <-a.ctx.Done():
			return
		case <-t.C:
		}
		ctx, cancel := a.call()
		cmds, err := a.cfg.Fleet.PendingCommands(ctx, "")
		cancel()
		if err != nil {
			a.warn.Error("mqtt: pending commands", "err", err)
			continue
		}
		for _, p := range cmds {
			j.arm(p.Site, p.Command) // only the owned sites'
		}
	}
}

// progress records an edge's ack. Runs on the site's worker.
func (j *jobs) progress(site string, ack protocol.CommandAck, at time.Time) {
	a := j.a
	ctx, cancel, f, ok := a.callFor(site)
	if !ok {
		return
	}
	err := a.cfg.Fleet.CommandProgress(ctx, site, ack, at)
	cancel()
	if isFenced(err) {
		a.leaseLost(site, f)
		return
	}
	if err != nil {
		a.m.fleetErrors.WithLabelValues(protocol.ChanCommandAck.String()).Inc()
		a.log.Error("mqtt: command progress not recorded", "site", site, "cmd_id", ack.CommandID, "state", ack.State, "err", err)
		return
	}
	if ack.State.Final() {
		j.mu.Lock()
		_, mine := j.pending[ack.CommandID]
		j.mu.Unlock()
		if mine {
			a.m.commands.WithLabelValues(string(ack.State)).Inc()
		}
		j.finish(ack.CommandID)
	}
}

// expire records TIMED_OUT for a command still pending. Runs on the site's worker.
func (j *jobs) expire(site, id string) {
	a := j.a
	j.mu.Lock()
	jb, ok := j.pending[id]
	j.mu.Unlock()
	if !ok {
		return // a final ack came first
	}
	ack := protocol.CommandAck{CommandID: id, State: protocol.StateTimedOut, Error: protocol.ErrExpired,
		Message: "no final acknowledgement from the edge before the command expired"}
	ctx, cancel, f, owned := a.callFor(site)
	if !owned {
		j.finish(id)
		return
	}
	err := a.cfg.Fleet.CommandProgress(ctx, site, ack, a.now())
	cancel()
	if isFenced(err) {
		a.leaseLost(site, f) // the new owner times it out
		j.finish(id)
		return
	}
	if err != nil {
		a.log.Error("mqtt: command timeout not recorded", "site", site, "cmd_id", id, "err", err)
		j.retry(jb)
		return
	}
	a.m.commands.WithLabelValues(string(protocol.StateTimedOut)).Inc()
	a.log.Warn("mqtt: command timed out", "site", site, "cmd_id", id, "kind", jb.cmd.Kind)
	j.finish(id)
}

// republish arms the timers of a site's pending commands and sends the unexpired ones
// again, after its birth or when this replica gains the site: the edge may have missed
// them while offline (clean session), and carries each id out at most once. Runs on
// the site's worker.
func (j *jobs) republish(site string) {
	a := j.a
	ctx, cancel, f, ok := a.callFor(site)
	if !ok {
		return
	}
	cmds, err := a.cfg.Fleet.PendingCommands(ctx, site)
	cancel()
	if isFenced(err) {
		a.leaseLost(site, f)
		return
	}
	if err != nil {
		a.log.Error("mqtt: pending commands", "site", site, "err", err)
		return
	}
	now := a.now()
	for _, p := range cmds {
		if p.Site != site {
			continue
		}
		j.arm(site, p.Command)
		if !p.Command.ExpiresAt.After(now) {
			continue
		}
		if err := a.publish(a.ctx, site, protocol.ChanCommands, commandHeader(p.Command), p.Command); err != nil {
			a.log.Warn("mqtt: command not republished", "site", site, "cmd_id", p.Command.ID, "err", err)
		}
	}
}

// stop cancels every timer; pending commands are reloaded by the next Start.
func (j *jobs) stop() {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.stopped = true
	for id, jb := range j.pending {
		jb.timer.Stop()
		delete(j.pending, id)
	}
}
