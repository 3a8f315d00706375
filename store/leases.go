package store

import (
	"context"
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// DefaultShards is how many shards the service space is split into.
const DefaultShards = 256

// ShardOf is the shard of a service among DefaultShards (FNV-1a, stable
// across processes and versions).
func ShardOf(service string) int { return ShardOfN(service, DefaultShards) }

// ShardOfN is the shard of a service among n shards.
func ShardOfN(service string, n int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(service))
	return int(h.Sum32() % uint32(n))
}

// ---- workers ----

// RegisterWorker creates or replaces the worker's row, started and
// heartbeating now (database clock).
func (s *Store) RegisterWorker(ctx context.Context, id, address, version string) error {
	switch {
	case strings.TrimSpace(id) == "" || len(id) > 128:
		return fmt.Errorf("%w worker id %q", ErrInvalid, id)
	case len(address) > 255:
		return fmt.Errorf("%w worker address: longer than 255", ErrInvalid)
	case len(version) > 64:
		return fmt.Errorf("%w worker version: longer than 64", ErrInvalid)
	}
	now := gorm.Expr(s.now())
	err := s.q(ctx).Table("workers").Clauses(clause.OnConflict{
		Columns: []clause.Column{{Name: "id"}},
		DoUpdates: clause.Assignments(map[string]any{
			"address": address, "version": version, "started_at_ms": now, "heartbeat_at_ms": now, "applied_generation": 0,
		}),
	}).Create(map[string]any{
		"id": id, "address": address, "version": version, "started_at_ms": now, "heartbeat_at_ms": now, "applied_generation": 0,
	}).Error
	return s.wrap(err, "register worker "+id)
}

// HeartbeatWorker marks the worker alive now. A missing row (pruned, or
// never registered) is ErrNotFound: register again.
func (s *Store) HeartbeatWorker(ctx context.Context, id string) error {
	res := s.q(ctx).Exec("UPDATE workers SET heartbeat_at_ms = "+s.now()+" WHERE id = ?", id)
	if err := s.checked(ctx, res, "heartbeat worker "+id); err != nil {
		return err
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("%w: worker %s", ErrNotFound, id)
	}
	return nil
}

// DeleteWorker removes the worker's row (graceful shutdown).
func (s *Store) DeleteWorker(ctx context.Context, id string) error {
	return s.wrap(s.q(ctx).Exec("DELETE FROM workers WHERE id = ?", id).Error, "delete worker "+id)
}

// ListWorkers returns every worker row; Live marks those whose heartbeat is
// within liveWithin of the database's clock.
func (s *Store) ListWorkers(ctx context.Context, liveWithin time.Duration) ([]Worker, error) {
	var rows []struct {
		ID            string
		Address       string
		Version       string
		StartedAtMS   int64 `gorm:"column:started_at_ms"`
		HeartbeatAtMS int64 `gorm:"column:heartbeat_at_ms"`
		AppliedGen    int64 `gorm:"column:applied_generation"`
		NowMS         int64 `gorm:"column:now_ms"`
	}
	if err := s.q(ctx).Raw("SELECT id, address, version, started_at_ms, heartbeat_at_ms, applied_generation, " + s.now() + " AS now_ms FROM workers ORDER BY id").Scan(&rows).Error; err != nil {
		return nil, s.wrap(err, "list workers")
	}
	out := make([]Worker, 0, len(rows))
	for _, r := range rows {
		out = append(out, Worker{
			ID: r.ID, Address: r.Address, Version: r.Version,
			StartedAt:         time.UnixMilli(r.StartedAtMS).UTC(),
			HeartbeatAt:       time.UnixMilli(r.HeartbeatAtMS).UTC(),
			Live:              r.HeartbeatAtMS >= r.NowMS-liveWithin.Milliseconds(),
			AppliedGeneration: r.AppliedGen,
		})
	}
	return out, nil
}

// LiveWorkerIDs returns the ids of workers that heartbeat within liveWithin.
func (s *Store) LiveWorkerIDs(ctx context.Context, liveWithin time.Duration) ([]string, error) {
	var ids []string
	res := s.q(ctx).Raw("SELECT id FROM workers WHERE heartbeat_at_ms >= "+s.now()+" - ? ORDER BY id", liveWithin.Milliseconds()).Scan(&ids)
	return ids, s.checked(ctx, res, "live workers")
}

