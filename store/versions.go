package store

import (
	"context"
	"fmt"
	"time"
)

// Clusters, tasks and apps carry a version (migration 00004): 1 at
// creation, one more per change. An update that names the version it read
// (Version > 0 on the row passed in, or the expect argument) is applied
// only if the row still has it; otherwise it is a *StaleError, which is
// ErrConflict and says who changed the row last and when. Version 0 means
// "whatever the row holds" (the worker's own seeding, scripts).

// StaleError is a write against a version that is no longer the row's.
type StaleError struct {
	What     string    // e.g. "app billing"
	Expected int64     // the version the writer read
	Current  int64     // the row's version now
	By       string    // who made the current version
	At       time.Time // when (UTC)
}

func (e *StaleError) Error() string {
	by := e.By
	if by == "" {
		by = "an unnamed writer"
	}
	return fmt.Sprintf("%v: %s was changed by %s at %s (version %d, you edited version %d)",
		ErrConflict, e.What, by, e.At.UTC().Format(time.RFC3339), e.Current, e.Expected)
}

// Unwrap makes errors.Is(err, ErrConflict) hold.
func (e *StaleError) Unwrap() error { return ErrConflict }

// stale builds the error for a versioned update of table's row id that
// changed no row: ErrNotFound when the row is gone, else a *StaleError.
// byCol and atCol name who/when columns (at is a DATETIME).
func (s *Store) stale(ctx context.Context, table, where string, arg any, byCol, atCol, what string, expected int64) error {
	var row struct {
		Version int64     `gorm:"column:version"`
		By      string    `gorm:"column:v_by"`
		At      time.Time `gorm:"column:v_at"`
	}
	res := s.q(ctx).Raw("SELECT version, "+byCol+" AS v_by, "+atCol+" AS v_at FROM "+table+" WHERE "+where+" = ?", arg).Scan(&row)
	if err := s.checked(ctx, res, what); err != nil {
		return err
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("%w: %s", ErrNotFound, what)
	}
	return &StaleError{What: what, Expected: expected, Current: row.Version, By: row.By, At: row.At}
}
