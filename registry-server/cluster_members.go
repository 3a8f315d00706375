package registryserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ferrysync/ferry/registry-server/clusternet"
	"github.com/ferrysync/ferry/registry-server/distro"
	"github.com/ferrysync/ferry/registry-server/membership"
	"github.com/ferrysync/ferry/registry-server/raftstore"
)

// Run-time membership changes.
//
// Once the Raft group is formed its configuration is the member list:
// every member follows it (membership probes, the cluster port's
// accepted senders, Distro's peers), polled by membersFollower. An
// operator changes the list on any member — a re-read cluster.conf
// (SIGHUP: Server.ChangeMembers with the whole list) or Nacos'
// POST /nacos/v1/core/cluster/server/leave (and Ferry's .../server/join)
// — and the change is carried out by the leader (forwarded to it over
// the cluster port, as writes are):
//
//   - a new member is added as a Raft non-voter: it receives the snapshot
//     and the log, loads Distro's snapshot from a peer, and is promoted to
//     voter by the leader once it reports itself caught up and serving;
//     it does not bootstrap (a member without Raft state that hears of a
//     formed group waits to be added);
//   - a removed member leaves the Raft configuration (the leader, when it
//     is the one removed, hands leadership over first and its successor
//     removes it); the others then stop sending to it and refuse it;
//   - a change is refused, naming why, when it would remove a majority of
//     the voters at once or leave fewer serving voters than a quorum of
//     the new configuration.

// ErrMembers marks a refused membership change.
var ErrMembers = errors.New("registryserver: membership change refused")

// membersPath is the cluster route of membership changes forwarded to
// the leader.
const membersPath = "/ferry/cluster/v1/members"

type membersRequest struct {
	Members []string `json:"members"`
}

type membersAnswer struct {
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

// memberChanger carries out membership changes: the leader's half
// (apply), the forwarding of a follower's request, and the promotion of
// caught-up non-voters. mu serialises changes on the leader.
type memberChanger struct {
	self   string
	mem    *membership.Membership
	store  *raftstore.Store
	client *clusternet.Client
	log    *slog.Logger

	mu sync.Mutex
}

// change makes desired the member list, on the leader (forwarding to it
// from a follower); before the group is formed only this member's list
// changes (it decides what the group bootstraps with). It retries while
// leadership moves, until ctx ends.
func (c *memberChanger) change(ctx context.Context, desired []string) error {
	if len(desired) == 0 {
		return fmt.Errorf("%w: empty member list", ErrMembers)
	}
	if err := membership.CheckMembers(desired[0], desired); err != nil {
		return fmt.Errorf("%w: %w", ErrMembers, err)
	}
	if !c.store.Formed() {
		if err := c.mem.SetMembers(desired); err != nil {
			return fmt.Errorf("%w: %w", ErrMembers, err)
		}
		return nil
	}
	for {
		var err error
		if c.store.Leading() {
			err = c.apply(desired)
		} else if id, _ := c.store.Leader(); id != "" {
			var ans membersAnswer
			if err = c.client.Call(ctx, id, membersPath, membersRequest{Members: desired}, &ans); err != nil {
				err = fmt.Errorf("%w: forward to %s: %v", raftstore.ErrNotLeader, id, err)
			} else if ans.Code == "members" {
				err = fmt.Errorf("%w: %s", ErrMembers, ans.Message)
			} else {
				err = raftstore.ErrorFrom(ans.Code, ans.Message)
			}
		} else {
			err = fmt.Errorf("%w: no leader known", raftstore.ErrNotLeader)
		}
		if !errors.Is(err, raftstore.ErrNotLeader) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("membership change: %w (last: %v)", ctx.Err(), err)
		case <-time.After(50 * time.Millisecond): // the leader changes hands
		}
	}
}

