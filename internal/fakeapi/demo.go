package fakeapi

import (
	"time"
)

// Demo account shape: a few hundred tokens, some without expiry, and new
// tokens with lives of minutes, so that a newcomer sees the numbers move.
const (
	demoTokens        = 300
	demoWithoutExpiry = 24
	demoEvery         = 5 * time.Second
)

// NewDemo starts a fake with a living account: tokens are created every few
// seconds and expire over time. The exporter's --demo mode serves it.
func NewDemo() *Server {
	s := NewServer(Options{Tokens: demoTokens, WithoutExpiry: demoWithoutExpiry, Seed: uint64(time.Now().UnixNano())})
	// Some of the initial tokens expire within the first half hour.
	s.mu.Lock()
	for i := range s.tokens {
		if s.tokens[i].TTL != 0 && i%5 == 0 {
			s.tokens[i].TTL = 120 + s.rng.IntN(1800)
		}
	}
	s.pruneAt = time.Time{}
	s.mu.Unlock()
	go s.churn(demoEvery)
	return s
}

// churn creates a token on every tick, mostly short-lived, now and then one
// that never expires, until the server closes.
func (s *Server) churn(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for n := 0; ; n++ {
		select {
		case <-s.closed:
			return
		case <-t.C:
		}
		s.mu.Lock()
		ttl := 60 + s.rng.IntN(900)
		if n%40 == 39 {
			ttl = 0
		} else if n%7 == 0 {
			ttl = 3600 + s.rng.IntN(7*24*3600)
		}
		s.mu.Unlock()
		s.AddTokens(1, ttl)
	}
}
