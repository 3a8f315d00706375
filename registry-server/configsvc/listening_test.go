package configsvc

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseListeningConfigs(t *testing.T) {
	got, err := ParseListeningConfigs("a\x02G\x02m1\x01b\x02G\x02\x02ns\x01a\x02G\x02m2\x01")
	if err != nil {
		t.Fatal(err)
	}
	want := []ListenContext{{Key: Key{DataID: "a", Group: "G"}, MD5: "m1"}, {Key: Key{DataID: "b", Group: "G", Tenant: "ns"}}}
	if !slices.Equal(got, want) {
		t.Fatalf("got %+v", got)
	}
	if _, err := ParseListeningConfigs(strings.Repeat("a\x02G\x02m\x01", MaxListeningConfigs+1)); !errors.Is(err, ErrInvalidParam) {
		t.Fatalf("too many: %v", err)
	}
}

func FuzzParseListeningConfigs(f *testing.F) {
	for _, s := range []string{"", "a\x02G\x02m\x01", "a\x02G\x02m\x02t\x01b\x02G\x02\x01", "\x01", "a\x02\x02\x01", "a\x02G\x02m", "a\x02G\x02m\x02t\x02x\x01"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseListeningConfigs(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidParam) || got != nil {
				t.Fatalf("error %v with result %v", err, got)
			}
			return
		}
		if len(got) == 0 {
			t.Fatal("no error and nothing parsed")
		}
		seen := map[Key]bool{}
		keys := make([]Key, 0, len(got))
		for _, c := range got {
			if err := ValidateKey(c.Key); err != nil {
				t.Fatalf("invalid key accepted: %v", err)
			}
			if seen[c.Key] {
				t.Fatalf("duplicate %v", c.Key)
			}
			seen[c.Key] = true
			keys = append(keys, c.Key)
		}
		// The answer encoding round-trips.
		back, err := DecodeChanged(EncodeChanged(keys))
		if err != nil || !slices.Equal(back, keys) {
			t.Fatalf("round trip %v → %v (%v)", keys, back, err)
		}
	})
}
