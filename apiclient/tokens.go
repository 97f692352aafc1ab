package apiclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"net/http"
	"time"

	"github.com/go-kit/log/level"
	"golang.org/x/sync/errgroup"
)

// maxPages bounds how many pages one listing may claim, so that a garbled
// pagesTotal cannot start millions of requests. 10,000 pages of 100 is a
// million tokens.
const maxPages = 10000

// Token is one active delegated upload token. Value is a credential: do not
// log or publish it whole.
type Token struct {
	Value string
	// ExpiresAt is the zero time for a token that never expires.
	ExpiresAt time.Time
}

// NeverExpires reports whether the token has no expiry (ttl 0).
func (t Token) NeverExpires() bool { return t.ExpiresAt.IsZero() }

// TokenList is the result of one complete listing.
type TokenList struct {
	// Tokens holds every active token once, in api.video's order.
	Tokens []Token
	// Pages is the number of list requests that made up the listing.
	Pages int
	// FetchedAt is when the listing finished.
	FetchedAt time.Time
}

// errShifted marks a listing whose pages disagree: tokens were created or
// removed while it was read.
var errShifted = errors.New("pages disagree")

// ListUploadTokens returns every active upload token. It reads page 1, then
// the remaining pages concurrently with pageSize 100, so that a listing of n
// tokens costs ceil(n/100) requests.
//
// When pages disagree (itemsTotal or pagesTotal changes between pages, a
// page is short, or a token appears twice because the list shifted), the
// whole listing is read once more; a second disagreement on the totals is
// ErrInconsistentListing, since publishing either read could count a token
// twice or miss one. A second read whose totals agree but which still holds
// duplicates is accepted with the duplicates dropped.
func (c *Client) ListUploadTokens(ctx context.Context) (*TokenList, error) {
	list, err := c.listOnce(ctx, false)
	if errors.Is(err, errShifted) {
		level.Debug(c.logger).Log("msg", "token list changed while it was read, reading it again", "err", err)
		list, err = c.listOnce(ctx, true)
	}
	if errors.Is(err, errShifted) {
		return nil, fmt.Errorf("%w: %w", ErrInconsistentListing, err)
	}
	return list, err
}

func (c *Client) listOnce(ctx context.Context, allowDuplicates bool) (*TokenList, error) {
	first, err := c.fetchPage(ctx, 1, c.pageSize, nil)
	if err != nil {
		return nil, err
	}
	pageSize := first.pageSize
	if pageSize == 0 {
		pageSize = c.pageSize
	}
	if pageSize > MaxPageSize {
		return nil, fmt.Errorf("%w: pageSize %d is above %d", ErrMalformedResponse, pageSize, MaxPageSize)
	}
	pagesTotal := first.pagesTotal
	if pagesTotal > maxPages {
		return nil, fmt.Errorf("%w: pagesTotal %d is above %d", ErrMalformedResponse, pagesTotal, maxPages)
	}
	if first.itemsTotal > maxPages*MaxPageSize {
		return nil, fmt.Errorf("%w: itemsTotal %d is above %d", ErrMalformedResponse, first.itemsTotal, maxPages*MaxPageSize)
	}
	// An empty list may say 0 pages or 1.
	if want := (first.itemsTotal + pageSize - 1) / pageSize; pagesTotal != want && !(want == 0 && pagesTotal == 1) {
		return nil, fmt.Errorf("%w: pagesTotal %d does not fit itemsTotal %d in pages of %d",
			ErrMalformedResponse, pagesTotal, first.itemsTotal, pageSize)
	}

	// Every page decodes straight into its place in one slice sized from
	// page 1's total, so that a listing holds each token once in memory.
	tokens := make([]Token, first.itemsTotal)
	slot := func(number int) []Token {
		lo := min((number-1)*pageSize, len(tokens))
		hi := min(lo+pageSize, len(tokens))
		return tokens[lo:hi:hi]
	}
	copy(slot(1), first.tokens)
	pages := make([]*page, max(pagesTotal, 1))
	pages[0] = first
	if pagesTotal > 1 {
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(c.concurrency)
		for i := 2; i <= pagesTotal; i++ {
			g.Go(func() error {
				p, err := c.fetchPage(gctx, i, pageSize, slot(i))
				pages[i-1] = p
				return err
			})
		}
		if err := g.Wait(); err != nil {
			return nil, err
		}
	}
	// Once every page holds exactly the tokens its slot expects, the slots
	// are all filled.
	if err := checkPages(pages, pageSize); err != nil {
		return nil, err
	}
	if hasRepeats(tokens) {
		if !allowDuplicates {
			return nil, fmt.Errorf("%w: a token is listed twice", errShifted)
		}
		before := len(tokens)
		tokens = dropDuplicates(tokens)
		level.Warn(c.logger).Log("msg", "api.video listed tokens twice on two reads with stable totals; counting each once",
			"listed", before, "distinct", len(tokens))
	}
	return &TokenList{Tokens: tokens, Pages: len(pages), FetchedAt: time.Now()}, nil
}

