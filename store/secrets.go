package store

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Registry cluster passwords are stored encrypted (AES-256-GCM) as
// "enc:v1:<key id>:<base64 nonce+ciphertext>", the key id being the first
// 8 hex digits of the key's SHA-256. The key comes from the environment
// (FERRY_STORE_KEY, base64 of 32 bytes) or a key file (FERRY_STORE_KEY_FILE
// holding the same), never from the database. Rotation: start every worker
// with the new key in FERRY_STORE_KEY and the old one(s) in
// FERRY_STORE_OLD_KEYS (comma separated); Open re-encrypts every password
// with the new key; once all workers run with the new key, drop the old.

// Environment variables read by SecretsFromEnv.
const (
	EnvStoreKey     = "FERRY_STORE_KEY"
	EnvStoreKeyFile = "FERRY_STORE_KEY_FILE"
	EnvStoreOldKeys = "FERRY_STORE_OLD_KEYS"
)

// Errors of the secrets.
var (
	ErrNoSecretKey = errors.New("store: no key to encrypt registry passwords (set " + EnvStoreKey + " or " + EnvStoreKeyFile + ")")
	ErrSecret      = errors.New("store: stored password cannot be decrypted")
)

// MaxPasswordLen keeps an encrypted password within the column (256).
const MaxPasswordLen = 128

const sealedPrefix = "enc:v1:"

// Secrets encrypts and decrypts stored passwords. Immutable.
type Secrets struct {
	primary string                 // key id
	aeads   map[string]cipher.AEAD // key id → cipher (primary and old keys)
}

// NewSecrets builds Secrets from a primary 32-byte key and old keys that
// are only decrypted with.
func NewSecrets(primary []byte, old ...[]byte) (*Secrets, error) {
	s := &Secrets{aeads: map[string]cipher.AEAD{}}
	for i, k := range append([][]byte{primary}, old...) {
		if len(k) != 32 {
			return nil, fmt.Errorf("%w: secret key must be 32 bytes, got %d", ErrInvalid, len(k))
		}
		b, err := aes.NewCipher(k)
		if err != nil {
			return nil, err
		}
		g, err := cipher.NewGCM(b)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(k)
		id := hex.EncodeToString(sum[:4])
		if i == 0 {
			s.primary = id
		}
		s.aeads[id] = g
	}
	return s, nil
}

// ParseSecretKey decodes a base64 32-byte key.
func ParseSecretKey(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != 32 {
		return nil, fmt.Errorf("%w: secret key must be base64 of 32 bytes", ErrInvalid)
	}
	return b, nil
}

// SecretsFromEnv reads the keys from getenv (os.Getenv in main): nil, nil
// when none is set.
func SecretsFromEnv(getenv func(string) string) (*Secrets, error) {
	raw := getenv(EnvStoreKey)
	if raw == "" {
		if f := getenv(EnvStoreKeyFile); f != "" {
			b, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("store: %s: %w", EnvStoreKeyFile, err)
			}
			raw = string(b)
		}
	}
	if raw == "" {
		return nil, nil
	}
	primary, err := ParseSecretKey(raw)
	if err != nil {
		return nil, err
	}
	var old [][]byte
	for _, o := range strings.Split(getenv(EnvStoreOldKeys), ",") {
		if o = strings.TrimSpace(o); o != "" {
			k, err := ParseSecretKey(o)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", EnvStoreOldKeys, err)
			}
			old = append(old, k)
		}
	}
	return NewSecrets(primary, old...)
}

// WithSecrets gives the store its password keys.
func WithSecrets(s *Secrets) Option { return func(o *openOptions) { o.secrets = s } }

// seal encrypts a password ("" stays "").
func (s *Secrets) seal(plain string) (string, error) {
	if plain == "" {
		return "", nil
	}
	if len(plain) > MaxPasswordLen {
		return "", fmt.Errorf("%w registry cluster password: longer than %d bytes", ErrInvalid, MaxPasswordLen)
	}
	if s == nil {
		return "", ErrNoSecretKey
	}
	g := s.aeads[s.primary]
	nonce := make([]byte, g.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	ct := g.Seal(nonce, nonce, []byte(plain), []byte(s.primary))
	return sealedPrefix + s.primary + ":" + base64.StdEncoding.EncodeToString(ct), nil
}

// open decrypts a stored password; a row written before encryption (no
// prefix) is returned as is. current is false when the value should be
// re-sealed with the primary key.
func (s *Secrets) open(stored string) (plain string, current bool, err error) {
	rest, ok := strings.CutPrefix(stored, sealedPrefix)
	if !ok {
		return stored, stored == "", nil
	}
	if s == nil {
		return "", false, ErrNoSecretKey
	}
	id, b64, ok := strings.Cut(rest, ":")
	g := s.aeads[id]
	if !ok || g == nil {
		return "", false, fmt.Errorf("%w: encrypted with key %s, which is not configured (%s)", ErrSecret, id, EnvStoreOldKeys)
	}
	ct, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(ct) < g.NonceSize() {
		return "", false, ErrSecret
	}
	pt, err := g.Open(nil, ct[:g.NonceSize()], ct[g.NonceSize():], []byte(id))
	if err != nil {
		return "", false, ErrSecret
	}
	return string(pt), id == s.primary, nil
}

func (s *Store) sealCluster(c *RegistryCluster) (restore func(), err error) {
	plain := c.Password
	sealed, err := s.secrets.seal(plain)
	if err != nil {
		return nil, err
	}
	c.Password = sealed
	return func() { c.Password = plain }, nil
}

func (s *Store) openCluster(c *RegistryCluster) error {
	p, _, err := s.secrets.open(c.Password)
	if err != nil {
		return fmt.Errorf("registry cluster %s: %w", c.Name, err)
	}
	c.Password = p
	return nil
}

// resealPasswords re-encrypts every password that is plain (written before
// encryption) or sealed with an old key, with the primary key.
func (s *Store) resealPasswords(ctx context.Context) error {
	if s.secrets == nil {
		return nil
	}
	var rows []RegistryCluster
	if err := s.q(ctx).Select("id", "name", "password").Find(&rows).Error; err != nil {
		return s.wrap(err, "read registry passwords")
	}
	n := 0
	for _, r := range rows {
		plain, current, err := s.secrets.open(r.Password)
		if err != nil {
			return fmt.Errorf("registry cluster %s: %w", r.Name, err)
		}
		if current {
			continue
		}
		sealed, err := s.secrets.seal(plain)
		if err != nil {
			return err
		}
		if err := s.q(ctx).Model(&RegistryCluster{}).Where("id = ?", r.ID).Update("password", sealed).Error; err != nil {
			return s.wrap(err, "re-encrypt registry password")
		}
		n++
	}
	if n > 0 {
		s.log.Info("registry passwords re-encrypted with the current key", "clusters", n)
	}
	return nil
}
