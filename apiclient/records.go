package apiclient

import (
	"math"
	"time"
)

// Record is what the exporter holds of each active token: 16 bytes, and no
// part of the token itself. A 64-bit hash tells tokens apart (two of a
// million tokens share one with a chance of about 3 in 100 million), and
// the two dates give every count the metrics need: active, without expiry,
// seconds until expiry, ttl, and creations by createdAt.
type Record struct {
	// Hash of the token string, with the client's seed: the same token
	// has the same Hash in every page one Client reads.
	Hash uint64
	// Created is createdAt in Unix seconds.
	Created uint32
	// Expires is expiresAt in Unix seconds; 0 for a token that never expires.
	Expires uint32
}

// CreatedAt is when the token was created.
func (r Record) CreatedAt() time.Time { return time.Unix(int64(r.Created), 0).UTC() }

// NeverExpires reports whether the token has no expiry (ttl 0).
func (r Record) NeverExpires() bool { return r.Expires == 0 }

// ExpiresAt is the zero time for a token that never expires.
func (r Record) ExpiresAt() time.Time {
	if r.Expires == 0 {
		return time.Time{}
	}
	return time.Unix(int64(r.Expires), 0).UTC()
}

// TTL is the token's time to live, expiresAt less createdAt; 0 for a token
// that never expires.
func (r Record) TTL() time.Duration {
	if r.Expires == 0 || r.Expires < r.Created {
		return 0
	}
	return time.Duration(r.Expires-r.Created) * time.Second
}

// ActiveAt reports whether the token has not expired by t.
func (r Record) ActiveAt(t time.Time) bool {
	return r.Expires == 0 || int64(r.Expires) > t.Unix()
}

// unixSeconds saturates t to the uint32 range: api.video's dates are whole
// seconds, and a date past 2106 only ever means "far in the future".
func unixSeconds(t time.Time) uint32 {
	s := t.Unix()
	switch {
	case s <= 0:
		return 1 // 0 means no expiry
	case s >= math.MaxUint32:
		return math.MaxUint32
	}
	return uint32(s)
}

// Token is a token with its value: the exporter keeps the values only of
// the tokens it may publish. Value is a credential: do not log or publish
// it whole.
type Token struct {
	Value string
	Record
}

// ID tells tokens apart: the same token has the same ID in every page one
// Client reads.
func (r Record) ID() uint64 { return r.Hash }
