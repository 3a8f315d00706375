package membership

import (
	"sort"
	"time"
)

// State is a member's health as this node sees it (Nacos' NodeState
// names).
type State string

const (
	// Up: the member answered its last probe.
	Up State = "UP"
	// Suspicious: not heard from yet, or its last probes failed (fewer
	// than FailLimit in a row). Still counted as a member for
	// responsibility, as Nacos does: one lost probe moves no client.
	Suspicious State = "SUSPICIOUS"
	// Down: FailLimit probes in a row failed.
	Down State = "DOWN"
	// Leaving: the member said it is stopping (graceful stop).
	Leaving State = "LEAVING"
)

// Serving reports whether a member in state s takes part in
// responsibility (UP and SUSPICIOUS, as Nacos' DistroMapper).
func (s State) Serving() bool { return s == Up || s == Suspicious }

// MemberView is one member as the detector sees it.
type MemberView struct {
	Address   string
	Self      bool
	State     State
	FailCount int       // consecutive failed probes
	LastOK    time.Time // last successful probe (zero: never)
	LastError string    // last probe error, "" after a success
}

// Detector is the failure detector: pure, deterministic state over probe
// outcomes and the times given to it. It is not safe for concurrent use:
// its owner (Membership) serialises calls.
type Detector struct {
	self      string
	failLimit int
	members   map[string]*MemberView
}

// NewDetector tracks members (self included, which is UP); the others
// start Suspicious until their first answer.
func NewDetector(self string, members []string, failLimit int) *Detector {
	d := &Detector{self: self, failLimit: failLimit, members: map[string]*MemberView{}}
	for _, m := range members {
		v := &MemberView{Address: m, State: Suspicious}
		if m == self {
			v.Self, v.State = true, Up
		}
		d.members[m] = v
	}
	return d
}

// SetMembers replaces the member list (a run-time change): members no
// longer listed are forgotten, new ones start Down (not serving) until
// their first answer, so a member that is added before it runs takes no
// clients. It returns whether anything changed.
func (d *Detector) SetMembers(members []string) bool {
	changed := false
	keep := map[string]bool{}
	for _, m := range members {
		keep[m] = true
		if d.members[m] == nil {
			d.members[m] = &MemberView{Address: m, State: Down, FailCount: d.failLimit}
			changed = true
		}
	}
	for m, v := range d.members {
		if !keep[m] && !v.Self {
			delete(d.members, m)
			changed = true
		}
	}
	return changed
}

// Success records an answer from m, which reported its own state
// (Leaving when it is stopping). It returns whether m's state changed.
func (d *Detector) Success(m string, reported State, now time.Time) bool {
	v := d.members[m]
	if v == nil || v.Self {
		return false
	}
	old := v.State
	v.FailCount, v.LastOK, v.LastError = 0, now, ""
	v.State = Up
	if reported == Leaving {
		v.State = Leaving
	}
	return v.State != old
}

// Failure records a failed probe of m. One failure makes an UP member
// Suspicious, FailLimit in a row make any member Down (a leaving member
// that stops answering is down). It returns whether m's state changed.
func (d *Detector) Failure(m, reason string, now time.Time) bool {
	v := d.members[m]
	if v == nil || v.Self {
		return false
	}
	old := v.State
	v.FailCount++
	v.LastError = reason
	switch {
	case v.FailCount >= d.failLimit:
		v.State = Down
	case v.State == Up:
		v.State = Suspicious
	}
	return v.State != old
}

// Left records that m announced it is leaving.
func (d *Detector) Left(m string) bool {
	v := d.members[m]
	if v == nil || v.State == Leaving {
		return false
	}
	v.State = Leaving
	return true
}

// SetSelf sets this node's own state (Up, or Leaving when stopping).
func (d *Detector) SetSelf(s State) bool {
	v := d.members[d.self]
	if v.State == s {
		return false
	}
	v.State = s
	return true
}

// State returns m's state ("" when m is not a member).
func (d *Detector) State(m string) State {
	if v := d.members[m]; v != nil {
		return v.State
	}
	return ""
}

// View returns every member, sorted by address.
func (d *Detector) View() []MemberView {
	out := make([]MemberView, 0, len(d.members))
	for _, v := range d.members {
		out = append(out, *v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Address < out[j].Address })
	return out
}

// Serving returns the members taking part in responsibility (UP and
// SUSPICIOUS), sorted.
func (d *Detector) Serving() []string {
	var out []string
	for m, v := range d.members {
		if v.State.Serving() {
			out = append(out, m)
		}
	}
	sort.Strings(out)
	return out
}
