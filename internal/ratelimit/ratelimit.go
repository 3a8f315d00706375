// Package ratelimit is the one token bucket of the project, keyed (per
// client IP, per user) and bounded in memory. It is deterministic: callers
// pass the time in, so tests drive it without sleeping.
package ratelimit

import (
	"sync"
	"time"
)

// Keyed holds one token bucket per key: Rate tokens a second, up to Burst.
// A key unseen for long enough to refill completely is forgotten; when
// MaxKeys buckets exist the full ones are dropped first and, if none is
// full, a new key is refused (Allow false), which keeps memory bounded
// under a flood of distinct keys. Safe for concurrent use (one mutex).
type Keyed struct {
	rate    float64
	burst   float64
	maxKeys int

	mu      sync.Mutex // guards buckets
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// NewKeyed makes a keyed limiter; rate <= 0 means unlimited.
func NewKeyed(rate float64, burst, maxKeys int) *Keyed {
	if burst < 1 {
		burst = 1
	}
	if maxKeys < 1 {
		maxKeys = 1
	}
	return &Keyed{rate: rate, burst: float64(burst), maxKeys: maxKeys, buckets: map[string]*bucket{}}
}

// Allow takes one token from key's bucket at now and reports whether
// there was one.
func (k *Keyed) Allow(key string, now time.Time) bool {
	if k == nil || k.rate <= 0 {
		return true
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	b := k.buckets[key]
	if b == nil {
		if len(k.buckets) >= k.maxKeys {
			k.pruneLocked(now)
			if len(k.buckets) >= k.maxKeys {
				return false
			}
		}
		b = &bucket{tokens: k.burst, last: now}
		k.buckets[key] = b
	}
	k.refill(b, now)
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

func (k *Keyed) refill(b *bucket, now time.Time) {
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(k.burst, b.tokens+d.Seconds()*k.rate)
		b.last = now
	}
}

// pruneLocked forgets buckets that are full again (their keys behave as new).
func (k *Keyed) pruneLocked(now time.Time) {
	for key, b := range k.buckets {
		k.refill(b, now)
		if b.tokens >= k.burst {
			delete(k.buckets, key)
		}
	}
}

// Len is the number of tracked keys.
func (k *Keyed) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.buckets)
}
