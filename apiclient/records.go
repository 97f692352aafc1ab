package apiclient

import (
	"container/heap"
	"math"
	"slices"
	"strings"
	"sync"
	"time"
)

// Record is what the exporter holds of each active token: 16 bytes, and no
// part of the token itself. A 64-bit hash tells tokens apart (two of a
// million tokens share one with a chance of about 3 in 100 million), and
// the two dates give every count the metrics need: active, without expiry,
// seconds until expiry, ttl, and creations by createdAt.
type Record struct {
	// Hash of the token string, with the client's seed; 63 bits, the
	// lowest one being for the lister's own use.
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

// TokenList is the result of a listing. It is shaped for the collector:
//
//   - Records holds every active token once, 16 bytes each, in no
//     particular order: counts, expiries, ttls and creation times come from
//     it without any token string;
//   - Values holds the token strings the collector may publish, and only
//     those: up to Keep tokens that never expire (the oldest) and the Keep
//     expiring tokens closest to expiry, each once, in no particular order.
//     A token in Values is also in Records.
//
// The Records of a TokenList are valid until the next call of the lister
// that returned it, which reuses them: a full listing fills them again, an
// incremental one updates them in place (they are its kept state). A
// collector must be done with a list before it asks for the next.
type TokenList struct {
	Records []Record
	Values  []Token
	// Requests is the number of list requests the listing made.
	Requests int
	// FetchedAt is when the listing finished.
	FetchedAt time.Time
}

// keeper collects the token values a listing may publish: the keep
// expiring tokens closest to expiry and the keep oldest tokens without
// expiry, each once. It keeps, as tokens come and go, the invariant the
// collector relies on: every token it does not keep expires no sooner than
// every expiring token it keeps (and was created no earlier than every
// token without expiry it keeps). It is safe for concurrent use.
type keeper struct {
	keep int

	mu      sync.Mutex
	soonest tokenHeap // max-heap on Expires: the root is evicted first
	oldest  tokenHeap // max-heap on Created among tokens without expiry
	kept    map[uint64]struct{}
	// Tokens that expire at or after expiryHorizon, or were created at or
	// after createdHorizon, may have been turned away; all others offered
	// were kept. Past any date at first.
	expiryHorizon, createdHorizon uint64
}

func newKeeper(keep int) *keeper {
	return &keeper{
		keep:           keep,
		soonest:        tokenHeap{later: func(a, b Record) bool { return a.Expires > b.Expires }},
		oldest:         tokenHeap{later: func(a, b Record) bool { return a.Created > b.Created }},
		kept:           map[uint64]struct{}{},
		expiryHorizon:  math.MaxUint32 + 1,
		createdHorizon: math.MaxUint32 + 1,
	}
}

// offer considers the tokens of one page. Values are copied when kept, so
// that a kept token does not pin its page's memory.
func (k *keeper) offer(tokens []Token) {
	if k.keep <= 0 {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, t := range tokens {
		if _, dup := k.kept[t.Hash]; dup {
			continue
		}
		h, key, horizon := &k.soonest, t.Expires, &k.expiryHorizon
		if t.NeverExpires() {
			h, key, horizon = &k.oldest, t.Created, &k.createdHorizon
		}
		if uint64(key) >= *horizon {
			continue
		}
		t.Value = strings.Clone(t.Value)
		heap.Push(h, t)
		k.kept[t.Hash] = struct{}{}
		if len(h.tokens) > k.keep {
			evicted := heap.Pop(h).(Token)
			delete(k.kept, evicted.Hash)
			*horizon = min(*horizon, uint64(evictedKey(evicted)))
		}
	}
}

func evictedKey(t Token) uint32 {
	if t.NeverExpires() {
		return t.Created
	}
	return t.Expires
}

// drop forgets the tokens for which gone is true.
func (k *keeper) drop(gone func(Record) bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, h := range []*tokenHeap{&k.soonest, &k.oldest} {
		n := len(h.tokens)
		h.tokens = slices.DeleteFunc(h.tokens, func(t Token) bool {
			if gone(t.Record) {
				delete(k.kept, t.Hash)
				return true
			}
			return false
		})
		if len(h.tokens) != n {
			heap.Init(h)
		}
	}
}

// values returns what was kept.
func (k *keeper) values() []Token {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make([]Token, 0, len(k.soonest.tokens)+len(k.oldest.tokens))
	out = append(out, k.soonest.tokens...)
	return append(out, k.oldest.tokens...)
}

type tokenHeap struct {
	tokens []Token
	later  func(a, b Record) bool
}

func (h tokenHeap) Len() int           { return len(h.tokens) }
func (h tokenHeap) Less(i, j int) bool { return h.later(h.tokens[i].Record, h.tokens[j].Record) }
func (h tokenHeap) Swap(i, j int)      { h.tokens[i], h.tokens[j] = h.tokens[j], h.tokens[i] }
func (h *tokenHeap) Push(x any)        { h.tokens = append(h.tokens, x.(Token)) }
func (h *tokenHeap) Pop() any {
	t := h.tokens[len(h.tokens)-1]
	h.tokens = h.tokens[:len(h.tokens)-1]
	return t
}
