package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Commands (migration 00003) are cluster-wide actions: the console inserts
// one row, every live worker applies it once and writes an ack row
// (command_id, worker_id). A command lives until its expiry (database
// clock); a worker that starts while it is unexpired applies it too, one
// that starts later does not. Workers poll PendingCommands; the console
// counts AckedCommand rows against the live workers.

// CommandKind names what a command does.
type CommandKind string

// Command kinds.
const (
	// CommandConfirmRemovals releases held mass removals: of task TaskID,
	// or of every task when TaskID is 0 (Worker.Confirm on every worker).
	CommandConfirmRemovals CommandKind = "confirm-removals"
	// CommandResyncService makes the owner of Service in task TaskID run a
	// full reconcile of it (both fields required).
	CommandResyncService CommandKind = "resync-service"
)

// DefaultCommandTTL is how long a command waits for workers to apply it.
const DefaultCommandTTL = 10 * time.Minute

// Command is one cluster-wide action.
type Command struct {
	ID        int64
	Kind      CommandKind
	TaskID    int64  // 0: all tasks (confirm-removals only)
	Service   string // resync-service only
	CreatedBy string
	CreatedAt time.Time // database clock
	ExpiresAt time.Time // database clock
}

// CommandAck is one worker's record of having applied a command.
type CommandAck struct {
	CommandID int64
	WorkerID  string
	AppliedAt time.Time // database clock
	// Result is a short human summary (e.g. "released 2 holds"); Error is
	// set when the worker could not apply the command (it is not retried).
	Result string
	Error  string
}

type commandRow struct {
	ID          int64  `gorm:"column:id;primaryKey"`
	Kind        string `gorm:"column:kind"`
	TaskID      int64  `gorm:"column:task_id"`
	Service     string `gorm:"column:service"`
	CreatedBy   string `gorm:"column:created_by"`
	CreatedAtMS int64  `gorm:"column:created_at_ms"`
	ExpiresAtMS int64  `gorm:"column:expires_at_ms"`
}

func (commandRow) TableName() string { return "commands" }

func (r commandRow) command() Command {
	return Command{ID: r.ID, Kind: CommandKind(r.Kind), TaskID: r.TaskID, Service: r.Service, CreatedBy: r.CreatedBy,
		CreatedAt: time.UnixMilli(r.CreatedAtMS).UTC(), ExpiresAt: time.UnixMilli(r.ExpiresAtMS).UTC()}
}

type commandAckRow struct {
	CommandID   int64  `gorm:"column:command_id;primaryKey;autoIncrement:false"`
	WorkerID    string `gorm:"column:worker_id;primaryKey"`
	AppliedAtMS int64  `gorm:"column:applied_at_ms"`
	Result      string `gorm:"column:result"`
	Error       string `gorm:"column:error"`
}

func (commandAckRow) TableName() string { return "command_acks" }

func (c *Command) validate() error {
	switch c.Kind {
	case CommandConfirmRemovals:
		if c.Service != "" {
			return fmt.Errorf("%w command service %q: confirm-removals takes none", ErrInvalid, c.Service)
		}
	case CommandResyncService:
		if c.TaskID <= 0 {
			return fmt.Errorf("%w command task id %d: resync-service needs one", ErrInvalid, c.TaskID)
		}
		if strings.TrimSpace(c.Service) == "" {
			return fmt.Errorf("%w command service: resync-service needs one", ErrInvalid)
		}
	default:
		return fmt.Errorf("%w command kind %q: want confirm-removals or resync-service", ErrInvalid, c.Kind)
	}
	switch {
	case c.TaskID < 0:
		return fmt.Errorf("%w command task id %d", ErrInvalid, c.TaskID)
	case len(c.Service) > 512:
		return fmt.Errorf("%w command service: longer than 512", ErrInvalid)
	case len(c.CreatedBy) > 128:
		return fmt.Errorf("%w command created by: longer than 128", ErrInvalid)
	}
	return nil
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// IssueCommand inserts c, expiring ttl after now (database clock; ttl ≤ 0
// means DefaultCommandTTL), and sets c.ID, CreatedAt and ExpiresAt.
func (s *Store) IssueCommand(ctx context.Context, c *Command, ttl time.Duration) error {
	if err := c.validate(); err != nil {
		return err
	}
	if ttl <= 0 {
		ttl = DefaultCommandTTL
	}
	now, err := s.nowMillis(ctx)
	if err != nil {
		return err
	}
	row := commandRow{Kind: string(c.Kind), TaskID: c.TaskID, Service: c.Service, CreatedBy: c.CreatedBy,
		CreatedAtMS: now, ExpiresAtMS: now + ttl.Milliseconds()}
	if err := s.q(ctx).Create(&row).Error; err != nil {
		return s.wrap(err, "issue command "+string(c.Kind))
	}
	*c = row.command()
	return nil
}

// GetCommand returns the command with id, or ErrNotFound.
func (s *Store) GetCommand(ctx context.Context, id int64) (*Command, error) {
	var r commandRow
	if err := s.q(ctx).First(&r, id).Error; err != nil {
		return nil, s.wrap(err, fmt.Sprintf("command %d", id))
	}
	c := r.command()
	return &c, nil
}

// ListCommands returns the newest limit commands (expired ones too), newest
// first; limit ≤ 0 means 100, capped at 1,000.
func (s *Store) ListCommands(ctx context.Context, limit int) ([]Command, error) {
	if limit <= 0 {
		limit = 100
	}
	var rows []commandRow
	if err := s.q(ctx).Order("id DESC").Limit(min(limit, 1000)).Find(&rows).Error; err != nil {
		return nil, s.wrap(err, "list commands")
	}
	out := make([]Command, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.command())
	}
	return out, nil
}

