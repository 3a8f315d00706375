package store

import (
	"context"
	"testing"
	"time"
)

func TestTaskStatuses(t *testing.T) {
	bothBackends(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		if err := s.PutTaskStatuses(ctx, "w1", []TaskStatus{
			{TaskID: 1, Running: true, ZKSynced: true, OwnedShards: 128, Services: 10, Desired: 30, Registered: 30},
			{TaskID: 2, Error: "task 2: registry cluster id 9 does not exist"},
		}); err != nil {
			t.Fatal(err)
		}
		if err := s.PutTaskStatuses(ctx, "w2", []TaskStatus{{TaskID: 1, Running: true, OwnedShards: 128, Registered: 29, Pending: 1}}); err != nil {
			t.Fatal(err)
		}
		got, err := s.ListTaskStatuses(ctx, time.Minute)
		if err != nil || len(got) != 3 {
			t.Fatalf("list = %+v, %v", got, err)
		}
		if g := got[0]; g.TaskID != 1 || g.WorkerID != "w1" || !g.Running || !g.ZKSynced || g.Registered != 30 || g.UpdatedAt.IsZero() {
			t.Fatalf("row 0 = %+v", g)
		}
		if g := got[2]; g.TaskID != 2 || g.Running || g.Error == "" {
			t.Fatalf("row 2 = %+v", g)
		}
		// An update replaces the worker's rows: task 2 gone, task 1 changed.
		if err := s.PutTaskStatuses(ctx, "w1", []TaskStatus{{TaskID: 1, Running: true, Registered: 31}}); err != nil {
			t.Fatal(err)
		}
		got, _ = s.ListTaskStatuses(ctx, time.Minute)
		if len(got) != 2 || got[0].Registered != 31 || got[1].WorkerID != "w2" {
			t.Fatalf("after update = %+v", got)
		}
		if err := s.DeleteTaskStatuses(ctx, "w2"); err != nil {
			t.Fatal(err)
		}
		if got, _ = s.ListTaskStatuses(ctx, time.Minute); len(got) != 1 {
			t.Fatalf("after delete = %+v", got)
		}
		if n, err := s.PruneTaskStatuses(ctx, time.Hour); err != nil || n != 0 {
			t.Fatalf("prune fresh rows = %d, %v", n, err)
		}
		if n, err := s.PruneTaskStatuses(ctx, -time.Hour); err != nil || n != 1 {
			t.Fatalf("prune stale rows = %d, %v", n, err)
		}
	})
}
