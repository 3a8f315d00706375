package registryserver

import (
	"errors"
	"strings"
	"testing"

	"github.com/ferrysync/ferry/registry-server/raftstore"
)

// TestPlanMembers: what a membership change adds and removes, and the
// changes refused (a majority of the voters removed at once, too few
// serving voters left).
func TestPlanMembers(t *testing.T) {
	v := func(ids ...string) []raftstore.Server {
		var out []raftstore.Server
		for _, id := range ids {
			out = append(out, raftstore.Server{ID: id, Voter: !strings.HasPrefix(id, "n")})
		}
		return out
	}
	up := func(down ...string) func(string) bool {
		return func(m string) bool {
			for _, d := range down {
				if d == m {
					return false
				}
			}
			return true
		}
	}
	for _, tc := range []struct {
		name        string
		cur         []raftstore.Server
		desired     []string
		serving     func(string) bool
		add, remove string
		wantErr     string
	}{
		{"add one", v("a", "b", "c"), []string{"a", "b", "c", "d"}, up(), "d", "", ""},
		{"add two", v("a", "b", "c"), []string{"a", "b", "c", "d", "e"}, up(), "d,e", "", ""},
		{"remove one", v("a", "b", "c"), []string{"a", "b"}, up(), "", "c", ""},
		{"remove a down one", v("a", "b", "c"), []string{"a", "b"}, up("c"), "", "c", ""},
		{"replace one", v("a", "b", "c"), []string{"a", "b", "d"}, up(), "d", "c", ""},
		{"remove a non-voter", v("a", "b", "c", "nd"), []string{"a", "b", "c"}, up(), "", "nd", ""},
		{"nothing", v("a", "b", "c"), []string{"c", "b", "a"}, up(), "", "", ""},
		{"remove two of three", v("a", "b", "c"), []string{"a"}, up(), "", "", "keeps 1 of the 3 voters, fewer than their quorum 2"},
		{"remove three of five", v("a", "b", "c", "d", "e"), []string{"a", "b"}, up(), "", "", "keeps 2 of the 5 voters"},
		{"remove two of five", v("a", "b", "c", "d", "e"), []string{"a", "b", "c"}, up(), "", "d,e", ""},
		{"none kept", v("a", "b", "c"), []string{"x", "y"}, up(), "", "", "keeps none of the 3 voters"},
		{"too few serving", v("a", "b", "c"), []string{"a", "b"}, up("b"), "", "", "1 of its 2 voters would be serving, fewer than its quorum 2"},
		{"remove the healthy one", v("a", "b", "c", "d"), []string{"a", "b", "d"}, up("b", "d"), "", "", "1 of its 3 voters would be serving"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			add, remove, err := planMembers(tc.cur, tc.desired, tc.serving)
			switch {
			case tc.wantErr != "":
				if !errors.Is(err, ErrMembers) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
			case err != nil:
				t.Fatal(err)
			case strings.Join(add, ",") != tc.add || strings.Join(remove, ",") != tc.remove:
				t.Fatalf("add %v remove %v, want %q %q", add, remove, tc.add, tc.remove)
			}
		})
	}
}
