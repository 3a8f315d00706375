package main

import (
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"github.com/ferrysync/ferry/internal/poll"
)

// BenchmarkTakeoverKill9 measures, on real parts, the failover of a
// SIGKILLed `ferry sync` worker: the time from the kill until the survivor
// owns every shard (lease move) and until every moved instance carries the
// survivor's marker (its first beat: the registration-carrying batch beat
// of its reconcile), over Runs kills, p50 and p99; and the store queries/s
// of 5 workers at rest. It runs once per lease setting: the defaults
// (TTL 5 s, renew 1 s) and, as the baseline in the same run, the previous
// defaults (TTL 10 s, renew 2 s).
//
//	go test -run '^$' -bench BenchmarkTakeoverKill9 -benchtime 1x ./cmd/ferry/
//
// The margin to `unhealthy` is the registry's 15 s beat timeout minus the
// worst-case age of an instance's last beat at the kill (one beat period,
// 5 s) minus the first-beat time.
func BenchmarkTakeoverKill9(b *testing.B) {
	for _, tc := range []struct {
		name  string
		flags []string
	}{
		{"lease=default", nil},
		{"lease=ttl10s-renew2s", []string{"-lease-ttl", "10s", "-lease-renew", "2s"}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for range b.N {
				benchTakeover(b, tc.flags)
			}
		})
	}
}

func benchTakeover(b *testing.B, flags []string) {
	const services, instances, runs = 50, 4, 10
	r := newHARig(b, services, instances)
	want := services * instances
	survivor := freeAddr(b)
	startFerry(b, "survivor", r.syncArgs("survivor", survivor, flags...)...)

	var moves, beats []time.Duration
	for run := range runs {
		id := fmt.Sprintf("victim%d", run)
		addr := freeAddr(b)
		victim := startFerry(b, id, r.syncArgs(id, addr, flags...)...)
		r.waitShared([]string{survivor, addr}, want)
		// Both workers' markers present: the victim beats its share.
		poll.Every(b, 60*time.Second, 20*time.Millisecond, "both markers", func() bool {
			seen := map[string]bool{}
			for _, w := range r.healthy() {
				seen[w] = true
			}
			return seen[id] && seen["survivor"] && len(r.healthy()) == want
		})
		if err := victim.Process.Kill(); err != nil {
			b.Fatal(err)
		}
		moved := poll.Every(b, 30*time.Second, 20*time.Millisecond, "survivor owns every shard", func() bool {
			st, err := workerStatus(survivor, r.token)
			return err == nil && st.OwnedKeys == 256
		})
		beaten := moved + poll.Every(b, 30*time.Second, 20*time.Millisecond, "every instance names the survivor", func() bool {
			h := r.healthy()
			for _, w := range h {
				if w != "survivor" {
					return false
				}
			}
			return len(h) == want
		})
		moves, beats = append(moves, moved), append(beats, beaten)
		_ = victim.Wait()
	}
	p := func(ds []time.Duration, q float64) time.Duration {
		s := slices.Clone(ds)
		slices.Sort(s)
		return s[min(len(s)-1, int(q*float64(len(s))))]
	}
	b.ReportMetric(p(moves, 0.5).Seconds(), "lease-move-p50-s")
	b.ReportMetric(p(moves, 0.99).Seconds(), "lease-move-p99-s")
	b.ReportMetric(p(beats, 0.5).Seconds(), "first-beat-p50-s")
	b.ReportMetric(p(beats, 0.99).Seconds(), "first-beat-p99-s")
	b.ReportMetric((10*time.Second - p(beats, 0.99)).Seconds(), "worst-margin-p99-s")
	b.Logf("lease moves %v; first beats %v", moves, beats)

	// Store queries/s of 5 workers at rest.
	addrs := []string{survivor}
	for i := range 4 {
		id := fmt.Sprintf("rest%d", i)
		addr := freeAddr(b)
		startFerry(b, id, r.syncArgs(id, addr, flags...)...)
		addrs = append(addrs, addr)
	}
	r.waitShared(addrs, want)
	db, err := sql.Open("mysql", strings.TrimPrefix(r.dsn, "mysql://"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	questions := func() float64 {
		var name string
		var v float64
		if err := db.QueryRow("SHOW GLOBAL STATUS LIKE 'Questions'").Scan(&name, &v); err != nil {
			b.Fatal(err)
		}
		return v
	}
	time.Sleep(5 * time.Second) // settle after the rebalance (measurement, not synchronisation)
	q0, t0 := questions(), time.Now()
	time.Sleep(20 * time.Second) // measurement window
	q1 := questions()
	qps := (q1 - q0 - 1) / time.Since(t0).Seconds()
	b.ReportMetric(qps, "store-queries/s-5-workers")
}
