package mqtt

import (
	"math/rand/v2"
	"time"
)

// backoff is the reconnect delay before attempt n (0-based): uniform in
// [0, min(max, min·2ⁿ)]. See the package doc for why full jitter.
func backoff(n int, lo, hi time.Duration, r *rand.Rand) time.Duration {
	ceil := lo
	for i := 0; i < n && ceil < hi; i++ {
		ceil *= 2
	}
	if ceil > hi {
		ceil = hi
	}
	if ceil <= 0 {
		return 0
	}
	return time.Duration(r.Int64N(int64(ceil) + 1))
}
