package schemas

import (
	"crypto/sha256"
	"encoding/binary"
	"time"
)

// RenewBefore is how long before expiry a certificate of the given lifetime
// is renewed, with cert-manager's semantics: renewBefore when it is set and
// shorter than the lifetime, else renewBeforePercentage of the lifetime when
// it is in (0, 100), else a third of the lifetime (renewal at 2/3).
func RenewBefore(lifetime time.Duration, renewBefore Duration, percentage *int) time.Duration {
	if rb, err := renewBefore.Parse(); err == nil && rb > 0 && rb < lifetime {
		return rb
	}
	if percentage != nil && *percentage > 0 && *percentage < 100 {
		// lifetime*percentage would overflow for lifetimes over about 3 years.
		p := time.Duration(*percentage)
		return lifetime/100*p + lifetime%100*p/100
	}
	return lifetime / 3
}

// RenewalTime is when a certificate valid from notBefore to notAfter is
// renewed, truncated to whole seconds so that a time stored in an annotation
// and read back gives the same decision.
func RenewalTime(notBefore, notAfter time.Time, renewBefore Duration, percentage *int) time.Time {
	rb := RenewBefore(notAfter.Sub(notBefore), renewBefore, percentage)
	return notAfter.Add(-rb).Truncate(time.Second)
}

// MaxJitter caps the spread of renewals; jitter is also at most a tenth of
// the renew-before window, so it never eats into the safety margin much.
const MaxJitter = time.Hour

// Jitter is a deterministic offset in [0, window) for a certificate ID: the
// same ID always gets the same offset, different IDs spread evenly, so
// thousands of certificates issued together do not renew in the same second.
func Jitter(id string, window time.Duration) time.Duration {
	if window <= 0 {
		return 0
	}
	sum := sha256.Sum256([]byte(id))
	return time.Duration(binary.BigEndian.Uint64(sum[:8]) % uint64(window))
}

// JitteredRenewalTime is RenewalTime moved earlier (never later) by the ID's
// jitter, within min(maxJitter, renewBefore/10). A maxJitter of 0 disables it.
func JitteredRenewalTime(id string, notBefore, notAfter time.Time, renewBefore Duration, percentage *int, maxJitter time.Duration) time.Time {
	rt := RenewalTime(notBefore, notAfter, renewBefore, percentage)
	window := min(maxJitter, RenewBefore(notAfter.Sub(notBefore), renewBefore, percentage)/10)
	return rt.Add(-Jitter(id, window)).Truncate(time.Second)
}
