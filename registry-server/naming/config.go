package naming

import (
	"errors"
	"fmt"
	"time"
)

// Config tunes a Registry. The zero value is not valid: start from
// DefaultConfig.
type Config struct {
	// CacheMillis is ServiceInfo.cacheMillis (Nacos defaultPushCacheMillis).
	CacheMillis int64
	// BeatInterval is the beat interval told to beat-kept clients when their
	// instance has no preserved.heart.beat.interval (Nacos clientBeatInterval).
	BeatInterval time.Duration
	// BeatTimeout: a beat-kept instance without beats for longer turns
	// unhealthy (preserved.heart.beat.timeout overrides it per instance).
	BeatTimeout time.Duration
	// DeleteTimeout: a beat-kept instance without beats for longer is removed
	// (preserved.ip.delete.timeout overrides it per instance).
	DeleteTimeout time.Duration
	// EmptyServiceTTL: a service without instances, subscribers' interest
	// aside, is forgotten after this long (Nacos EmptyServiceAutoCleanerV2).
	// Services with metadata from Raft are kept.
	EmptyServiceTTL time.Duration

	// Limits; a request over one fails with ErrLimitExceeded.

	// MaxBatch bounds the instances of one batch registration.
	MaxBatch int
	// MaxNameLen bounds namespace, group, service and cluster names and ips.
	MaxNameLen int
	// MaxMetadataEntries bounds one instance's metadata entries.
	MaxMetadataEntries int
	// MaxMetadataBytes bounds one instance's metadata (keys plus values).
	MaxMetadataBytes int
}

// DefaultConfig returns Nacos' defaults and Ferry's limits.
func DefaultConfig() Config {
	return Config{
		CacheMillis:        10000,
		BeatInterval:       5 * time.Second,
		BeatTimeout:        15 * time.Second,
		DeleteTimeout:      30 * time.Second,
		EmptyServiceTTL:    60 * time.Second,
		MaxBatch:           10000,
		MaxNameLen:         512,
		MaxMetadataEntries: 256,
		MaxMetadataBytes:   64 << 10,
	}
}

// ErrConfig marks an invalid Config.
var ErrConfig = errors.New("naming: invalid config")

// Validate names the first bad field.
func (c Config) Validate() error {
	switch {
	case c.CacheMillis < 0:
		return fmt.Errorf("%w: CacheMillis %d < 0", ErrConfig, c.CacheMillis)
	case c.BeatInterval <= 0:
		return fmt.Errorf("%w: BeatInterval %v must be > 0", ErrConfig, c.BeatInterval)
	case c.BeatTimeout < c.BeatInterval:
		return fmt.Errorf("%w: BeatTimeout %v < BeatInterval %v", ErrConfig, c.BeatTimeout, c.BeatInterval)
	case c.DeleteTimeout < c.BeatTimeout:
		return fmt.Errorf("%w: DeleteTimeout %v < BeatTimeout %v", ErrConfig, c.DeleteTimeout, c.BeatTimeout)
	case c.EmptyServiceTTL <= 0:
		return fmt.Errorf("%w: EmptyServiceTTL %v must be > 0", ErrConfig, c.EmptyServiceTTL)
	case c.MaxBatch <= 0:
		return fmt.Errorf("%w: MaxBatch %d must be > 0", ErrConfig, c.MaxBatch)
	case c.MaxNameLen <= 0:
		return fmt.Errorf("%w: MaxNameLen %d must be > 0", ErrConfig, c.MaxNameLen)
	case c.MaxMetadataEntries <= 0:
		return fmt.Errorf("%w: MaxMetadataEntries %d must be > 0", ErrConfig, c.MaxMetadataEntries)
	case c.MaxMetadataBytes <= 0:
		return fmt.Errorf("%w: MaxMetadataBytes %d must be > 0", ErrConfig, c.MaxMetadataBytes)
	}
	return nil
}
