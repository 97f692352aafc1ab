// Package apimodel is a simulated api.video account: its upload tokens, their
// churn over time, and GET /upload-tokens pages rendered in api.video's
// documented shapes. The exporter's demo server and the test fake
// (internal/fakeapi) both serve from it.
package apimodel

import (
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// Token is an upload token as the account holds it.
type Token struct {
	Token     string
	CreatedAt time.Time
	// TTL in seconds; 0 for a token that never expires.
	TTL int
}

// ExpiresAt is the zero time for a token that never expires.
func (t Token) ExpiresAt() time.Time {
	if t.TTL == 0 {
		return time.Time{}
	}
	return t.CreatedAt.Add(time.Duration(t.TTL) * time.Second)
}

// Churn makes the account live: tokens are created and deleted at steady
// rates as the account's clock advances. Expiry needs no rate: a token
// leaves the list when its ttl runs out.
type Churn struct {
	// CreatePerSecond is how many tokens are created each second.
	CreatePerSecond float64
	// TTLs is the mix of ttls, in seconds, new tokens take in turn (0: no
	// expiry); one hour when empty.
	TTLs []int
	// DeletePerSecond is how many tokens, picked at random, are deleted
	// each second.
	DeletePerSecond float64
}

// PastEnd is what a page past the last one gets.
type PastEnd int

// The answers to a page past the end, as api.video-like services give them.
const (
	// PastEndEmpty answers 200 with no items and the current totals.
	PastEndEmpty PastEnd = iota
	// PastEnd404 answers 404 with a problem body.
	PastEnd404
	// PastEnd400 answers 400 with a problem body naming currentPage.
	PastEnd400
	// PastEndLast answers with the last page, its currentPage saying so.
	PastEndLast
)

// Options shape an Account.
type Options struct {
	// Tokens is how many active tokens the account starts with, of which
	// WithoutExpiry never expire.
	Tokens        int
	WithoutExpiry int
	// Spread, when set, gives the initial tokens creation times evenly
	// spread over the Spread before now and ttls from TTLs (one hour when
	// empty), so that they expire at a steady rate as on a busy account.
	// Otherwise they were created in the last minute with lives of ten
	// minutes to two weeks.
	Spread time.Duration
	TTLs   []int
	// Seed makes token values, lifetimes and deletions reproducible.
	Seed uint64
	// Churn, when its rates are set, creates and deletes tokens as the
	// clock advances.
	Churn Churn
	// PastEnd is what a page past the last one gets.
	PastEnd PastEnd
	// Now is the account's clock; time.Now when nil.
	Now func() time.Time
}

// Account is a simulated account. It is safe for concurrent use.
type Account struct {
	now     func() time.Time
	pastEnd PastEnd

	mu      sync.Mutex
	rng     *rand.Rand
	churn   Churn
	tokens  []Token // oldest first; creation order breaks ties
	pruneAt time.Time
	// churnedTo is when churn was last applied; created and deleted carry
	// the fractions of a token owed since.
	churnedTo        time.Time
	created, deleted float64
	ttlTurn          int
}

// New builds an account.
func New(opts Options) *Account {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	a := &Account{
		now:     now,
		pastEnd: opts.PastEnd,
		rng:     rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15)),
		churn:   opts.Churn,
	}
	start := now()
	a.tokens = a.generate(opts, start)
	a.pruneLocked(start)
	a.churnedTo = start
	return a
}

// Now is the account's clock.
func (a *Account) Now() time.Time { return a.now() }

const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// newTokenValue returns a token in api.video's shape: "to" and 22 characters.
func (a *Account) newTokenValue() string {
	b := make([]byte, 24)
	b[0], b[1] = 't', 'o'
	for i := 2; i < len(b); i++ {
		b[i] = alphabet[a.rng.IntN(len(alphabet))]
	}
	return string(b)
}

func (a *Account) generate(opts Options, now time.Time) []Token {
	n := opts.Tokens
	out := make([]Token, n)
	for i := range out {
		out[i].Token = a.newTokenValue()
		switch {
		case opts.Spread > 0:
			// Evenly spread, oldest first, so that they expire at a steady rate.
			out[i].CreatedAt = now.Add(-opts.Spread + opts.Spread*time.Duration(i)/time.Duration(max(n, 1))).Truncate(time.Second)
			out[i].TTL = pick(opts.TTLs, i)
		default:
			out[i].CreatedAt = now.Add(-time.Duration(a.rng.IntN(60)) * time.Second).Truncate(time.Second)
			out[i].TTL = 600 + a.rng.IntN(14*24*3600)
		}
	}
	// The tokens without expiry are spread through the list, as in a real account.
	for _, i := range a.rng.Perm(n)[:min(opts.WithoutExpiry, n)] {
		out[i].TTL = 0
	}
	slices.SortStableFunc(out, func(x, y Token) int { return x.CreatedAt.Compare(y.CreatedAt) })
	return out
}

