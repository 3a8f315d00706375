package auth

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

var (
	keyA = bytes.Repeat([]byte("a"), 32)
	keyB = bytes.Repeat([]byte("b"), 32)
	t0   = time.Unix(1_800_000_000, 0)
)

func mustSigner(t testing.TB, key []byte) *Signer {
	t.Helper()
	s, err := NewSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A token as Nacos 2.5.1's NacosSignatureAlgorithm writes it for key
// "a"*32, user nacos, exp 1800018000 (computed by hand from its rules:
// fixed header, payload {"sub":...,"exp":...}, HMAC-SHA256, base64url).
func TestTokenFormatIsNacos(t *testing.T) {
	s := mustSigner(t, keyA)
	tok := s.Issue("nacos", t0, 18000*time.Second)
	parts := strings.Split(tok, ".")
	if len(parts) != 3 || parts[0] != "eyJhbGciOiJIUzI1NiJ9" {
		t.Fatalf("token %q", tok)
	}
	body, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if string(body) != `{"sub":"nacos","exp":1800018000}` {
		t.Fatalf("payload %s", body)
	}
	c, err := s.Parse(tok, t0.Add(18000*time.Second)) // exp itself is valid
	if err != nil || c.Username != "nacos" || c.TTLSeconds(t0) != 18000 {
		t.Fatalf("parse: %+v %v", c, err)
	}
	for bits, hdr := range map[int]string{384: hs384Header, 512: hs512Header} {
		s := mustSigner(t, bytes.Repeat([]byte("k"), bits/8))
		if got := strings.Split(s.Issue("u", t0, time.Hour), ".")[0]; got != hdr {
			t.Errorf("%d-bit key: header %s", bits, got)
		}
	}
}

func TestTokenBadInputs(t *testing.T) {
	a, b := mustSigner(t, keyA), mustSigner(t, keyB)
	good := a.Issue("alice", t0, time.Minute)
	parts := strings.Split(good, ".")
	forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"nacos","exp":1900000000}`)) + "." + parts[2]
	long := mustSigner(t, bytes.Repeat([]byte("k"), 64)).Issue("alice", t0, time.Minute)
	for _, c := range []struct {
		name, tok string
		at        time.Time
		want      error
	}{
		{"empty", "", t0, ErrNoUser},
		{"blank", "   ", t0, ErrNoUser},
		{"one part", "abc", t0, ErrTokenInvalid},
		{"four parts", good + ".x", t0, ErrTokenInvalid},
		{"unknown alg", "eyJhbGciOiJub25lIn0." + parts[1] + ".", t0, ErrUnsupportedAlg},
		{"other key", b.Issue("alice", t0, time.Minute), t0, ErrBadSignature},
		{"other key length", long, t0, ErrBadSignature},
		{"forged payload", forged, t0, ErrBadSignature},
		{"no signature", parts[0] + "." + parts[1] + ".", t0, ErrBadSignature},
		{"expired", good, t0.Add(61 * time.Second), ErrTokenExpired},
		{"huge", strings.Repeat("x", MaxTokenBytes+1), t0, ErrTokenInvalid},
	} {
		if _, err := a.Parse(c.tok, c.at); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	// A signed payload that is not the expected JSON is invalid, not a panic.
	unsigned := hs256Header + "." + base64.RawURLEncoding.EncodeToString([]byte(`[1,2]`))
	if _, err := a.Parse(unsigned+"."+a.sign(unsigned), t0); !errors.Is(err, ErrTokenInvalid) {
		t.Errorf("non-object payload: %v", err)
	}
	if _, err := NewSigner(keyA[:31]); !errors.Is(err, ErrConfig) {
		t.Errorf("short key: %v", err)
	}
	if _, err := ParseKey(base64.StdEncoding.EncodeToString(keyA[:16])); !errors.Is(err, ErrConfig) {
		t.Errorf("short base64 key: %v", err)
	}
	if k, err := ParseKey(base64.StdEncoding.EncodeToString(keyA)); err != nil || !bytes.Equal(k, keyA) {
		t.Errorf("ParseKey: %v", err)
	}
}

// FuzzParseToken: Parse never panics, and only the signer's own tokens for
// a non-empty user and a future exp are accepted.
func FuzzParseToken(f *testing.F) {
	s := mustSigner(f, keyA)
	f.Add(s.Issue("nacos", t0, time.Hour))
	f.Add(mustSigner(f, keyB).Issue("nacos", t0, time.Hour))
	f.Add("eyJhbGciOiJIUzI1NiJ9..")
	f.Add("a.b.c")
	f.Add("")
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := s.Parse(tok, t0)
		if err != nil {
			return
		}
		if c.Username == "" || c.Expires < t0.Unix() {
			t.Fatalf("accepted %q as %+v", tok, c)
		}
		parts := strings.Split(tok, ".")
		if s.sign(parts[0]+"."+parts[1]) != parts[2] {
			t.Fatalf("accepted a token with a wrong signature: %q", tok)
		}
	})
}
