package store

import (
	"context"
	"fmt"
)

// The settings generation (migration 00003) is one counter that every
// change to clusters, tasks and apps bumps in its own transaction. A worker
// that has loaded the settings at generation g reports g in its heartbeat
// row (Worker.AppliedGeneration); the console compares the two to say
// "applied on N/N live workers". Every mutator of this package that changes
// a cluster, task or app bumps it; code outside the package that changes
// those tables must call BumpSettingsGeneration in the same InTx.

// SettingsGeneration is the current settings generation (≥ 1).
func (s *Store) SettingsGeneration(ctx context.Context) (int64, error) {
	var g int64
	res := s.q(ctx).Raw("SELECT generation FROM settings_generation WHERE id = 1").Scan(&g)
	if err := s.checked(ctx, res, "read settings generation"); err != nil {
		return 0, err
	}
	if res.RowsAffected == 0 {
		return 0, fmt.Errorf("%w: settings generation row", ErrNotFound)
	}
	return g, nil
}

// BumpSettingsGeneration adds one to the settings generation and returns
// the new value. Call it inside the InTx that makes the change, so the
// change and its generation commit together (a worker that reads generation
// g then reads settings at least as new as g).
func (s *Store) BumpSettingsGeneration(ctx context.Context) (int64, error) {
	if !s.inTx {
		var g int64
		err := s.InTx(ctx, func(tx *Store) error {
			var err error
			g, err = tx.BumpSettingsGeneration(ctx)
			return err
		})
		return g, err
	}
	res := s.q(ctx).Exec("UPDATE settings_generation SET generation = generation + 1 WHERE id = 1")
	if err := s.checked(ctx, res, "bump settings generation"); err != nil {
		return 0, err
	}
	if res.RowsAffected == 0 {
		return 0, fmt.Errorf("%w: settings generation row", ErrNotFound)
	}
	return s.SettingsGeneration(ctx)
}

// bumped runs fn in a transaction that also bumps the settings generation.
func (s *Store) bumped(ctx context.Context, fn func(tx *Store) error) error {
	return s.InTx(ctx, func(tx *Store) error {
		if err := fn(tx); err != nil {
			return err
		}
		_, err := tx.BumpSettingsGeneration(ctx)
		return err
	})
}

// SetWorkerGeneration records the settings generation the worker has
// applied, without touching its heartbeat (HeartbeatWorkerGeneration does
// both in one statement). A missing row is ErrNotFound.
func (s *Store) SetWorkerGeneration(ctx context.Context, id string, applied int64) error {
	res := s.q(ctx).Exec("UPDATE workers SET applied_generation = ? WHERE id = ?", applied, id)
	if err := s.checked(ctx, res, "set generation of worker "+id); err != nil {
		return err
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("%w: worker %s", ErrNotFound, id)
	}
	return nil
}

// HeartbeatWorkerGeneration marks the worker alive now (database clock)
// and records the settings generation it has applied, in one statement. A
// missing row is ErrNotFound: register again.
func (s *Store) HeartbeatWorkerGeneration(ctx context.Context, id string, applied int64) error {
	res := s.q(ctx).Exec("UPDATE workers SET heartbeat_at_ms = "+s.now()+", applied_generation = ? WHERE id = ?", applied, id)
	if err := s.checked(ctx, res, "heartbeat worker "+id); err != nil {
		return err
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("%w: worker %s", ErrNotFound, id)
	}
	return nil
}