// serve is the leader's end of a forwarded change.
func (c *memberChanger) serve(_ context.Context, _ string, body []byte) (any, error) {
	var req membersRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, &clusternet.StatusError{Status: http.StatusBadRequest, Err: fmt.Errorf("members: undecodable request: %v", err)}
	}
	var err error
	if !c.store.Leading() {
		err = fmt.Errorf("%w: %s does not lead", raftstore.ErrNotLeader, c.self)
	} else {
		err = c.apply(req.Members)
	}
	switch {
	case err == nil:
		return membersAnswer{}, nil
	case errors.Is(err, ErrMembers):
		return membersAnswer{Code: "members", Message: strings.TrimPrefix(err.Error(), ErrMembers.Error()+": ")}, nil
	}
	return membersAnswer{Code: raftstore.ErrorCode(err), Message: err.Error()}, nil
}

// planMembers checks a change of the Raft configuration cur to the
// member list desired and says what to do: the members to add (as
// non-voters) and to remove. serving says whether a member is serving
// now (UP, as this leader sees it). Pure.
func planMembers(cur []raftstore.Server, desired []string, serving func(string) bool) (add, remove []string, err error) {
	want := map[string]bool{}
	for _, m := range desired {
		want[m] = true
	}
	have := map[string]bool{}
	voters, kept, keptServing := 0, 0, 0
	for _, s := range cur {
		have[s.ID] = true
		if !want[s.ID] {
			remove = append(remove, s.ID)
		}
		if !s.Voter {
			continue
		}
		voters++
		if want[s.ID] {
			kept++
			if serving(s.ID) {
				keptServing++
			}
		}
	}
	for _, m := range desired {
		if !have[m] {
			add = append(add, m)
		}
	}
	switch {
	case kept == 0:
		return nil, nil, fmt.Errorf("%w: the new list [%s] keeps none of the %d voters", ErrMembers, strings.Join(desired, ","), voters)
	case kept < voters/2+1:
		return nil, nil, fmt.Errorf("%w: the new list [%s] keeps %d of the %d voters, fewer than their quorum %d: remove at most %d member(s) at a time",
			ErrMembers, strings.Join(desired, ","), kept, voters, voters/2+1, (voters-1)/2)
	case keptServing < kept/2+1:
		return nil, nil, fmt.Errorf("%w: after the change %d of its %d voters would be serving, fewer than its quorum %d: bring members back up first",
			ErrMembers, keptServing, kept, kept/2+1)
	}
	return add, remove, nil
}

// apply carries a change out on the leader: add the new members as
// non-voters, remove the others (this leader last: it hands leadership
// over and answers ErrNotLeader, so the caller retries with the next
// leader, which removes it).
func (c *memberChanger) apply(desired []string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := membership.CheckMembers(desired[0], desired); err != nil {
		return fmt.Errorf("%w: %w", ErrMembers, err)
	}
	cur, err := c.store.Configuration()
	if err != nil {
		return err
	}
	add, remove, err := planMembers(cur, desired, func(m string) bool {
		return m == c.self || c.mem.State(m) == membership.Up
	})
	if err != nil {
		return err
	}
	for _, m := range add {
		addr, err := raftPortOf(m)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrMembers, err)
		}
		if err := c.store.AddNonvoter(m, addr); err != nil {
			return err
		}
		c.log.Info("member added as a non-voter; promoted once caught up", "member", m)
	}
	leaveSelf := false
	for _, m := range remove {
		if m == c.self {
			leaveSelf = true
			continue
		}
		if err := c.store.RemoveServer(m); err != nil {
			return err
		}
		c.log.Info("member removed from the Raft configuration", "member", m)
	}
	if leaveSelf {
		c.log.Info("this member, the leader, is being removed: handing leadership over first")
		if err := c.store.TransferLeadership(); err != nil {
			return err
		}
		return fmt.Errorf("%w: %s handed leadership over to be removed", raftstore.ErrNotLeader, c.self)
	}
	return nil
}

