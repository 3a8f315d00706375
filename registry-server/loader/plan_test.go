package loader

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
)

func TestPlan(t *testing.T) {
	a, b, c := "10.0.0.1:8848", "10.0.0.2:8848", "10.0.0.3:8848"
	for _, tc := range []struct {
		name  string
		loads map[string]int
		self  string
		max   int
		want  []Move
	}{
		{"after a rolling restart: the last node restarted is empty", map[string]int{a: 150, b: 150, c: 0}, a, 1000,
			[]Move{{Target: c, Count: 50}}},
		{"the other full node fills the rest of the room", map[string]int{a: 150, b: 150, c: 0}, b, 1000,
			[]Move{{Target: c, Count: 50}}},
		{"the empty node moves nothing", map[string]int{a: 150, b: 150, c: 0}, c, 1000, nil},
		{"capped per round", map[string]int{a: 300, b: 0, c: 0}, a, 40,
			[]Move{{Target: b, Count: 40}}},
		{"spread over two empty nodes", map[string]int{a: 300, b: 0, c: 0}, a, 1000,
			[]Move{{Target: b, Count: 100}, {Target: c, Count: 100}}},
		{"within the factor: nothing", map[string]int{a: 105, b: 100, c: 95}, a, 1000, nil},
		{"a starved node pulls from nodes inside the factor", map[string]int{a: 22, b: 22, c: 16}, a, 1000,
			[]Move{{Target: c, Count: 2}}},
		{"one connection over: not worth a move", map[string]int{a: 2, b: 1}, a, 1000, nil},
		{"a single node", map[string]int{a: 100}, a, 1000, nil},
		{"self not serving", map[string]int{b: 100, c: 0}, a, 1000, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Plan(tc.loads, tc.self, 0.1, tc.max); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Plan = %v, want %v", got, tc.want)
			}
		})
	}
}

// applyRound moves what every member's plan says, as the members would
// from one set of counts.
func applyRound(loads map[string]int, factor float64, maxMoves int) (map[string]int, int) {
	next := map[string]int{}
	for k, v := range loads {
		next[k] = v
	}
	moved := 0
	for self := range loads {
		for _, m := range Plan(loads, self, factor, maxMoves) {
			next[self] -= m.Count
			next[m.Target] += m.Count
			moved += m.Count
		}
	}
	return next, moved
}

// FuzzPlanConverges: for any counts, the members' plans from the same
// counts never send more than a member holds, never overfill a target past
// the average, keep the total, and repeated rounds end within the factor
// (or one connection) of the average.
func FuzzPlanConverges(f *testing.F) {
	f.Add(uint64(1), 3, 300)
	f.Add(uint64(2), 5, 10000)
	f.Add(uint64(3), 2, 7)
	f.Fuzz(func(t *testing.T, seed uint64, n, total int) {
		n = 2 + abs(n)%8
		total = abs(total) % 50000
		r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
		loads := map[string]int{}
		left := total
		for i := range n {
			k := 0
			if i == n-1 {
				k = left
			} else if left > 0 {
				k = r.IntN(left + 1)
			}
			loads[fmt.Sprintf("10.0.0.%d:8848", i+1)] = k
			left -= k
		}
		const factor, maxMoves = 0.1, 100
		for round := 0; round < 1000; round++ {
			avg := float64(total) / float64(n)
			next, moved := applyRound(loads, factor, maxMoves)
			sum := 0
			for a, v := range next {
				sum += v
				if v < 0 {
					t.Fatalf("round %d: %s below zero (%v → %v)", round, a, loads, next)
				}
				if loads[a] < int(math.Ceil(avg)) && v > int(math.Ceil(avg)) {
					t.Fatalf("round %d: %s overfilled past the average %.1f (%v → %v)", round, a, avg, loads, next)
				}
			}
			if sum != total {
				t.Fatalf("round %d: total %d → %d", round, total, sum)
			}
			if moved == 0 {
				for a, v := range next {
					if float64(v) > avg*(1+factor)+1 || float64(v) < avg*(1-factor)-1 {
						t.Fatalf("stuck after %d rounds: %s holds %d, average %.1f (%v)", round, a, v, avg, next)
					}
				}
				return
			}
			loads = next
		}
		t.Fatalf("no convergence in 1000 rounds: %v", loads)
	})
}

func abs(x int) int {
	if x < 0 {
		if x == math.MinInt {
			return 0
		}
		return -x
	}
	return x
}

func TestHandoff(t *testing.T) {
	got := Handoff(map[string]int{"b:1": 10, "c:1": 4}, 10)
	want := []Move{{Target: "b:1", Count: 2}, {Target: "c:1", Count: 8}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Handoff = %v, want %v", got, want)
	}
	if Handoff(map[string]int{}, 5) != nil || Handoff(map[string]int{"b:1": 1}, 0) != nil {
		t.Fatal("nothing to hand over, or nobody to take it: no moves")
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, mut := range []func(*Config){
		func(c *Config) { c.Interval = -1 },
		func(c *Config) { c.Factor = -0.1 },
		func(c *Config) { c.MaxPerRound = 0 },
		func(c *Config) { c.MinAge = -1 },
		func(c *Config) { c.Handoff = -1 },
	} {
		c := DefaultConfig()
		mut(&c)
		if c.Validate() == nil {
			t.Errorf("%+v: accepted", c)
		}
	}
}