// checkPages checks that the pages describe one unchanged list.
func checkPages(pages []*page, pageSize int) error {
	first := pages[0]
	for i, p := range pages {
		number := i + 1
		if p.itemsTotal != first.itemsTotal || p.pagesTotal != first.pagesTotal {
			return fmt.Errorf("%w: page %d says %d tokens in %d pages, page 1 said %d in %d",
				errShifted, number, p.itemsTotal, p.pagesTotal, first.itemsTotal, first.pagesTotal)
		}
		if p.currentPage != 0 && p.currentPage != number {
			return fmt.Errorf("%w: asked for page %d, got page %d", ErrMalformedResponse, number, p.currentPage)
		}
		want := min(pageSize, max(first.itemsTotal-i*pageSize, 0))
		if len(p.tokens) != want {
			return fmt.Errorf("%w: page %d has %d tokens, expected %d", errShifted, number, len(p.tokens), want)
		}
	}
	return nil
}

// hasRepeats reports whether two tokens may be equal. It compares 64-bit
// hashes, a set a quarter the size of a set of the strings; a false alarm
// only sends the listing through the exact dropDuplicates.
func hasRepeats(tokens []Token) bool {
	seed := maphash.MakeSeed()
	seen := make(map[uint64]struct{}, len(tokens))
	for _, t := range tokens {
		h := maphash.String(seed, t.Value)
		if _, dup := seen[h]; dup {
			return true
		}
		seen[h] = struct{}{}
	}
	return false
}

// dropDuplicates keeps the first of each token, in place.
func dropDuplicates(tokens []Token) []Token {
	seen := make(map[string]struct{}, len(tokens))
	kept := tokens[:0]
	for _, t := range tokens {
		if _, dup := seen[t.Value]; !dup {
			seen[t.Value] = struct{}{}
			kept = append(kept, t)
		}
	}
	return kept
}

// fetchPage requests one page, logging in first if needed and once more
// after a 401, in case the access token was revoked or expired early. The
// tokens go into dst when they fit.
func (c *Client) fetchPage(ctx context.Context, number, size int, dst []Token) (*page, error) {
	buf := c.bodies.Get().(*bytes.Buffer)
	defer c.bodies.Put(buf)
	path := fmt.Sprintf("/upload-tokens?currentPage=%d&pageSize=%d", number, size)
	for relogged := false; ; relogged = true {
		bearer, err := c.auth.token(ctx)
		if err != nil {
			return nil, err
		}
		err = c.do(ctx, request{method: http.MethodGet, path: path, bearer: bearer}, buf)
		var apiErr *APIError
		if !relogged && errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusUnauthorized {
			level.Debug(c.logger).Log("msg", "access token refused, logging in again", "page", number)
			c.auth.invalidate(bearer)
			continue
		}
		if err != nil {
			return nil, err
		}
		break
	}
	dec := c.decoders.Get().(*pageDecoder)
	defer c.decoders.Put(dec)
	p, err := dec.decode(buf.Bytes(), dst)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	return p, nil
}
