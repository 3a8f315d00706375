package configsvc

import (
	"fmt"
	"time"
)

// Config tunes the config service.
type Config struct {
	// MaxContentBytes bounds one config's content (UTF-8 bytes). Nacos'
	// default (nacos.config.maxContent... 100 KiB) is ours: 102400.
	MaxContentBytes int
	// HistoryMax is how many previous versions are kept per config (10).
	HistoryMax int
	// PushTimeout bounds the wait for a client's ack of one
	// ConfigChangeNotifyRequest (3 s).
	PushTimeout time.Duration
	// PushRetries is how many times a push that timed out or found the
	// send queue full is tried again, while the connection still listens (3).
	PushRetries int
	// PushRetryDelay is the pause before a retry (500 ms).
	PushRetryDelay time.Duration
	// LongPollDelay is subtracted from the client's Long-Pulling-Timeout so
	// the answer arrives before the client gives up (Nacos: 500 ms).
	LongPollDelay time.Duration
	// MaxLongPoll caps a long poll's hold (Nacos clients ask 30 s; 120 s).
	MaxLongPoll time.Duration
}

// DefaultConfig returns the defaults documented on each field.
func DefaultConfig() Config {
	return Config{
		MaxContentBytes: 100 * 1024,
		HistoryMax:      10,
		PushTimeout:     3 * time.Second,
		PushRetries:     3,
		PushRetryDelay:  500 * time.Millisecond,
		LongPollDelay:   500 * time.Millisecond,
		MaxLongPoll:     120 * time.Second,
	}
}

// Validate names the first bad field.
func (c Config) Validate() error {
	switch {
	case c.MaxContentBytes <= 0:
		return fmt.Errorf("%w: MaxContentBytes must be > 0", ErrConfig)
	case c.HistoryMax < 0:
		return fmt.Errorf("%w: HistoryMax must be >= 0", ErrConfig)
	case c.PushTimeout <= 0:
		return fmt.Errorf("%w: PushTimeout must be > 0", ErrConfig)
	case c.PushRetries < 0:
		return fmt.Errorf("%w: PushRetries must be >= 0", ErrConfig)
	case c.PushRetryDelay < 0:
		return fmt.Errorf("%w: PushRetryDelay must be >= 0", ErrConfig)
	case c.LongPollDelay < 0:
		return fmt.Errorf("%w: LongPollDelay must be >= 0", ErrConfig)
	case c.MaxLongPoll <= 0:
		return fmt.Errorf("%w: MaxLongPoll must be > 0", ErrConfig)
	}
	return nil
}
