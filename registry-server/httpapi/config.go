package httpapi

import (
	"errors"
	"fmt"
	"time"
)

// ErrConfig: a Config field is invalid.
var ErrConfig = errors.New("httpapi: invalid config")

// Config holds the HTTP API's limits and the values it advertises. The
// limits default to Nacos' own (ParamCheckRule), except MaxBodyBytes.
type Config struct {
	// MaxBodyBytes caps a request body (form parameters); larger bodies get
	// 413. Query strings are capped by the http.Server's MaxHeaderBytes.
	MaxBodyBytes int64
	// MaxMetadataLength caps an instance's or service's metadata: the sum
	// of the lengths (in characters) of all keys and values. Nacos: 1024.
	MaxMetadataLength int
	// MaxServiceNameLength, MaxGroupLength, MaxNamespaceLength,
	// MaxClusterLength and MaxIPLength cap those parameters (Nacos: 512,
	// 128, 64, 64, 128).
	MaxServiceNameLength int
	MaxGroupLength       int
	MaxNamespaceLength   int
	MaxClusterLength     int
	MaxIPLength          int
	// ClientBeatInterval is what beats answer in clientBeatInterval when
	// the instance sets no preserved.heart.beat.interval (Nacos: 5 s).
	ClientBeatInterval time.Duration
	// CacheMillis is the cacheMillis of instance lists (Nacos: 10000).
	CacheMillis int64
	// MaxOfflineTargets bounds how many instances one graceful-offline call
	// may touch (one Raft entry).
	MaxOfflineTargets int
	// ForwardTimeout bounds a 1.x write forwarded to the member responsible
	// for its client (Nacos' DistroFilter: 2 s to connect, 2 s to read).
	ForwardTimeout time.Duration
}

// DefaultConfig returns Nacos' limits and a 1 MiB body cap.
func DefaultConfig() Config {
	return Config{
		MaxBodyBytes:         1 << 20,
		MaxMetadataLength:    1024,
		MaxServiceNameLength: 512,
		MaxGroupLength:       128,
		MaxNamespaceLength:   64,
		MaxClusterLength:     64,
		MaxIPLength:          128,
		ClientBeatInterval:   5 * time.Second,
		CacheMillis:          10000,
		MaxOfflineTargets:    100000,
		ForwardTimeout:       4 * time.Second,
	}
}

// Validate names the first bad field.
func (c Config) Validate() error {
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"MaxBodyBytes", c.MaxBodyBytes},
		{"MaxMetadataLength", int64(c.MaxMetadataLength)},
		{"MaxServiceNameLength", int64(c.MaxServiceNameLength)},
		{"MaxGroupLength", int64(c.MaxGroupLength)},
		{"MaxNamespaceLength", int64(c.MaxNamespaceLength)},
		{"MaxClusterLength", int64(c.MaxClusterLength)},
		{"MaxIPLength", int64(c.MaxIPLength)},
		{"ClientBeatInterval", int64(c.ClientBeatInterval)},
		{"CacheMillis", c.CacheMillis},
		{"MaxOfflineTargets", int64(c.MaxOfflineTargets)},
		{"ForwardTimeout", int64(c.ForwardTimeout)},
	} {
		if f.v <= 0 {
			return fmt.Errorf("%w: %s must be > 0", ErrConfig, f.name)
		}
	}
	return nil
}