// PruneWorkers deletes rows of workers silent for longer than deadFor.
func (s *Store) PruneWorkers(ctx context.Context, deadFor time.Duration) (int64, error) {
	res := s.q(ctx).Exec("DELETE FROM workers WHERE heartbeat_at_ms < "+s.now()+" - ?", deadFor.Milliseconds())
	return res.RowsAffected, s.checked(ctx, res, "prune workers")
}

// ---- shard leases ----
//
// One row per shard: owner ("" = free), epoch, expires_at_ms (database
// clock). Every change is one conditional UPDATE:
//   - acquire: owner := me, epoch := epoch+1, expiry := now+ttl, only if
//     the epoch is the one the caller saw and the lease is free, expired,
//     or already mine. The epoch therefore rises on every change of owner
//     and is the fencing token.
//   - renew: expiry := now+ttl, only where owner = me and epoch is mine.
//     An expired lease nobody took is renewed too: the epoch proves no one
//     else held it in between.
//   - release: owner := "", expiry := 0, only where owner and epoch are mine.

type leaseRow struct {
	Shard       int    `gorm:"column:shard;primaryKey;autoIncrement:false"`
	Owner       string `gorm:"column:owner"`
	Epoch       int64  `gorm:"column:epoch"`
	ExpiresAtMS int64  `gorm:"column:expires_at_ms"`
}

func (leaseRow) TableName() string { return "shard_leases" }

// EnsureShards creates the lease rows 0..n-1 that are missing and checks
// the table holds exactly n shards: every worker must use the same count
// (a mismatch is ErrConflict).
func (s *Store) EnsureShards(ctx context.Context, n int) error {
	if n < 1 || n > 1<<16 {
		return fmt.Errorf("%w shard count %d", ErrInvalid, n)
	}
	var have struct {
		N   int64
		Max *int64
	}
	if err := s.q(ctx).Raw("SELECT COUNT(*) AS n, MAX(shard) AS max FROM shard_leases").Scan(&have).Error; err != nil {
		return s.wrap(err, "count shards")
	}
	if have.N != int64(n) || have.Max == nil || *have.Max != int64(n-1) {
		if have.N > 0 && (have.N > int64(n) || (have.Max != nil && *have.Max >= int64(n))) {
			return fmt.Errorf("%w: shard_leases holds %d shards, this worker is configured for %d", ErrConflict, have.N, n)
		}
		rows := make([]leaseRow, n)
		for i := range rows {
			rows[i].Shard = i
		}
		if err := s.q(ctx).Clauses(clause.OnConflict{DoNothing: true}).CreateInBatches(rows, 500).Error; err != nil {
			return s.wrap(err, "create shards")
		}
	}
	return nil
}

// ListLeases returns every lease and the database's clock at the read.
func (s *Store) ListLeases(ctx context.Context) ([]Lease, time.Time, error) {
	rows, nowMS, err := s.listLeases(ctx)
	if err != nil {
		return nil, time.Time{}, err
	}
	out := make([]Lease, len(rows))
	for i, r := range rows {
		out[i] = Lease{Shard: r.Shard, Owner: r.Owner, Epoch: uint64(r.Epoch), ExpiresAt: time.UnixMilli(r.ExpiresAtMS).UTC()}
	}
	return out, time.UnixMilli(nowMS).UTC(), nil
}

func (s *Store) listLeases(ctx context.Context) ([]leaseRow, int64, error) {
	var rows []struct {
		Shard       int    `gorm:"column:shard"`
		Owner       string `gorm:"column:owner"`
		Epoch       int64  `gorm:"column:epoch"`
		ExpiresAtMS int64  `gorm:"column:expires_at_ms"`
		NowMS       int64  `gorm:"column:now_ms"`
	}
	if err := s.checked(ctx, s.q(ctx).Raw("SELECT shard, owner, epoch, expires_at_ms, "+s.now()+" AS now_ms FROM shard_leases ORDER BY shard").Scan(&rows), "list leases"); err != nil {
		return nil, 0, err
	}
	out := make([]leaseRow, len(rows))
	var now int64
	for i, r := range rows {
		out[i], now = leaseRow{Shard: r.Shard, Owner: r.Owner, Epoch: r.Epoch, ExpiresAtMS: r.ExpiresAtMS}, r.NowMS
	}
	if len(rows) == 0 {
		var err error
		if now, err = s.nowMillis(ctx); err != nil {
			return nil, 0, err
		}
	}
	return out, now, nil
}

