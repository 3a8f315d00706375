package grpcapi

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/ferrysync/ferry/registry-server/naming"
	"github.com/ferrysync/ferry/wire"
	"google.golang.org/protobuf/types/known/anypb"
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
// for its ack. The ServiceInfo is selected and encoded once per distinct
// clusters filter; only the requestId differs between subscribers' bodies.
func (p *pusher) execute(k pushKey, since time.Time) {
	if k.client == "" {
		for _, f := range p.s.onPush {
			f(k.svc, since)
		}
	}
	bodies := map[string]*pushBody{}
	for _, sub := range p.s.reg.Subscribers(k.svc) {
		if k.client != "" && sub.ClientID != k.client {
			continue
		}
		c := p.s.conn(sub.ClientID)
		if c == nil || !c.Registered() {
			continue
		}
		body := bodies[sub.Clusters]
		if body == nil {
			var err error
			if body, err = p.encode(k.svc, sub.Clusters); err != nil {
				p.s.log.Error("push encode", "service", k.svc.Grouped(), "err", err)
				return
			}
			bodies[sub.Clusters] = body
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
			p.pushOne(k.svc, sub, c, body, since)
		}(sub, c)
	}
}

// pushBody is an encoded request around its requestId: the payload for
// one connection is head + id + tail.
type pushBody struct {
	typ        string
	head, tail []byte
}

func (b *pushBody) payload(id string) *wire.Payload {
	v := make([]byte, 0, len(b.head)+len(id)+len(b.tail))
	v = append(append(append(v, b.head...), id...), b.tail...)
	return &wire.Payload{Metadata: &wire.Metadata{Type: b.typ}, Body: &anypb.Any{Value: v}}
}

func (p *pusher) encode(svc naming.ServiceKey, clusters string) (*pushBody, error) {
	info, err := p.s.reg.Select(svc, splitClusters(clusters), false)
	if err != nil {
		return nil, err
	}
	req := &wire.NotifySubscriberRequest{}
	if req.Encoded = p.s.encodedInfo(info, clusters, false); req.Encoded != nil {
		req.ServiceInfo.LastRefTime = info.LastRefTime
	} else {
		req.ServiceInfo = toWireServiceInfo(info, p.s.reg.Config())
		req.ServiceInfo.Clusters = clusters
	}
	req.Namespace, req.GroupName, req.ServiceName = svc.Namespace, svc.Group, svc.Name
	return p.s.encodeTemplate(req)
}

// encodeTemplate encodes req (mutating it) with a mark for its requestId
// and splits the body around it. Requests with Metadata headers are not
// supported (pushes carry none).
func (s *Server) encodeTemplate(req wire.Request) (*pushBody, error) {
	req.Header().RequestID = pushIDMark
	pl, err := s.codec.Encode(req)
	if err != nil {
		return nil, err
	}
	if len(pl.GetMetadata().GetHeaders()) > 0 {
		return nil, errors.New("grpcapi: a push template cannot carry headers")
	}
	v := pl.GetBody().GetValue()
	// The mark is looked for as the JSON field: a string value cannot
	// contain it (its quotes would be escaped).
	field := []byte(`"requestId":"` + pushIDMark + `"`)
	i := bytes.Index(v, field)
	if i < 0 {
		return nil, errors.New("grpcapi: request id mark not found")
	}
	i += len(`"requestId":"`)
	return &pushBody{typ: pl.GetMetadata().GetType(), head: v[:i], tail: v[i+len(pushIDMark):]}, nil
}

// pushIDMark stands for the requestId in an encoded push body.
const pushIDMark = "ferry-push-id-mark"

func (p *pusher) pushOne(svc naming.ServiceKey, sub naming.Subscription, c *Conn, body *pushBody, since time.Time) {
	id := p.s.newRequestID()
	_, err := p.s.callPayload(context.Background(), c, id, body.payload(id), p.s.cfg.PushTimeout)
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
