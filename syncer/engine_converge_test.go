package syncer

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestEngineConverges drives the engine through a seeded random sequence of
// provider changes, app mode flips, shard losses and registry failures, then
// heals everything and checks that the registry holds exactly the expected
// instances (and that they are all beaten). Instances nobody beats expire, as
// in the registry: that is how a registry service whose providers all left
// ZooKeeper while no worker owned its shard is cleaned up.
func TestEngineConverges(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			h := newHarness(t, func(c *Config) { c.MassMin = 1000 }) // the guard has its own test
			rng := rand.New(rand.NewPCG(seed, seed))
			services := []string{"org.A", "org.B", "s1.C", "s1.D", "org.E"}
			h.start()
			for range 150 {
				switch r := rng.IntN(10); {
				case r < 6:
					s := services[rng.IntN(len(services))]
					var provs []Provider
					for i := range 6 {
						if rng.IntN(2) == 0 {
							kv := []string{}
							if rng.IntN(3) == 0 {
								kv = append(kv, "withNacos", "true")
							}
							if i%2 == 0 {
								kv = append(kv, "version", "2")
							}
							provs = append(provs, prov(s, fmt.Sprintf("10.0.0.%d", i), 20880, int64(1000+rng.IntN(3)), kv...))
						}
					}
					h.src.set(s, provs...)
				case r < 7:
					modes := []AppMode{ModeSync, ModeNative, ModeExcluded}
					h.apps.set("app-"+services[rng.IntN(len(services))], modes[rng.IntN(3)])
				case r < 8:
					h.own.set(1, uint64(rng.IntN(5)+1), rng.IntN(2) == 0)
				case r < 9:
					h.reg.mu.Lock()
					h.reg.failCalls = rng.IntN(3)
					h.reg.mu.Unlock()
				default:
					h.src.setSynced(rng.IntN(4) != 0)
				}
			}
			// Heal.
			h.reg.mu.Lock()
			h.reg.failCalls = 0
			h.reg.mu.Unlock()
			h.src.setSynced(true)
			h.own.set(1, 99, true)
			want := map[string]map[string]bool{}
			for _, s := range services {
				snap, ok := h.src.Snapshot(s)
				if !ok {
					continue
				}
				for _, p := range snap.Providers {
					if h.e.cfg.Filter.Skip(p, h.apps.Mode(Application(p))) != SkipNone {
						continue
					}
					name := ServiceName(p.URL)
					if want[name] == nil {
						want[name] = map[string]bool{}
					}
					want[name][Addr(p.URL.Host, p.URL.Port)] = true
				}
			}
			got := func() map[string]map[string]bool {
				h.reg.mu.Lock()
				defer h.reg.mu.Unlock()
				out := map[string]map[string]bool{}
				for name, insts := range h.reg.insts {
					for a := range insts {
						if !h.reg.beating[name][a] {
							continue
						}
						if out[name] == nil {
							out[name] = map[string]bool{}
						}
						out[name][a] = true
					}
				}
				return out
			}
			defer func() {
				if t.Failed() {
					t.Logf("want %v", want)
					t.Logf("beating %v", got())
					h.reg.mu.Lock()
					for n, in := range h.reg.insts {
						t.Logf("registry %s: %d", n, len(in))
					}
					h.reg.mu.Unlock()
					t.Logf("status %+v", h.e.Status())
				}
			}()
			eventually(t, "convergence", func() bool {
				h.clock.Advance(time.Minute) // retries, holds, synced poll, full reconcile
				h.reg.expireUnbeaten()       // the registry's beat timeout, as the minute passes
				g := got()
				return maps.EqualFunc(g, want, func(a, b map[string]bool) bool { return maps.Equal(a, b) }) &&
					h.reg.count("") == 0 && registryMatches(h, want)
			})
		})
	}
}

// registryMatches checks that the registry holds nothing beyond want.
func registryMatches(h *harness, want map[string]map[string]bool) bool {
	h.reg.mu.Lock()
	defer h.reg.mu.Unlock()
	for name, insts := range h.reg.insts {
		for a := range insts {
			if !want[name][a] {
				return false
			}
		}
	}
	names := slices.Collect(maps.Keys(want))
	for _, n := range names {
		if len(h.reg.insts[n]) != len(want[n]) {
			return false
		}
	}
	return true
}
