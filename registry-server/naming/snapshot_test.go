package naming

import (
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

func TestSnapshotReuseAndInvalidation(t *testing.T) {
	r, _, _ := newTestRegistry(t)
	if si, _ := r.Select(demo, nil, false); si.Snapshot != nil || len(si.Hosts) != 0 {
		t.Fatalf("unknown service: %+v", si)
	}
	if err := r.Register("c1", demo, inst("10.0.0.1", 1)); err != nil {
		t.Fatal(err)
	}
	a, _ := r.Select(demo, nil, false)
	b, _ := r.Select(demo, nil, false)
	if a.Snapshot == nil || a.Snapshot != b.Snapshot || &a.Hosts[0] != &b.Hosts[0] {
		t.Fatal("an unchanged service must answer from one snapshot and one memoised selection")
	}
	if b.LastRefTime <= a.LastRefTime {
		t.Fatalf("lastRefTime %d then %d", a.LastRefTime, b.LastRefTime)
	}
	// Another filter is another memo entry on the same snapshot.
	h, _ := r.Select(demo, nil, true)
	if h.Snapshot != a.Snapshot || len(h.Hosts) != 1 {
		t.Fatalf("healthyOnly: %+v", h)
	}
	// Re-sending the same registration changes nothing.
	if err := r.Register("c1", demo, inst("10.0.0.1", 1)); err != nil {
		t.Fatal(err)
	}
	if c, _ := r.Select(demo, nil, false); c.Snapshot != a.Snapshot {
		t.Fatal("identical re-registration dropped the snapshot")
	}
	// A change is a new snapshot.
	if err := r.Register("c2", demo, inst("10.0.0.2", 1)); err != nil {
		t.Fatal(err)
	}
	if c, _ := r.Select(demo, nil, false); c.Snapshot == a.Snapshot || len(c.Hosts) != 2 {
		t.Fatalf("after a change: %+v", c)
	}
}

func TestSelectMemoKeyInjective(t *testing.T) {
	seen := map[string]string{}
	for _, c := range []struct {
		clusters []string
		healthy  bool
	}{{nil, false}, {nil, true}, {[]string{""}, false}, {[]string{"a", "b"}, false}, {[]string{"a,b"}, false},
		{[]string{"1:a"}, false}, {[]string{"1", "a"}, false}, {[]string{"a"}, true}} {
		k := selectMemoKey(c.clusters, c.healthy)
		d := strconv.Quote(k)
		if prev, ok := seen[k]; ok {
			t.Errorf("key %s for both %s and %v/%v", d, prev, c.clusters, c.healthy)
		}
		seen[k] = d
	}
}

func TestMemoBounded(t *testing.T) {
	s := &Snapshot{}
	builds := 0
	for i := 0; i < MaxMemo+5; i++ {
		s.Memo(strconv.Itoa(i), func() any { builds++; return i })
	}
	if len(s.memo) != MaxMemo {
		t.Fatalf("memo holds %d entries, max %d", len(s.memo), MaxMemo)
	}
	if v := s.Memo("0", func() any { builds++; return -1 }); v != 0 {
		t.Fatalf("memoised value %v", v)
	}
	if v := s.Memo(strconv.Itoa(MaxMemo+1), func() any { builds++; return -2 }); v != -2 {
		t.Fatalf("over the bound: %v", v)
	}
	if builds != MaxMemo+5+1 {
		t.Fatalf("%d builds", builds)
	}
	var nilSnap *Snapshot
	if v := nilSnap.Memo("x", func() any { return 7 }); v != 7 {
		t.Fatalf("nil snapshot: %v", v)
	}
}

// TestSelectNeverStale: a Select that starts after a registration returned
// sees that registration or a later one, while readers hammer the memo.
func TestSelectNeverStale(t *testing.T) {
	r, _, _ := newTestRegistry(t)
	const versions = 300
	var done atomic.Int64 // last version whose Register returned
	reg := func(v int) {
		in := inst("10.0.0.1", 1)
		in.Metadata = map[string]string{"v": strconv.Itoa(v)}
		if err := r.Register("c1", demo, in); err != nil {
			t.Error(err)
		}
		done.Store(int64(v))
	}
	reg(0)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(healthyOnly bool) {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				min := done.Load()
				si, err := r.Select(demo, nil, healthyOnly)
				if err != nil || len(si.Hosts) != 1 {
					t.Errorf("select: %+v %v", si, err)
					return
				}
				if v, _ := strconv.ParseInt(si.Hosts[0].Metadata["v"], 10, 64); v < min {
					t.Errorf("stale answer: version %d after %d was registered", v, min)
					return
				}
			}
		}(g%2 == 0)
	}
	for v := 1; v <= versions; v++ {
		reg(v)
	}
	close(stop)
	wg.Wait()
}
