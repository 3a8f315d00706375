package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"
)

// BenchmarkRenew256: one statement renewing 256 leases (what each worker
// does every RenewInterval when it holds all shards).
func BenchmarkRenew256(b *testing.B) {
	for _, backend := range []string{"sqlite", "mysql"} {
		b.Run(backend, func(b *testing.B) {
			s := benchStore(b, backend)
			ctx := context.Background()
			if err := s.EnsureShards(ctx, DefaultShards); err != nil {
				b.Fatal(err)
			}
			want := map[int]uint64{}
			for sh := range DefaultShards {
				want[sh] = 0
			}
			held, err := s.AcquireLeases(ctx, "w", want, time.Minute)
			if err != nil || len(held) != DefaultShards {
				b.Fatalf("acquire: %d, %v", len(held), err)
			}
			b.ResetTimer()
			for b.Loop() {
				got, err := s.RenewLeases(ctx, "w", held, time.Minute)
				if err != nil || len(got) != DefaultShards {
					b.Fatalf("renew: %d, %v", len(got), err)
				}
			}
		})
	}
}

// BenchmarkTick: one steady-state lessor tick (renew + live-worker count)
// for a worker holding its share of 256 shards among 5.
func BenchmarkTick(b *testing.B) {
	for _, backend := range []string{"sqlite", "mysql"} {
		b.Run(backend, func(b *testing.B) {
			s := benchStore(b, backend)
			ctx := context.Background()
			var ls []*Lessor
			for i := range 5 {
				cfg := DefaultLessorConfig(fmt.Sprintf("w%d", i))
				l, err := NewLessor(s, cfg)
				if err != nil {
					b.Fatal(err)
				}
				if err := l.register(ctx); err != nil {
					b.Fatal(err)
				}
				ls = append(ls, l)
			}
			for range 3 {
				for _, l := range ls {
					l.tick(ctx)
				}
			}
			if n := len(ls[0].Owned()); n != (DefaultShards+4)/5 {
				b.Fatalf("worker 0 owns %d", n)
			}
			b.ResetTimer()
			for b.Loop() {
				ls[0].tick(ctx)
			}
		})
	}
}

// BenchmarkLeaseQueryRate: 5 workers with the default settings (renew 2 s,
// TTL 10 s, heartbeat 1 s) sharing 256 shards, in steady state, against
// MariaDB; reports the statements per second the server executed
// (Questions). The budget is 50/s.
func BenchmarkLeaseQueryRate(b *testing.B) {
	srv := sharedMySQL(b)
	dsn, err := srv.CreateDatabase(context.Background(), fmt.Sprintf("b%d", shared.n.Add(1)))
	if err != nil {
		b.Fatal(err)
	}
	s := openDSN(b, dsn)
	var ls []*Lessor
	for i := range 5 {
		l, err := NewLessor(s, DefaultLessorConfig(fmt.Sprintf("w%d", i)))
		if err != nil {
			b.Fatal(err)
		}
		if err := l.Start(); err != nil {
			b.Fatal(err)
		}
		defer l.Stop(context.Background())
		ls = append(ls, l)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		total, maxN := 0, 0
		for _, l := range ls {
			n := len(l.Owned())
			total += n
			maxN = max(maxN, n)
		}
		if total == DefaultShards && maxN <= (DefaultShards+4)/5 {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("not balanced in 30s: %d owned", total)
		}
		time.Sleep(100 * time.Millisecond) // polling
	}
	raw, err := sql.Open("mysql", strings.TrimPrefix(srv.DSN(), "mysql://"))
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	questions := func() float64 {
		var name string
		var v float64
		if err := raw.QueryRow("SHOW GLOBAL STATUS LIKE 'Questions'").Scan(&name, &v); err != nil {
			b.Fatal(err)
		}
		return v
	}
	const window = 20 * time.Second
	b.ResetTimer()
	for range b.N {
		q0, t0 := questions(), time.Now()
		time.Sleep(window) // measurement window
		q1, el := questions(), time.Since(t0)
		b.ReportMetric((q1-q0-1)/el.Seconds(), "queries/s")
	}
}

func benchStore(b *testing.B, backend string) *Store {
	if backend == "sqlite" {
		return openSQLite(b)
	}
	return openMySQL(b)
}
