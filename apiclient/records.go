package apiclient

import (
	"cmp"
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
//     those: the Keep tokens that come first in the order of publication
//     (see Before): the tokens that never expire, oldest first, then the
//     expiring tokens, closest to expiry first. Each is there once, in no
//     particular order. A token in Values is also in Records.
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

// ID is the record's hash without the bit a lister uses for itself: the
// same token has the same ID in every listing of one client.
func (r Record) ID() uint64 { return r.Hash &^ 1 }

// rank places a token in the order of publication; see Before.
type rank struct{ key, id uint64 }

func (r Record) rank() rank {
	if r.NeverExpires() {
		return rank{uint64(r.Created), r.ID()}
	}
	return rank{1<<32 | uint64(r.Expires), r.ID()}
}

func (a rank) compare(b rank) int { return cmp.Or(cmp.Compare(a.key, b.key), cmp.Compare(a.id, b.id)) }

// Before orders tokens for publication when per-token series are capped:
// every token that never expires, oldest first, comes before every
// expiring token, and expiring tokens come closest to expiry first. Tokens
// created (or expiring) in the same second are ordered by ID, so that the
// order is total and the choice under a cap does not depend on the order
// in which a listing saw them. It returns a negative number when a comes
// first, a positive one when b does, and 0 for the same token.
func Before(a, b Record) int { return a.rank().compare(b.rank()) }

// keeper collects the token values a listing may publish: the keep tokens
// first in the order of publication (Before), each once. It keeps, as
// tokens come and go, the invariant the collector relies on: every token
// it does not keep comes after every token it keeps. It is safe for
// concurrent use.
type keeper struct {
	keep int

	mu   sync.Mutex
	kept tokenHeap // max-heap in the order of publication: the root is evicted first
	ids  map[uint64]struct{}
	// Tokens that rank at or after horizon may have been turned away; all
	// others offered were kept. After any token at first.
	horizon rank
}

func newKeeper(keep int) *keeper {
	return &keeper{
		keep:    keep,
		ids:     map[uint64]struct{}{},
		horizon: rank{math.MaxUint64, math.MaxUint64},
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
		if _, dup := k.ids[t.ID()]; dup {
			continue
		}
		if t.rank().compare(k.horizon) >= 0 {
			continue
		}
		t.Value = strings.Clone(t.Value)
		heap.Push(&k.kept, t)
		k.ids[t.ID()] = struct{}{}
		if len(k.kept) > k.keep {
			evicted := heap.Pop(&k.kept).(Token)
			delete(k.ids, evicted.ID())
			k.horizon = evicted.rank()
		}
	}
}

// drop forgets the tokens for which gone is true.
func (k *keeper) drop(gone func(Record) bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := len(k.kept)
	k.kept = slices.DeleteFunc(k.kept, func(t Token) bool {
		if gone(t.Record) {
			delete(k.ids, t.ID())
			return true
		}
		return false
	})
	if len(k.kept) != n {
		heap.Init(&k.kept)
	}
}

// missing reports how many more tokens the keeper would hold if it held
// the first keep of records; has reports whether it holds a token.
func (k *keeper) missing(records int) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return min(k.keep, records) - len(k.kept)
}

func (k *keeper) has(id uint64) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	_, ok := k.ids[id]
	return ok
}

// refill adds tokens, their values already copied, that the caller chose
// from the whole list: the next ones in the order of publication after
// those kept, so that every token not kept ranks at or after horizon.
func (k *keeper) refill(tokens []Token, horizon rank) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, t := range tokens {
		if _, dup := k.ids[t.ID()]; dup || len(k.kept) >= k.keep {
			continue
		}
		heap.Push(&k.kept, t)
		k.ids[t.ID()] = struct{}{}
	}
	k.horizon = horizon
}

// values returns what was kept.
func (k *keeper) values() []Token {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.kept)
}

// tokenHeap is a max-heap of tokens in the order of publication.
type tokenHeap []Token

func (h tokenHeap) Len() int           { return len(h) }
func (h tokenHeap) Less(i, j int) bool { return Before(h[i].Record, h[j].Record) > 0 }
func (h tokenHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *tokenHeap) Push(x any)        { *h = append(*h, x.(Token)) }
func (h *tokenHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	*h = old[:len(old)-1]
	return t
}
