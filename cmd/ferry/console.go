package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferrysync/ferry/internal/diag"
	"github.com/ferrysync/ferry/syncer"
	"github.com/ferrysync/ferry/syncer/worker"
	"github.com/ferrysync/ferry/web"
)

// consoleWorker offers a worker to the console (web.Worker): the worker
// never imports web.
type consoleWorker struct{ w *worker.Worker }

func (c consoleWorker) Status() any                   { return c.w.Status() }
func (c consoleWorker) Confirm(id int64) int          { return c.w.Confirm(id) }
func (c consoleWorker) Gatherer() prometheus.Gatherer { return c.w.Gatherer() }

// ServiceDiff is the worker's diff in the console's terms (web.ServiceDiffer).
func (c consoleWorker) ServiceDiff(ctx context.Context, taskID int64, service string) (*web.ServiceDiff, error) {
	d, err := c.w.ServiceDiff(ctx, taskID, service)
	if errors.Is(err, worker.ErrNotRunning) {
		return nil, fmt.Errorf("%w: %v", web.ErrTaskNotHere, err)
	}
	if err != nil {
		return nil, err
	}
	out := &web.ServiceDiff{TaskID: d.TaskID, ZKService: d.ZKService, Names: make([]web.NameDiff, 0, len(d.Names))}
	for _, n := range d.Names {
		out.Names = append(out.Names, web.NameDiff{Service: n.Service, Missing: diffEntries(n.Missing), Extra: diffEntries(n.Extra),
			Differs: diffEntries(n.Differs), Native: diffEntries(n.Native), Same: n.Same})
	}
	return out, nil
}

func diffEntries(es []worker.DiffEntry) []web.DiffEntry {
	out := make([]web.DiffEntry, 0, len(es))
	for _, e := range es {
		out = append(out, web.DiffEntry{Addr: e.Addr, Keys: e.Keys, Skip: string(e.Skip), Ours: e.Ours,
			ZK: diffInstance(e.ZK), Registry: diffInstance(e.Registry)})
	}
	return out
}

func diffInstance(in *syncer.Instance) *web.DiffInstance {
	if in == nil {
		return nil
	}
	return &web.DiffInstance{Weight: in.Weight, Enabled: in.Enabled, Healthy: in.Healthy, Metadata: in.Metadata}
}

// workerWithConsole is a running sync worker and the console it serves on
// its -http address.
type workerWithConsole struct {
	w       *worker.Worker
	console *web.Server // nil when -http is empty
	// adminPassword is the generated password of the admin user this
	// start created on an empty users table ("" when users existed).
	adminPassword string
}

// consoleOptions are the console's flags.
type consoleOptions struct {
	tlsCert, tlsKey string
}

// startWorkerWithConsole listens on cfg.HTTP first (so the worker records
// the real address, port 0 included), starts the worker, creates the
// first admin on an empty users table (adminPassword: the caller prints it
// once), then serves the console on the worker's store.
func startWorkerWithConsole(ctx context.Context, cfg worker.Config, opts consoleOptions, logger *slog.Logger) (*workerWithConsole, error) {
	var lis net.Listener
	if cfg.HTTP != "" {
		var err error
		if lis, err = net.Listen("tcp", cfg.HTTP); err != nil {
			return nil, fmt.Errorf("console: listen %s: %w", cfg.HTTP, err)
		}
		cfg.HTTP = lis.Addr().String()
	}
	w, err := worker.Start(ctx, cfg, logger)
	if err != nil {
		if lis != nil {
			lis.Close()
		}
		return nil, err
	}
	r := &workerWithConsole{w: w}
	if pw, err := w.Store().EnsureAdmin(ctx); err != nil {
		logger.Warn("console: could not create the first admin user", "err", err)
	} else {
		r.adminPassword = pw
	}
	if lis == nil {
		return r, nil
	}
	wcfg := web.DefaultConfig()
	wcfg.Listener = lis
	wcfg.TLSCertFile, wcfg.TLSKeyFile = opts.tlsCert, opts.tlsKey
	wcfg.Service.LiveWithin = cfg.Lessor.TTL
	wcfg.Logger = logger
	wcfg.Mount = func(m *http.ServeMux) { diag.Mount(m, nil) } // /debug/pprof/: loopback callers only
	if r.console, err = web.New(w.Store(), consoleWorker{w}, wcfg); err == nil {
		err = r.console.Start()
	}
	if err != nil {
		lis.Close()
		w.Stop(context.Background())
		return nil, err
	}
	return r, nil
}

// URL is the console's base URL ("" without one).
func (r *workerWithConsole) URL() string {
	if r.console == nil {
		return ""
	}
	return r.console.URL()
}

// Stop stops the console first (no request reaches a stopping worker),
// then the worker; bounded by ctx.
func (r *workerWithConsole) Stop(ctx context.Context) {
	if r.console != nil {
		if err := r.console.Stop(ctx); err != nil {
			slog.Default().Debug("console stop", "err", err)
		}
	}
	r.w.Stop(ctx)
}