// AcquireLease takes shard for owner if its epoch is still seenEpoch and
// it is free, expired or owner's own; it returns the new epoch
// (seenEpoch+1) and true, or false when someone else got there first.
func (s *Store) AcquireLease(ctx context.Context, shard int, owner string, seenEpoch uint64, ttl time.Duration) (uint64, bool, error) {
	got, err := s.AcquireLeases(ctx, owner, map[int]uint64{shard: seenEpoch}, ttl)
	if err != nil {
		return 0, false, err
	}
	ep, ok := got[shard]
	return ep, ok, nil
}

// AcquireLeases is AcquireLease for several shards (shard → epoch seen) in
// one statement; it returns the shards taken with their new epochs.
func (s *Store) AcquireLeases(ctx context.Context, owner string, seen map[int]uint64, ttl time.Duration) (map[int]uint64, error) {
	if owner == "" {
		return nil, fmt.Errorf("%w lease owner: empty", ErrInvalid)
	}
	if len(seen) == 0 {
		return map[int]uint64{}, nil
	}
	cond, args := pairs(seen)
	res := s.q(ctx).Exec("UPDATE shard_leases SET owner = ?, epoch = epoch + 1, expires_at_ms = "+s.now()+" + ?"+
		" WHERE ("+cond+") AND (owner = '' OR owner = ? OR expires_at_ms < "+s.now()+")",
		append(append([]any{owner, ttl.Milliseconds()}, args...), owner)...)
	if err := s.checked(ctx, res, "acquire leases"); err != nil {
		return nil, err
	}
	if res.RowsAffected == int64(len(seen)) {
		out := make(map[int]uint64, len(seen))
		for sh, ep := range seen {
			out[sh] = ep + 1
		}
		return out, nil
	}
	// Some went to others. Ours now carry owner = us and epoch seen+1:
	// nobody else writes owner = us, and nobody can take them back before
	// they expire.
	return s.heldAs(ctx, owner, seen, 1)
}

// heldAs returns the shards of want that owner holds at epoch want+delta.
func (s *Store) heldAs(ctx context.Context, owner string, want map[int]uint64, delta uint64) (map[int]uint64, error) {
	shards := make([]int, 0, len(want))
	for sh := range want {
		shards = append(shards, sh)
	}
	var rows []leaseRow
	if err := s.checked(ctx, s.q(ctx).Where("shard IN ? AND owner = ?", shards, owner).Find(&rows), "read leases"); err != nil {
		return nil, err
	}
	out := make(map[int]uint64, len(rows))
	for _, r := range rows {
		if ep, ok := want[r.Shard]; ok && uint64(r.Epoch) == ep+delta {
			out[r.Shard] = ep + delta
		}
	}
	return out, nil
}

// pairs builds "(shard = ? AND epoch = ?) OR ..." for held.
func pairs(held map[int]uint64) (string, []any) {
	var b strings.Builder
	args := make([]any, 0, 2*len(held))
	for sh, ep := range held {
		if b.Len() > 0 {
			b.WriteString(" OR ")
		}
		b.WriteString("(shard = ? AND epoch = ?)")
		args = append(args, sh, int64(ep))
	}
	return b.String(), args
}

// RenewLeases extends, in one statement, every lease in held (shard →
// epoch) that owner still holds with that epoch. It returns the shards
// renewed; a shard missing from the result is lost.
func (s *Store) RenewLeases(ctx context.Context, owner string, held map[int]uint64, ttl time.Duration) (map[int]uint64, error) {
	if len(held) == 0 {
		return map[int]uint64{}, nil
	}
	cond, args := pairs(held)
	res := s.q(ctx).Exec("UPDATE shard_leases SET expires_at_ms = "+s.now()+" + ? WHERE owner = ? AND ("+cond+")",
		append([]any{ttl.Milliseconds(), owner}, args...)...)
	if err := s.checked(ctx, res, "renew leases"); err != nil {
		return nil, err
	}
	if res.RowsAffected == int64(len(held)) {
		return held, nil
	}
	// Some were lost: the ones still ours were renewed above (nobody else
	// can write owner = us).
	return s.heldAs(ctx, owner, held, 0)
}

// ReleaseLeases frees every lease in held that owner still holds with that
// epoch, so a successor need not wait for expiry.
func (s *Store) ReleaseLeases(ctx context.Context, owner string, held map[int]uint64) error {
	if len(held) == 0 {
		return nil
	}
	cond, args := pairs(held)
	res := s.q(ctx).Exec("UPDATE shard_leases SET owner = '', expires_at_ms = 0 WHERE owner = ? AND ("+cond+")",
		append([]any{owner}, args...)...)
	return s.checked(ctx, res, "release leases")
}
