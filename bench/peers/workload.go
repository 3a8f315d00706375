package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferrysync/ferry/internal/procstat"
)

// server is one system under test, running in a process of its own.
type server interface {
	// Pid is the server process, whose CPU and memory are measured.
	Pid() int
	// Dial opens one client connection (a session, a client) as an
	// application process does, and returns once it is usable.
	Dial(ctx context.Context) (conn, error)
	// Prepare creates what a Dubbo estate has before its providers start
	// (ZooKeeper's persistent parents); untimed.
	Prepare(ctx context.Context, services int) error
	// Stop ends the server; idempotent.
	Stop()
}

// conn is one client connection. Register and Query are called from one
// goroutine at a time; Close once.
type conn interface {
	// Register adds one ephemeral instance, kept alive by the connection.
	Register(ctx context.Context, in instance) error
	// Query returns how many instances the service has.
	Query(ctx context.Context, svc int) (int, error)
	Close()
}

// instance is one provider instance: service svc on the application
// process app (its IP).
type instance struct {
	svc, app int
}

func serviceName(svc int) string {
	return "com.example.Service" + strconv.Itoa(svc)
}

func (in instance) ip() string {
	a := in.app + 1
	return "10." + strconv.Itoa(a>>16&255) + "." + strconv.Itoa(a>>8&255) + "." + strconv.Itoa(a&255)
}

const providerPort = 20880

func (in instance) metadata() map[string]string {
	return map[string]string{"side": "provider", "dubbo": "2.0.2", "release": "2.7.23",
		"application": "app-" + strconv.Itoa(in.app), "interface": serviceName(in.svc), "version": "1.0.0",
		"methods": "get,put,list", "timestamp": "1700000000000"}
}

// dubboURL is the provider URL, as Dubbo writes it under
// /dubbo/SERVICE/providers in ZooKeeper (URL-encoded as one path element).
func (in instance) dubboURL() string {
	return url.QueryEscape("dubbo://" + in.ip() + ":" + strconv.Itoa(providerPort) + "/" + serviceName(in.svc) +
		"?application=app-" + strconv.Itoa(in.app) + "&dubbo=2.0.2&release=2.7.23&side=provider&version=1.0.0&methods=get,put,list&timestamp=1700000000000")
}

// shape is the workload.
type shape struct {
	conns    int           // application connections
	services int           // services
	replicas int           // instances per service, each on another connection
	readers  int           // query connections, one request in flight each
	hold     time.Duration // the keepalive-only window
	queries  time.Duration // the query window
}

func (s shape) validate() error {
	switch {
	case s.conns <= 0 || s.services <= 0 || s.replicas <= 0 || s.readers <= 0:
		return errors.New("peers: -conns, -services, -replicas and -readers must be > 0")
	case s.replicas > s.conns:
		return fmt.Errorf("peers: -replicas %d > connections %d: a connection holds one instance per service", s.replicas, s.conns)
	case s.hold <= 0 || s.queries <= 0:
		return errors.New("peers: -hold and -duration must be > 0")
	}
	return nil
}

// result is one system's figures at one shape.
type result struct {
	system    string
	conns     int
	instances int
	readers   int

	registerPerSec float64
	queries        int64
	queriesPerSec  float64
	cpuPer1kQuery  time.Duration // server CPU per 1,000 queries
	// cpuPer1kQueryNet is cpuPer1kQuery less the holding CPU of the
	// query window (keepalivePerM over its length).
	cpuPer1kQueryNet time.Duration
	keepalivePerM    time.Duration // server CPU per minute while only holding
	rssIdle          int64         // after start
	rssConns         int64         // after the connections, before registering
	rssHolding       int64         // after the hold window
	rssPeak          int64         // VmHWM at the end
	perConn          float64       // (rssConns-rssIdle)/conns, bytes
}

