package udppush

import (
	"errors"
	"fmt"
	"time"
)

// ErrConfig marks an invalid Config.
var ErrConfig = errors.New("udppush: invalid config")

// Config tunes the UDP push to Nacos 1.x clients. Start from DefaultConfig.
type Config struct {
	// Enabled turns UDP push on; off, instance lists record no subscriber.
	Enabled bool
	// Host is the address the push socket binds (the node's bind host).
	Host string
	// Port is the socket's local port; 0 picks a free one (as Nacos'
	// UdpConnector does). Acks come back to it.
	Port int
	// AckTimeout is how long a push waits for its ack before it is sent
	// again (Nacos: 10 s; see docs/nacos-udp-push.md for why Ferry waits 1 s).
	AckTimeout time.Duration
	// Retries is how many times an unacknowledged push is sent again before
	// it is dropped (Nacos: 1). A later change pushes afresh.
	Retries int
	// SubscriberTTL: a subscription not refreshed by an instance-list poll
	// for longer is forgotten (Nacos 2.x expires an ip:port client with no
	// instances 30 s after its last update).
	SubscriberTTL time.Duration
	// SweepInterval is how often expired subscriptions are looked for.
	SweepInterval time.Duration
	// MaxPerIP bounds the subscriptions (udp port × service) one source
	// address may hold; polls beyond it are answered but not subscribed.
	MaxPerIP int
	// MaxSubscribers bounds all subscriptions of the node.
	MaxSubscribers int
	// CompressThreshold: pushes of this many bytes or more are gzipped
	// (Nacos: 1024).
	CompressThreshold int
}

// DefaultConfig returns Nacos' rules with Ferry's retry timing and bounds.
func DefaultConfig() Config {
	return Config{
		Enabled:           true,
		Host:              "127.0.0.1",
		AckTimeout:        time.Second,
		Retries:           2,
		SubscriberTTL:     30 * time.Second,
		SweepInterval:     time.Second,
		MaxPerIP:          4096,
		MaxSubscribers:    200000,
		CompressThreshold: DefaultCompressThreshold,
	}
}

// Validate names the first bad field.
func (c Config) Validate() error {
	switch {
	case c.Port < 0 || c.Port > 65535:
		return fmt.Errorf("%w: Port %d", ErrConfig, c.Port)
	case c.AckTimeout <= 0:
		return fmt.Errorf("%w: AckTimeout %v must be > 0", ErrConfig, c.AckTimeout)
	case c.Retries < 0:
		return fmt.Errorf("%w: Retries %d must be ≥ 0", ErrConfig, c.Retries)
	case c.SubscriberTTL <= 0:
		return fmt.Errorf("%w: SubscriberTTL %v must be > 0", ErrConfig, c.SubscriberTTL)
	case c.SweepInterval <= 0:
		return fmt.Errorf("%w: SweepInterval %v must be > 0", ErrConfig, c.SweepInterval)
	case c.MaxPerIP <= 0:
		return fmt.Errorf("%w: MaxPerIP %d must be > 0", ErrConfig, c.MaxPerIP)
	case c.MaxSubscribers <= 0:
		return fmt.Errorf("%w: MaxSubscribers %d must be > 0", ErrConfig, c.MaxSubscribers)
	case c.CompressThreshold < 0:
		return fmt.Errorf("%w: CompressThreshold %d must be ≥ 0", ErrConfig, c.CompressThreshold)
	}
	return nil
}
