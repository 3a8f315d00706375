package distro

import (
	"fmt"
	"testing"

	"github.com/ferrysync/ferry/registry-server/naming"
)

var _ naming.Responsibility = (*Mapper)(nil)

// TestRendezvousGolden pins the hash: these owners are part of the cluster
// protocol (members of different versions must agree during a rolling
// upgrade). Never change a vector; a change of the function is a new
// protocol version. The first weight was checked outside Go:
// printf '10.0.0.1:8848#10.1.0.1:20880' | sha256sum → 108f84…: its
// first 8 bytes are 1193317712404158732.
func TestRendezvousGolden(t *testing.T) {
	members := []string{"10.0.0.1:8848", "10.0.0.2:8848", "10.0.0.3:8848"}
	golden := []struct {
		tag   string
		w1    uint64 // weight on 10.0.0.1:8848
		owner string
	}{
		{"10.1.0.1:20880", 1193317712404158732, "10.0.0.3:8848"},
		{"10.1.0.2:20880", 11051607884723613209, "10.0.0.2:8848"},
		{"10.1.0.3:20880", 2318505073331429140, "10.0.0.1:8848"},
		{"192.168.1.10:8080", 7532489014004984268, "10.0.0.3:8848"},
		{"[fe80::1]:20880", 6721063771020566836, "10.0.0.2:8848"},
		{"provider.example.com:20880", 12126207039218344079, "10.0.0.2:8848"},
	}
	for _, g := range golden {
		w, o := weight(members[0], g.tag), Responsible(g.tag, members)
		if w != g.w1 || o != g.owner {
			t.Errorf("%s: weight %d owner %s, want %d %s", g.tag, w, o, g.w1, g.owner)
		}
	}
	if Responsible("x", nil) != "" {
		t.Fatal("no members, no owner")
	}
}

// TestRendezvousMovesOneNth: removing one of five members moves only the
// tags it owned; adding it back moves them back; the spread is even.
func TestRendezvousMovesOneNth(t *testing.T) {
	five := []string{"a:8848", "b:8848", "c:8848", "d:8848", "e:8848"}
	four := five[:4]
	const n = 20000
	per := map[string]int{}
	moved := 0
	for i := 0; i < n; i++ {
		tag := fmt.Sprintf("10.%d.%d.%d:20880", i>>16, i>>8&255, i&255)
		o5, o4 := Responsible(tag, five), Responsible(tag, four)
		per[o5]++
		if o5 != o4 {
			moved++
			if o5 != "e:8848" {
				t.Fatalf("%s moved from %s though that member stayed", tag, o5)
			}
		}
	}
	if moved != per["e:8848"] {
		t.Fatalf("moved %d, e owned %d", moved, per["e:8848"])
	}
	for m, c := range per {
		if c < n/5*8/10 || c > n/5*12/10 {
			t.Errorf("member %s owns %d of %d (want within 20%% of %d)", m, c, n, n/5)
		}
	}
	mp := NewMapper("a:8848", five)
	for i := 0; i < 100; i++ {
		ip := fmt.Sprintf("10.0.0.%d", i)
		o := Responsible(Tag(ip, 80), five)
		if got := mp.Responsible(ip, 80); (o == "a:8848") != (got == "") || (got != "" && got != o) {
			t.Fatalf("mapper %q for owner %q", got, o)
		}
	}
}
