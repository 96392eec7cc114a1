// Package backoff computes exponential retry delays with jitter.
package backoff

import (
	"math/rand"
	"time"
)

// Policy describes how delays grow between attempts.
type Policy struct {
	Base   time.Duration
	Max    time.Duration
	Factor float64
	Jitter float64
}

// Delay returns the wait before attempt n (starting at 1).
func (p Policy) Delay(n int, rng *rand.Rand) time.Duration {
	d := float64(p.Base)
	for i := 1; i < n; i++ {
		d *= p.Factor
		if time.Duration(d) > p.Max {
			d = float64(p.Max)
			break
		}
	}
	if p.Jitter > 0 {
		d += d * p.Jitter * (rng.Float64()*2 - 1)
	}
	return time.Duration(d)
}
