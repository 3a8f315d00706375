package syncer

import (
	"fmt"
	"slices"
	"time"
)

// massHold is the task-wide mass-removal guard: removals that would take
// more than Share of the task's instances within Window (and at least Min)
// are held until an operator confirms them or Grace passes; then removals
// pass the guard for one Window. It is guarded by the engine's mu: every
// method is called with Engine.mu held and does no I/O.
type massHold struct {
	window time.Duration
	share  float64
	min    int

	removals []removalMark   // removals applied within the window
	since    time.Time       // start of the current hold; zero when none
	gen      uint64          // counts holds, so a stale grace timer cannot release a later one
	open     time.Time       // removals pass the guard until then (confirmed or grace over)
	svcs     map[string]bool // work keys whose removals are held
}

type removalMark struct {
	at time.Time
	n  int
}

func newMassHold(cfg Config) *massHold {
	return &massHold{window: cfg.MassWindow, share: cfg.MassShare, min: cfg.MassMin, svcs: map[string]bool{}}
}

// check decides whether batch removals of key are held, total being the
// task's registered instance count now. newHold is true when key was not
// held before; graceGen is non-zero when a new hold began (the caller starts
// its grace timer for that generation).
func (m *massHold) check(now time.Time, key string, total, batch int) (held, newHold bool, graceGen uint64) {
	if batch == 0 {
		delete(m.svcs, key)
		return false, false, 0
	}
	m.prune(now)
	recent := 0
	for _, r := range m.removals {
		recent += r.n
	}
	if now.Before(m.open) || !MassGuard(total, recent, batch, m.share, m.min) {
		delete(m.svcs, key)
		return false, false, 0
	}
	newHold = !m.svcs[key]
	m.svcs[key] = true
	if m.since.IsZero() {
		m.since = now
		m.gen++
		graceGen = m.gen
	}
	return true, newHold, graceGen
}

// applied records n removals applied at now.
func (m *massHold) applied(now time.Time, n int) {
	if n > 0 {
		m.removals = append(m.removals, removalMark{at: now, n: n})
	}
}

func (m *massHold) prune(now time.Time) {
	cut := 0
	for cut < len(m.removals) && now.Sub(m.removals[cut].at) >= m.window {
		cut++
	}
	m.removals = m.removals[cut:]
}

// release opens the guard for one window and returns the held keys; gen 0
// releases whatever is held, another gen only that hold (ok false: a stale
// timer, nothing done).
func (m *massHold) release(now time.Time, gen uint64) (held []string, ok bool) {
	if gen != 0 && (gen != m.gen || m.since.IsZero()) {
		return nil, false
	}
	m.open = now.Add(m.window)
	m.since = time.Time{}
	held = make([]string, 0, len(m.svcs))
	for s := range m.svcs {
		held = append(held, s)
	}
	return held, true
}

// forget drops key (its state is dropped).
func (m *massHold) forget(key string) { delete(m.svcs, key) }

// heldKeys lists the held keys, sorted.
func (m *massHold) heldKeys() []string {
	out := make([]string, 0, len(m.svcs))
	for s := range m.svcs {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// massGrace releases the hold of generation gen once the grace period has
// passed (unless it was released already).
func (e *Engine) massGrace(gen uint64) {
	defer e.wg.Done()
	select {
	case <-e.ctx.Done():
	case <-e.clock.After(e.cfg.MassGrace):
		e.releaseMass("grace period passed", gen)
	}
}

// releaseMass lets held removals go; gen 0 releases whatever is held, another
// gen only that hold.
func (e *Engine) releaseMass(why string, gen uint64) {
	e.mu.Lock()
	held, ok := e.mass.release(e.clock.Now(), gen)
	e.mu.Unlock()
	if !ok {
		return
	}
	if len(held) > 0 {
		e.log.Warn("mass removal released", "why", why, "services", len(held))
		e.record(Event{Kind: EventMassReleased, Detail: fmt.Sprintf("%s: %d services", why, len(held))})
	}
	for _, s := range held {
		e.enqueue(s, true, false)
	}
}
