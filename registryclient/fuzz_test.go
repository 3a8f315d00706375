package registryclient

import (
	"maps"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferrysync/ferry/wire"
)

func FuzzParseServer(f *testing.F) {
	for _, s := range []string{"127.0.0.1:8848", "[::1]:8848/9848", "h:1", "nonsense", ":", "a:b/c", "h:65535", "[::1]:x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		srv, err := ParseServer(s)
		if err != nil {
			return
		}
		if srv.Port <= 0 || srv.Port > 65535 || srv.GRPCPort <= 0 || srv.GRPCPort > 65535 || srv.Host == "" {
			t.Fatalf("%q parsed to %+v", s, srv)
		}
		again, err := ParseServer(srv.Addr() + "/" + itoa(srv.GRPCPort))
		if err != nil || again != srv {
			t.Fatalf("%q: round trip %+v → %+v %v", s, srv, again, err)
		}
	})
}

func itoa(i int) string { return string(appendInt(nil, i)) }

func appendInt(b []byte, i int) []byte {
	if i >= 10 {
		b = appendInt(b, i/10)
	}
	return append(b, byte('0'+i%10))
}

func FuzzReadSnapshot(f *testing.F) {
	f.Add([]byte(`{"namespace":"public","service":{"name":"a","groupName":"g","hosts":[{"ip":"1.1.1.1","port":1}]}}`))
	f.Add([]byte(`{"service":{"name":""}}`))
	f.Add([]byte(`not json`))
	f.Add([]byte(`{"service":{"name":"x","hosts":null,"lastRefTime":-1}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		p := filepath.Join(dir, "x.json")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		svc, info, err := readSnapshot(p)
		if err != nil {
			return
		}
		if svc.Name == "" || svc.Group == "" || info.Name != svc.Name {
			t.Fatalf("accepted %q as %+v", b, svc)
		}
		// What was read writes back and reads the same.
		if svc.Namespace == "" {
			svc.Namespace = "public"
		}
		if err := writeSnapshot(dir, svc, info); err != nil {
			t.Fatal(err)
		}
		svc2, _, err := readSnapshot(filepath.Join(dir, cacheFileName(svc)))
		if err != nil || svc2 != svc {
			t.Fatalf("rewrite: %+v %v", svc2, err)
		}
	})
}

// FuzzBeatState drives the beat schedule, buffer and redirect cache with a
// random sequence of operations and answers, checking its invariants.
func FuzzBeatState(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11})
	f.Add([]byte{0, 0, 0, 3, 3, 3, 3, 3, 4, 4, 1, 2})
	f.Fuzz(func(t *testing.T, ops []byte) {
		cfg := DefaultConfig()
		cfg.BeatInterval, cfg.BeatPeriod, cfg.BeatBuffer, cfg.MaxBatchBeats = time.Second, 3*time.Second, 7, 4
		var b beatState
		b.init(cfg)
		svcs := []ServiceRef{{"public", DefaultGroup, "a"}, {"public", DefaultGroup, "b"}}
		var pending []beatBatch
		for i, op := range ops {
			svc := svcs[int(op>>4)%len(svcs)]
			switch op % 6 {
			case 0:
				b.keep(svc, instances(int(op>>3)%9, "10."+itoa(int(op>>4)%2)))
			case 1:
				b.release(svc, nil)
			case 2:
				b.advance()
			case 3:
				pending = append(pending, b.drain()...)
			case 4, 5:
				if len(pending) == 0 {
					continue
				}
				bb := pending[0]
				pending = pending[1:]
				if op%6 == 5 {
					b.failed(bb.node, bb.entries)
					continue
				}
				rs := make([]wire.BeatResult, len(bb.entries))
				for j := range rs {
					switch (int(op) + i + j) % 4 {
					case 0:
						rs[j].Status = wire.BeatOK
					case 1:
						rs[j].Status = wire.BeatUnknown
					case 2:
						rs[j] = wire.BeatResult{Status: wire.BeatRedirect, Redirect: "10.0.0." + itoa(j%3) + ":8848"}
					default:
						rs[j].Status = wire.BeatInvalid
					}
				}
				b.apply(bb.node, bb.entries, rs)
			}
			// Invariants.
			if b.n < 0 || b.n > len(b.ring) {
				t.Fatalf("ring count %d of %d", b.n, len(b.ring))
			}
			seen := map[*beatEntry]bool{}
			for k := 0; k < b.n; k++ {
				e := b.ring[(b.head+k)%len(b.ring)]
				if e == nil || !e.queued || seen[e] {
					t.Fatalf("ring slot %d bad (nil, not queued or twice)", k)
				}
				seen[e] = true
			}
			total := 0
			for si, s := range b.slots {
				for idx, e := range s {
					if e.slot != si || e.slotIdx != idx || e.removed {
						t.Fatalf("slot index broken")
					}
					if b.bySvc[e.key.svc][e.key.addr] != e {
						t.Fatalf("slot entry not in bySvc")
					}
				}
				total += len(s)
			}
			n := 0
			for _, m := range b.bySvc {
				n += len(m)
			}
			if n != total {
				t.Fatalf("bySvc %d vs slots %d", n, total)
			}
			// The redirect cache holds kept addresses only, counted right.
			perAddr := map[string]int{}
			for _, m := range b.bySvc {
				for _, e := range m {
					perAddr[e.addr]++
				}
			}
			if !maps.Equal(perAddr, b.clients) {
				t.Fatalf("clients %v, kept addresses %v", b.clients, perAddr)
			}
			for a := range b.redirect {
				if b.clients[a] == 0 {
					t.Fatalf("redirect entry of %s, which nothing keeps", a)
				}
			}
			for _, bb := range pending {
				if len(bb.entries) > cfg.MaxBatchBeats || len(bb.entries) != bb.req.Len() {
					t.Fatalf("batch of %d entries / %d beats", len(bb.entries), bb.req.Len())
				}
			}
		}
	})
}
