package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash"
	"strings"
	"time"
)

// Tokens are Nacos' own JWT form (plugin-default-impl NacosSignatureAlgorithm
// and NacosJwtParser, Nacos 2.5.1): a fixed header per algorithm, the
// payload {"sub":user,"exp":unixSeconds} and an HMAC signature, all
// base64url without padding. The algorithm follows the key length as in
// Nacos (HS256 below 384 bits, HS384 below 512, else HS512), so a Nacos
// server and a Ferry node configured with the same secret key accept each
// other's tokens.

// The header part of each algorithm, exactly as Nacos writes it.
const (
	hs256Header = "eyJhbGciOiJIUzI1NiJ9" // {"alg":"HS256"}
	hs384Header = "eyJhbGciOiJIUzM4NCJ9" // {"alg":"HS384"}
	hs512Header = "eyJhbGciOiJIUzUxMiJ9" // {"alg":"HS512"}
)

// MinKeyBytes is the shortest accepted secret key (RFC 7518 §3.2, as Nacos).
const MinKeyBytes = 32

// MaxTokenBytes bounds what ParseToken looks at: longer tokens are invalid.
const MaxTokenBytes = 4096

// Signer issues and verifies tokens with one secret key. It is immutable
// and safe for concurrent use.
type Signer struct {
	key    []byte
	header string
	newH   func() hash.Hash
}

// NewSigner builds a Signer; key must be at least MinKeyBytes long.
func NewSigner(key []byte) (*Signer, error) {
	if len(key) < MinKeyBytes {
		return nil, fmt.Errorf("%w: token key is %d bytes, need at least %d", ErrConfig, len(key), MinKeyBytes)
	}
	s := &Signer{key: append([]byte(nil), key...)}
	switch bits := len(key) * 8; {
	case bits < 384:
		s.header, s.newH = hs256Header, sha256.New
	case bits < 512:
		s.header, s.newH = hs384Header, sha512.New384
	default:
		s.header, s.newH = hs512Header, sha512.New
	}
	return s, nil
}

// Claims is what a valid token says.
type Claims struct {
	Username string
	// Expires is the token's exp (Unix seconds).
	Expires int64
}

type payload struct {
	Sub string `json:"sub"`
	Exp int64  `json:"exp"`
}

var b64 = base64.RawURLEncoding

// Issue makes a token for username valid until now+ttl (whole seconds, as
// Nacos).
func (s *Signer) Issue(username string, now time.Time, ttl time.Duration) string {
	body, _ := json.Marshal(payload{Sub: username, Exp: now.Unix() + int64(ttl/time.Second)})
	unsigned := s.header + "." + b64.EncodeToString(body)
	return unsigned + "." + s.sign(unsigned)
}

func (s *Signer) sign(unsigned string) string {
	m := hmac.New(s.newH, s.key)
	m.Write([]byte(unsigned))
	return b64.EncodeToString(m.Sum(nil))
}

// Parse verifies a token at time now. The errors are Nacos' messages:
// ErrNoUser for an empty token, ErrTokenInvalid for a malformed one,
// ErrBadSignature for a foreign key (or a forged payload), ErrTokenExpired
// once exp has passed. A token's exp second itself is still valid (Nacos
// compares exp >= now in seconds).
func (s *Signer) Parse(token string, now time.Time) (Claims, error) {
	if strings.TrimSpace(token) == "" {
		return Claims{}, ErrNoUser
	}
	if len(token) > MaxTokenBytes {
		return Claims{}, ErrTokenInvalid
	}
	h, rest, ok := strings.Cut(token, ".")
	if !ok {
		return Claims{}, ErrTokenInvalid
	}
	body, sig, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(sig, ".") {
		return Claims{}, ErrTokenInvalid
	}
	switch h {
	case hs256Header, hs384Header, hs512Header:
	default:
		return Claims{}, ErrUnsupportedAlg
	}
	if h != s.header {
		// Another algorithm means another key length: not our key.
		return Claims{}, ErrBadSignature
	}
	want := s.sign(h + "." + body)
	if !hmac.Equal([]byte(want), []byte(sig)) {
		return Claims{}, ErrBadSignature
	}
	raw, err := b64.DecodeString(body)
	if err != nil {
		return Claims{}, ErrTokenInvalid
	}
	var p payload
	if err := json.Unmarshal(raw, &p); err != nil || p.Sub == "" {
		return Claims{}, ErrTokenInvalid
	}
	if p.Exp < now.Unix() {
		return Claims{}, ErrTokenExpired
	}
	return Claims{Username: p.Sub, Expires: p.Exp}, nil
}

// TTLSeconds is the tokenTtl a login answers: seconds left until exp.
func (c Claims) TTLSeconds(now time.Time) int64 { return c.Expires - now.Unix() }

// ParseKey decodes a configured key: base64 (standard or URL alphabet,
// padded or not), as Nacos' nacos.core.auth.plugin.nacos.token.secret.key.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) < MinKeyBytes {
				return nil, fmt.Errorf("%w: token key decodes to %d bytes, need at least %d", ErrConfig, len(b), MinKeyBytes)
			}
			return b, nil
		}
	}
	return nil, fmt.Errorf("%w: token key is not base64 (%d characters)", ErrConfig, len(s))
}
