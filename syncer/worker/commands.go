package worker

import (
	"context"
	"fmt"
	"time"

	"github.com/ferrysync/ferry/store"
)

// Cluster-wide commands (store/commands.go): the console inserts a row,
// every live worker applies it once and acks it with a short result. The
// commands loop polls PendingCommands every CommandPoll; a command whose
// ack could not be written is not applied again, only acked again at the
// next poll (an apply is cheap and idempotent anyway: a confirm opens the
// mass guard's window, a resync queues a full reconcile).

// commandFollower is the worker's side of the commands table. Owned by the
// commands loop goroutine (no lock).
type commandFollower struct {
	st     *store.Store
	worker string
	apply  func(store.Command) (result, errMsg string)
	// after is the highest command id applied and acked in this process,
	// so the poll reads only newer rows once caught up.
	after int64
	// unacked holds the results of applied commands whose ack failed.
	unacked map[int64][2]string
	logErr  func(error)
}

// poll applies and acks the pending commands once.
func (f *commandFollower) poll(ctx context.Context) {
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cmds, err := f.st.PendingCommands(qctx, f.worker, f.after)
	if err != nil {
		if ctx.Err() == nil {
			f.logErr(err)
		}
		return
	}
	for _, c := range cmds {
		res, ok := f.unacked[c.ID]
		if !ok {
			r, e := f.apply(c)
			res = [2]string{r, e}
		}
		if err := f.st.AckCommand(qctx, c.ID, f.worker, res[0], res[1]); err != nil {
			if f.unacked == nil {
				f.unacked = map[int64][2]string{}
			}
			f.unacked[c.ID] = res
			if ctx.Err() == nil {
				f.logErr(err)
			}
			return // in order: the later ones wait for this ack
		}
		delete(f.unacked, c.ID)
		f.after = max(f.after, c.ID)
	}
}

// applyCommand carries out one command on this worker and says what it did.
func (w *Worker) applyCommand(c store.Command) (result, errMsg string) {
	switch c.Kind {
	case store.CommandConfirmRemovals:
		// A confirmation is for the removals held when the operator gave
		// it; a worker started since held none of them, so a stale one
		// must not open its mass guard (it is still acked, once).
		if !w.startedAt.IsZero() && c.CreatedAt.Before(w.startedAt) {
			return "skipped: issued before this worker started", ""
		}
		n := w.Confirm(c.TaskID)
		w.log.Warn("held mass removal confirmed by command", "command", c.ID, "task", c.TaskID, "by", c.CreatedBy, "engines", n)
		if c.TaskID != 0 && n == 0 {
			return fmt.Sprintf("task %d not running on this worker", c.TaskID), ""
		}
		return fmt.Sprintf("confirmed on %d task(s)", n), ""
	case store.CommandResyncService:
		e := w.mgr.engine(c.TaskID)
		if e == nil {
			return fmt.Sprintf("not owner: task %d not running on this worker", c.TaskID), ""
		}
		zkSvc, owned := e.Resync(c.Service)
		if !owned {
			return "not owner", ""
		}
		w.log.Info("service resync by command", "command", c.ID, "task", c.TaskID, "service", zkSvc, "by", c.CreatedBy)
		return "full reconcile of " + zkSvc + " queued", ""
	default:
		return "", fmt.Sprintf("unknown command kind %q", c.Kind)
	}
}

// followCommands polls the commands table until ctx ends.
func (w *Worker) followCommands(ctx context.Context, every time.Duration) {
	f := &commandFollower{st: w.st, worker: w.cfg.WorkerID, apply: w.applyCommand,
		logErr: func(err error) { w.log.Debug("commands: store call failed (retried)", "err", err) }}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		f.poll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
