package registryclient

import (
	"math/rand/v2"
	"time"
)

// backoff is exponential backoff with full jitter in [d/2, d]. Not safe for
// concurrent use; owned by the goroutine that retries.
type backoff struct {
	min, max time.Duration
	cur      time.Duration
	rnd      func() float64 // [0,1)
}

func newBackoff(min, max time.Duration, rnd func() float64) *backoff {
	if rnd == nil {
		rnd = rand.Float64
	}
	return &backoff{min: min, max: max, rnd: rnd}
}

// next returns the wait before the next attempt and doubles the base.
func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur *= 2
		if b.cur > b.max {
			b.cur = b.max
		}
	}
	half := b.cur / 2
	return half + time.Duration(b.rnd()*float64(b.cur-half))
}

// reset goes back to the minimum after a success.
func (b *backoff) reset() { b.cur = 0 }