// promote makes every non-voter that reports itself caught up and
// serving a voter (leader only; called from the follower loop).
func (c *memberChanger) promote() {
	if !c.store.Leading() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	cur, err := c.store.Configuration()
	if err != nil {
		return
	}
	for _, s := range cur {
		if s.Voter || !c.mem.PeerReady(s.ID) {
			continue
		}
		if err := c.store.AddVoter(s.ID, s.Addr); err != nil {
			c.log.Warn("promotion to voter", "member", s.ID, "err", err)
			continue
		}
		c.log.Info("member caught up: promoted to voter", "member", s.ID)
	}
}

// membersFollower makes the membership and Distro follow the Raft
// configuration (polled: hashicorp/raft has no observation of every
// configuration change) and runs the leader's promotions.
type membersFollower struct {
	ch      *memberChanger
	dist    *distro.Runner
	every   time.Duration
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
	removed bool // logged that this member left the configuration
}

func (f *membersFollower) Start() error {
	go func() {
		defer close(f.done)
		t := time.NewTicker(f.every)
		defer t.Stop()
		for {
			select {
			case <-f.stop:
				return
			case <-t.C:
				f.step()
			}
		}
	}()
	return nil
}

func (f *membersFollower) step() {
	c := f.ch
	cur, err := c.store.Configuration()
	if err != nil || len(cur) == 0 {
		return
	}
	ids := make([]string, 0, len(cur))
	for _, s := range cur {
		ids = append(ids, s.ID)
	}
	if !slices.Contains(ids, c.self) {
		if !f.removed {
			f.removed = true
			c.log.Warn("this member is no longer in the Raft configuration: stop it (its list is left as it was)",
				"configuration", strings.Join(membership.Sorted(ids), ","))
		}
		return
	}
	f.removed = false
	if !membership.SameList(ids, c.mem.Members()) {
		if err := c.mem.SetMembers(ids); err != nil {
			c.log.Error("member list from the Raft configuration", "err", err)
		}
	}
	c.promote()
}

func (f *membersFollower) Stop(ctx context.Context) error {
	f.once.Do(func() { close(f.stop) })
	select {
	case <-f.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ChangeMembers makes members the cluster's member list at run time (a
// re-read cluster.conf): carried out by the Raft leader, see above. It
// must list this node; bounded by ctx.
func (s *Server) ChangeMembers(ctx context.Context, members []string) error {
	if s.changer == nil {
		return fmt.Errorf("%w: this node is not a cluster member (start it with -members or -members-file)", ErrMembers)
	}
	if err := membership.CheckMembers(s.changer.self, members); err != nil {
		return fmt.Errorf("%w: %w", ErrMembers, err)
	}
	return s.changer.change(ctx, members)
}

// changeHandler serves Nacos' POST /nacos/v1/core/cluster/server/leave
// (a JSON array of member addresses to remove) and Ferry's
// .../server/join (to add), answering Nacos' RestResult.
func (c *memberChanger) changeHandler(join bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		var list []string
		if err == nil {
			err = json.Unmarshal(body, &list)
		}
		if err != nil || len(list) == 0 {
			writeRest(w, http.StatusBadRequest, "caused: the body must be a JSON array of member addresses [\"ip:port\",...]")
			return
		}
		desired := c.mem.Members()
		for _, m := range list {
			m = strings.TrimSpace(m)
			if _, _, err := membership.SplitAddr(m); err != nil {
				writeRest(w, http.StatusBadRequest, "caused: "+err.Error())
				return
			}
			i := slices.Index(desired, m)
			switch {
			case join && i < 0:
				desired = append(desired, m)
			case !join && i >= 0:
				desired = slices.Delete(desired, i, i+1)
			}
		}
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		if err := c.change(ctx, desired); err != nil {
			st := http.StatusInternalServerError
			if errors.Is(err, ErrMembers) {
				st = http.StatusBadRequest
			}
			writeRest(w, st, "caused: "+err.Error())
			return
		}
		writeRest(w, http.StatusOK, "ok")
	})
}

func writeRest(w http.ResponseWriter, status int, msg string) {
	b, _ := json.Marshal(map[string]any{"code": status, "message": msg, "data": msg})
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
