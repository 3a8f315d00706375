package worker

import (
	"context"
	"time"
)

// The settings generation (store/generation.go) moves with every change to
// clusters, tasks and apps. The worker reads it every SettingsPoll; when it
// moved, it reloads the app modes and converges its tasks at once (besides
// the slower AppPoll and TaskPoll reloads, which heal a missed read), and
// once both reloads succeeded it reports the generation read before them
// as applied: the store bumps the generation in the change's transaction,
// so settings read after generation g are at least as new as g. The lessor
// writes the applied generation into the worker row at each heartbeat.

// AppliedGeneration is the settings generation this worker has applied (0
// until the first reload succeeded).
func (w *Worker) AppliedGeneration() int64 { return w.applied.Load() }

// applySettings reads the generation and, when it differs from the one
// applied (or force), reloads app modes and tasks. It reports whether the
// worker is now at the generation it read.
func (w *Worker) applySettings(ctx context.Context, force bool) bool {
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	g, err := w.st.SettingsGeneration(qctx)
	cancel()
	if err != nil {
		return false
	}
	if !force && g == w.applied.Load() {
		return true
	}
	okApps := w.apps.refresh(ctx)
	okTasks := w.mgr.converge(ctx)
	if !okApps || !okTasks {
		return false
	}
	if g != w.applied.Load() {
		w.log.Debug("settings applied", "generation", g)
	}
	w.applied.Store(g)
	return true
}

// followSettings applies every new settings generation until ctx ends.
func (w *Worker) followSettings(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		w.applySettings(ctx, false)
	}
}
