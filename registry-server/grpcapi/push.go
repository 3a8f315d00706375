package grpcapi

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/ferrysync/ferry/registry-server/naming"
	"github.com/ferrysync/ferry/wire"
)

// pusher merges a service's changes for PushDelay, then pushes its current
// state to every subscriber (each filtered for its clusters) and waits for
// the acks; a failed push to a subscriber is retried after PushRetryDelay
// while that subscription lasts (Nacos PushDelayTask / PushExecuteTask).
type pusher struct {
	s *Server

	mu      sync.Mutex // guards tasks and closed
	tasks   map[pushKey]*pushTask
	closed  bool
	running sync.WaitGroup
}

// pushKey is a delayed task: a service, for all its subscribers (client "")
// or for one.
type pushKey struct {
	svc    naming.ServiceKey
	client string
}

type pushTask struct {
	since time.Time // first change merged into this task
	timer *time.Timer
}

func newPusher(s *Server) *pusher { return &pusher{s: s, tasks: map[pushKey]*pushTask{}} }

// serviceChanged is the registry's change listener: it must not block.
func (p *pusher) serviceChanged(k naming.ServiceKey) {
	p.schedule(pushKey{svc: k}, p.s.cfg.PushDelay, time.Now())
}

// schedule adds a delayed task unless one for the same key is pending
// (merging the change into it).
func (p *pusher) schedule(k pushKey, delay time.Duration, since time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	if _, ok := p.tasks[k]; ok {
		return
	}
	t := &pushTask{since: since}
	p.running.Add(1)
	t.timer = time.AfterFunc(delay, func() {
		defer p.running.Done()
		p.mu.Lock()
		if p.closed || p.tasks[k] != t {
			p.mu.Unlock()
			return
		}
		delete(p.tasks, k)
		p.mu.Unlock()
		p.execute(k, t.since)
	})
	p.tasks[k] = t
}

func (p *pusher) stop() {
	p.mu.Lock()
	p.closed = true
	for k, t := range p.tasks {
		if t.timer.Stop() {
			p.running.Done()
		}
		delete(p.tasks, k)
	}
	p.mu.Unlock()
	p.running.Wait()
}

func splitClusters(s string) []string {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	parts := strings.Split(s, ",")
	out := parts[:0]
	for _, c := range parts {
		if c = strings.TrimSpace(c); c != "" {
			out = append(out, c)
		}
	}
	return out
}

// execute pushes k's state to its subscriber(s), in parallel, each waiting
// for its ack.
func (p *pusher) execute(k pushKey, since time.Time) {
	subs := p.s.reg.Subscribers(k.svc)
	for _, sub := range subs {
		if k.client != "" && sub.ClientID != k.client {
			continue
		}
		c := p.s.conn(sub.ClientID)
		if c == nil || !c.Registered() {
			continue
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return
		}
		p.running.Add(1)
		p.mu.Unlock()
		go func(sub naming.Subscription, c *Conn) {
			defer p.running.Done()
			p.pushOne(k.svc, sub, c, since)
		}(sub, c)
	}
}

func (p *pusher) pushOne(svc naming.ServiceKey, sub naming.Subscription, c *Conn, since time.Time) {
	info, err := p.s.reg.Select(svc, splitClusters(sub.Clusters), false)
	if err != nil {
		return
	}
	wi := toWireServiceInfo(info, p.s.reg.Config())
	wi.Clusters = sub.Clusters
	req := &wire.NotifySubscriberRequest{ServiceInfo: wi}
	req.Namespace, req.GroupName, req.ServiceName = svc.Namespace, svc.Group, svc.Name
	_, err = p.s.call(context.Background(), c, req, p.s.cfg.PushTimeout)
	switch {
	case err == nil:
		p.s.met.pushes.WithLabelValues("ok").Inc()
		p.s.met.pushLatency.Observe(time.Since(since).Seconds())
		return
	case errors.Is(err, ErrStopped), errors.Is(err, ErrNotConnected):
		return
	case errors.Is(err, ErrTimeout):
		p.s.met.pushes.WithLabelValues("timeout").Inc()
	case errors.Is(err, ErrBusy):
		p.s.met.pushes.WithLabelValues("busy").Inc()
	default:
		p.s.met.pushes.WithLabelValues("fail").Inc()
	}
	if c.Registered() {
		p.s.log.Debug("push failed, retrying", "conn", c.ID, "service", svc.Grouped(), "err", err)
		p.schedule(pushKey{svc: svc, client: sub.ClientID}, p.s.cfg.PushRetryDelay, since)
	}
}