// pick takes the i-th ttl of a mix, cycling; one hour for an empty mix.
func pick(ttls []int, i int) int {
	if len(ttls) == 0 {
		return 3600
	}
	return ttls[i%len(ttls)]
}

// Tokens returns the active tokens, oldest first.
func (a *Account) Tokens() []Token {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.advanceLocked()
	return slices.Clone(a.activeLocked())
}

// Len is how many tokens are active now.
func (a *Account) Len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.advanceLocked()
	return len(a.activeLocked())
}

// SetTokens replaces the account's tokens; they are kept oldest first.
func (a *Account) SetTokens(tokens []Token) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.tokens = slices.Clone(tokens)
	slices.SortStableFunc(a.tokens, func(x, y Token) int { return x.CreatedAt.Compare(y.CreatedAt) })
	a.pruneAt = time.Time{}
}

// AddTokens creates n tokens with the given ttl in seconds (0: no expiry)
// now, and returns them.
func (a *Account) AddTokens(n, ttl int) []Token {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.advanceLocked()
	return a.addLocked(n, ttl, a.now())
}

func (a *Account) addLocked(n, ttl int, at time.Time) []Token {
	added := make([]Token, n)
	for i := range added {
		added[i] = Token{Token: a.newTokenValue(), CreatedAt: at.Truncate(time.Second), TTL: ttl}
	}
	a.tokens = append(a.tokens, added...)
	if exp := added[0].ExpiresAt(); ttl != 0 && n > 0 && exp.Before(a.pruneAt) {
		a.pruneAt = exp
	}
	return added
}

// RemoveToken deletes the i-th active token, oldest first, and returns it.
func (a *Account) RemoveToken(i int) Token {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.advanceLocked()
	active := a.activeLocked()
	victim := active[i]
	a.tokens = slices.Delete(active, i, i+1)
	return victim
}

// advanceLocked applies the churn owed since it last ran: creations and
// deletions at their rates, each at its own instant, so that a simulated
// clock gives the same account every time.
func (a *Account) advanceLocked() {
	now := a.now()
	elapsed := now.Sub(a.churnedTo)
	if elapsed <= 0 {
		return
	}
	c := a.churn
	if c.CreatePerSecond <= 0 && c.DeletePerSecond <= 0 {
		a.churnedTo = now
		return
	}
	// Events are applied in time order: a deletion can only pick among
	// the tokens of its instant.
	from := a.churnedTo
	createdDue := a.created + c.CreatePerSecond*elapsed.Seconds()
	deletedDue := a.deleted + c.DeletePerSecond*elapsed.Seconds()
	nextAt := func(done, rate, carry float64) time.Time {
		// The instant the (done+1)-th event since from is due.
		return from.Add(time.Duration((done + 1 - carry) / rate * float64(time.Second)))
	}
	var creations, deletions float64
	for {
		canCreate := c.CreatePerSecond > 0 && creations+1 <= createdDue
		canDelete := c.DeletePerSecond > 0 && deletions+1 <= deletedDue
		if !canCreate && !canDelete {
			break
		}
		var createAt, deleteAt time.Time
		if canCreate {
			createAt = nextAt(creations, c.CreatePerSecond, a.created)
		}
		if canDelete {
			deleteAt = nextAt(deletions, c.DeletePerSecond, a.deleted)
		}
		if canCreate && (!canDelete || !deleteAt.Before(createAt)) {
			a.addLocked(1, pick(c.TTLs, a.ttlTurn), createAt)
			a.ttlTurn++
			creations++
			continue
		}
		a.deleteRandomLocked(deleteAt)
		deletions++
	}
	a.created = createdDue - creations
	a.deleted = deletedDue - deletions
	a.churnedTo = now
}

// deleteRandomLocked deletes a token active at instant at, picked at random.
func (a *Account) deleteRandomLocked(at time.Time) {
	a.pruneLocked(at)
	for range 8 {
		if len(a.tokens) == 0 {
			return
		}
		i := a.rng.IntN(len(a.tokens))
		if t := a.tokens[i]; t.TTL == 0 || t.ExpiresAt().After(at) {
			a.tokens = slices.Delete(a.tokens, i, i+1)
			return
		}
	}
}

// activeLocked drops expired tokens, as api.video lists active ones only.
// It scans the tokens only once the earliest expiry has passed, so that a
// listing of n pages does not cost n scans of a large account.
func (a *Account) activeLocked() []Token { return a.pruneLocked(a.now()) }

// pruneLocked drops the tokens expired at now.
func (a *Account) pruneLocked(now time.Time) []Token {
	if !a.pruneAt.IsZero() && now.Before(a.pruneAt) {
		return a.tokens
	}
	never := time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	a.pruneAt = never
	kept := a.tokens[:0]
	for _, t := range a.tokens {
		if t.TTL == 0 {
			kept = append(kept, t)
			continue
		}
		if exp := t.ExpiresAt(); exp.After(now) {
			kept = append(kept, t)
			if exp.Before(a.pruneAt) {
				a.pruneAt = exp
			}
		}
	}
	clear(a.tokens[len(kept):])
	a.tokens = kept
	return kept
}