// run drives one server through the workload.
func run(ctx context.Context, log *slog.Logger, name string, srv server, s shape) (result, error) {
	r := result{system: name, conns: s.conns, instances: s.services * s.replicas, readers: s.readers}
	pid := srv.Pid()
	var err error
	if r.rssIdle, _, err = procstat.Mem(pid); err != nil {
		return r, err
	}
	if err := srv.Prepare(ctx, s.services); err != nil {
		return r, fmt.Errorf("%s: prepare: %w", name, err)
	}

	// 1. The application connections.
	apps, err := dialAll(ctx, srv, s.conns)
	if err != nil {
		return r, fmt.Errorf("%s: connections: %w", name, err)
	}
	defer closeAll(apps)
	if r.rssConns, _, err = procstat.Mem(pid); err != nil {
		return r, err
	}
	r.perConn = float64(r.rssConns-r.rssIdle) / float64(s.conns)
	log.Info("connected", "system", name, "conns", s.conns)

	// 2. Registration: every connection registers its instances one after
	// another (instance k: service k/replicas on connection k%conns), all
	// connections at once.
	start := time.Now()
	if err := forEach(ctx, len(apps), len(apps), func(c int) error {
		for k := c; k < r.instances; k += s.conns {
			if err := apps[c].Register(ctx, instance{svc: k / s.replicas, app: c}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return r, fmt.Errorf("%s: register: %w", name, err)
	}
	r.registerPerSec = float64(r.instances) / time.Since(start).Seconds()
	log.Info("registered", "system", name, "instances", r.instances, "conns", s.conns)

	// 3. Holding: only keepalives for s.hold.
	cpu0, err := procstat.CPU(pid)
	if err != nil {
		return r, err
	}
	if err := wait(ctx, s.hold); err != nil {
		return r, err
	}
	cpu1, err := procstat.CPU(pid)
	if err != nil {
		return r, err
	}
	r.keepalivePerM = time.Duration(float64(cpu1-cpu0) * float64(time.Minute) / float64(s.hold))
	if r.rssHolding, _, err = procstat.Mem(pid); err != nil {
		return r, err
	}

	// 4. Queries from separate connections, one request in flight each.
	readers, err := dialAll(ctx, srv, s.readers)
	if err != nil {
		return r, fmt.Errorf("%s: readers: %w", name, err)
	}
	defer closeAll(readers)
	log.Info("querying", "system", name, "readers", s.readers, "for", s.queries)
	var count atomic.Int64
	var stopped atomic.Bool
	cpu0, err = procstat.CPU(pid)
	if err != nil {
		return r, err
	}
	start = time.Now()
	timer := time.AfterFunc(s.queries, func() { stopped.Store(true) })
	defer timer.Stop()
	if err := forEach(ctx, len(readers), len(readers), func(i int) error {
		svc := (i * 7919) % s.services
		for !stopped.Load() {
			n, err := readers[i].Query(ctx, svc)
			if err != nil {
				return err
			}
			if n != s.replicas {
				return fmt.Errorf("service %d has %d instances, want %d", svc, n, s.replicas)
			}
			count.Add(1)
			svc = (svc + 13) % s.services
		}
		return nil
	}); err != nil {
		return r, fmt.Errorf("%s: queries: %w", name, err)
	}
	el := time.Since(start)
	cpu1, err = procstat.CPU(pid)
	if err != nil {
		return r, err
	}
	r.queries = count.Load()
	r.queriesPerSec = float64(r.queries) / el.Seconds()
	if r.queries > 0 {
		r.cpuPer1kQuery = (cpu1 - cpu0) * 1000 / time.Duration(r.queries)
		// Net of what holding costs anyway over the same time: at a few
		// hundred queries/s the keepalives are a large part of the gross.
		bg := time.Duration(float64(r.keepalivePerM) * el.Seconds() / 60)
		r.cpuPer1kQueryNet = max(0, cpu1-cpu0-bg) * 1000 / time.Duration(r.queries)
	}
	if _, r.rssPeak, err = procstat.Mem(pid); err != nil {
		return r, err
	}
	return r, nil
}

// dialAll opens n connections, a few at a time; on an error it closes
// those opened.
func dialAll(ctx context.Context, srv server, n int) ([]conn, error) {
	out := make([]conn, n)
	err := forEach(ctx, n, 32, func(i int) error {
		c, err := srv.Dial(ctx)
		if err != nil {
			return err
		}
		out[i] = c
		return nil
	})
	if err != nil {
		closeAll(out)
		return nil, err
	}
	return out, nil
}

func closeAll(cs []conn) {
	var wg sync.WaitGroup
	for _, c := range cs {
		if c != nil {
			wg.Add(1)
			go func() { defer wg.Done(); c.Close() }()
		}
	}
	wg.Wait()
}

// forEach calls job(0..n-1) from workers goroutines and returns the first
// error; after an error the remaining jobs are not started.
func forEach(ctx context.Context, n, workers int, job func(i int) error) error {
	var next atomic.Int64
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	for w := 0; w < min(n, workers); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := job(i); err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("#%d: %w", i, err)
					}
					mu.Unlock()
					next.Store(int64(n))
					return
				}
			}
		}()
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// wait is a measurement window: it returns after d, or ctx's error.
func wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