// PendingCommands returns the unexpired commands with an id above afterID
// that worker has not acked, oldest first, at most 100. A worker passes
// the highest id it has handled in this process (0 at start), so the query
// reads only new rows once it has caught up.
func (s *Store) PendingCommands(ctx context.Context, worker string, afterID int64) ([]Command, error) {
	var rows []commandRow
	res := s.q(ctx).Where("id > ? AND expires_at_ms > "+s.now(), afterID).
		Where("NOT EXISTS (SELECT 1 FROM command_acks a WHERE a.command_id = commands.id AND a.worker_id = ?)", worker).
		Order("id").Limit(100).Find(&rows)
	if err := s.checked(ctx, res, "pending commands of "+worker); err != nil {
		return nil, err
	}
	out := make([]Command, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.command())
	}
	return out, nil
}

// AckCommand records that worker applied command id (now, database clock),
// with a short result or the error that stopped it. Acking twice keeps the
// first ack. An unknown command id is ErrNotFound.
func (s *Store) AckCommand(ctx context.Context, id int64, worker, result, errMsg string) error {
	if worker == "" || len(worker) > 128 {
		return fmt.Errorf("%w command ack worker %q", ErrInvalid, worker)
	}
	return s.InTx(ctx, func(tx *Store) error {
		if _, err := tx.GetCommand(ctx, id); err != nil {
			return err
		}
		err := tx.q(ctx).Table("command_acks").Clauses(clause.OnConflict{
			Columns: []clause.Column{{Name: "command_id"}, {Name: "worker_id"}},
			// Keep the first ack (a no-op update: DoNothing has no MySQL form).
			DoUpdates: clause.Assignments(map[string]any{"applied_at_ms": gorm.Expr("applied_at_ms")}),
		}).Create(map[string]any{
			"command_id": id, "worker_id": worker, "applied_at_ms": gorm.Expr(tx.now()),
			"result": clip(result, 1024), "error": clip(errMsg, 1024),
		}).Error
		return tx.wrap(err, fmt.Sprintf("ack command %d by %s", id, worker))
	})
}

// CommandAcks returns the acks of command id, by worker.
func (s *Store) CommandAcks(ctx context.Context, id int64) ([]CommandAck, error) {
	var rows []commandAckRow
	if err := s.q(ctx).Where("command_id = ?", id).Order("worker_id").Find(&rows).Error; err != nil {
		return nil, s.wrap(err, fmt.Sprintf("acks of command %d", id))
	}
	out := make([]CommandAck, 0, len(rows))
	for _, r := range rows {
		out = append(out, CommandAck{CommandID: r.CommandID, WorkerID: r.WorkerID,
			AppliedAt: time.UnixMilli(r.AppliedAtMS).UTC(), Result: r.Result, Error: r.Error})
	}
	return out, nil
}

// PruneCommands deletes commands expired for longer than expiredFor, and
// their acks; it returns how many commands went.
func (s *Store) PruneCommands(ctx context.Context, expiredFor time.Duration) (int64, error) {
	var n int64
	err := s.InTx(ctx, func(tx *Store) error {
		cut := tx.now() + " - ?"
		res := tx.q(ctx).Exec("DELETE FROM command_acks WHERE command_id IN (SELECT id FROM commands WHERE expires_at_ms < "+cut+")", expiredFor.Milliseconds())
		if err := tx.checked(ctx, res, "prune command acks"); err != nil {
			return err
		}
		res = tx.q(ctx).Exec("DELETE FROM commands WHERE expires_at_ms < "+cut, expiredFor.Milliseconds())
		n = res.RowsAffected
		return tx.checked(ctx, res, "prune commands")
	})
	return n, err
}
