package apiclient_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apivideo-exporter/apivideo_exporter/apiclient"
	"github.com/apivideo-exporter/apivideo_exporter/internal/fakeapi"
	"github.com/apivideo-exporter/apivideo_exporter/listing"
)

func newClient(t *testing.T, s *fakeapi.Server, mutate ...func(*apiclient.Config)) *apiclient.Client {
	t.Helper()
	cfg := apiclient.Config{BaseURL: s.URL, Key: apiclient.StaticKey(s.APIKey())}
	for _, m := range mutate {
		m(&cfg)
	}
	c, err := apiclient.New(cfg)
	require.NoError(t, err)
	return c
}

func listCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// keepAll asks a listing to keep the values of every token, so that tests
// can compare them with the fake's.
const keepAll = 1 << 20

// requireMatchesFake asserts that list holds exactly the fake's tokens with
// the fake's creation and expiry times, each once.
func requireMatchesFake(t *testing.T, s *fakeapi.Server, list *listing.TokenList) {
	t.Helper()
	requireMatches(t, s.Tokens(), list)
}

func requireMatches(t *testing.T, want []fakeapi.TokenInfo, list *listing.TokenList) {
	t.Helper()
	got := map[string]apiclient.Record{}
	for _, tok := range list.Values {
		got[tok.Value] = tok.Record
	}
	hashes := map[uint64]bool{}
	for r := range list.Records() {
		hashes[r.Hash] = true
	}
	require.Equal(t, len(want), list.Len(), "every token once")
	require.Equal(t, len(want), len(got), "every value kept once")
	for _, w := range want {
		g, ok := got[w.Token]
		require.True(t, ok, "a token is missing from the listing")
		require.True(t, hashes[g.Hash], "a kept value has no record")
		require.True(t, w.ExpiresAt().Equal(g.ExpiresAt()), "expiry of a token: want %v, got %v", w.ExpiresAt(), g.ExpiresAt())
		require.True(t, w.CreatedAt.Equal(g.CreatedAt()), "creation of a token: want %v, got %v", w.CreatedAt, g.CreatedAt())
	}
}

// requirePageMatches asserts that p is page number, of pages of size, of
// the fake's tokens oldest first, with their creation and expiry times and
// the pagination of the whole list.
func requirePageMatches(t *testing.T, s *fakeapi.Server, number, size int, p *apiclient.Page) {
	t.Helper()
	all := s.Tokens()
	lo, hi := min((number-1)*size, len(all)), min(number*size, len(all))
	requireTokensMatch(t, all[lo:hi], p.Tokens)
	assert.Equal(t, number, p.CurrentPage)
	assert.Equal(t, size, p.PageSize)
	assert.Equal(t, max((len(all)+size-1)/size, 1), p.PagesTotal)
	assert.Equal(t, len(all), p.ItemsTotal)
}

// requireTokensMatch asserts that got holds the tokens of want, in the
// same order, with their creation and expiry times.
func requireTokensMatch(t *testing.T, want []fakeapi.TokenInfo, got []apiclient.Token) {
	t.Helper()
	require.Len(t, got, len(want))
	for i, w := range want {
		require.Equal(t, w.Token, got[i].Value, "token %d", i)
		require.True(t, w.CreatedAt.Equal(got[i].CreatedAt()), "creation of token %d: want %v, got %v", i, w.CreatedAt, got[i].CreatedAt())
		require.True(t, w.ExpiresAt().Equal(got[i].ExpiresAt()), "expiry of token %d: want %v, got %v", i, w.ExpiresAt(), got[i].ExpiresAt())
	}
}

func TestLoginIsReusedAcrossListings(t *testing.T) {
	s := fakeapi.NewServer(fakeapi.Options{Tokens: 300, Seed: 1})
	defer s.Close()
	c := newClient(t, s)
	pages := 0
	for range 5 {
		list, err := listTokens(c, listCtx(t, 5*time.Second), keepAll)
		require.NoError(t, err)
		requireMatchesFake(t, s, list)
		pages += list.Requests
	}
	st := s.Stats()
	assert.Equal(t, 1, st.Logins)
	assert.Equal(t, 0, st.Refreshes)
	assert.Equal(t, 0, st.Rejected, "no page was refused for want of a valid access token")
	assert.Equal(t, pages, st.ListRequests, "one request for each page the five listings asked for, none sent again")
}

func TestAccessTokenIsRenewedBeforeItExpires(t *testing.T) {
	// Tokens that live 2 s are renewed after three quarters of their life.
	clock := newManualClock()
	s := fakeapi.NewServer(fakeapi.Options{Tokens: 10, AccessTokenTTL: 2 * time.Second, Now: clock.Now})
	defer s.Close()
	c := newClient(t, s, func(cfg *apiclient.Config) { cfg.Now = clock.Now })
	_, err := listOnClock(c, clock, listCtx(t, 5*time.Second))
	require.NoError(t, err)
	clock.Advance(1400 * time.Millisecond)
	_, err = listOnClock(c, clock, listCtx(t, 5*time.Second))
	require.NoError(t, err)
	assert.Equal(t, 0, s.Stats().Refreshes, "not renewed before three quarters of its life")
	clock.Advance(200 * time.Millisecond)
	_, err = listOnClock(c, clock, listCtx(t, 5*time.Second))
	require.NoError(t, err)
	st := s.Stats()
	assert.Equal(t, 1, st.Logins, "renewal goes through /auth/refresh, not a new login")
	assert.Equal(t, 1, st.Refreshes)
	assert.Equal(t, 0, st.Rejected, "no request was sent with an expired token")
}

func TestAccessTokenRevokedBetweenPages(t *testing.T) {
	s := fakeapi.NewServer(fakeapi.Options{Tokens: 300, Seed: 3})
	defer s.Close()
	var once atomic.Bool
	s.OnList(func(page int) {
		if page == 1 && once.CompareAndSwap(false, true) {
			s.ExpireAccessTokens() // page 1 is already authorised; pages 2 and 3 are not
		}
	})
	c := newClient(t, s)
	ctx := listCtx(t, 5*time.Second)
	var got []apiclient.Token
	for number := 1; number <= 3; number++ {
		p, err := c.Page(ctx, number, apiclient.MaxPageSize)
		require.NoError(t, err, "page %d", number)
		requirePageMatches(t, s, number, apiclient.MaxPageSize, p)
		got = append(got, p.Tokens...)
	}
	requireTokensMatch(t, s.Tokens(), got)
	st := s.Stats()
	assert.Equal(t, 2, st.Logins, "one fresh login after the 401")
	assert.Equal(t, 1, st.Rejected, "only page 2's first request was refused")
	assert.Equal(t, 3, st.ListRequests, "each page served once: page 2 was asked for again after the login")
}

// A page carries its reply's Date: api.video's clock, in whole seconds,
// while it made the reply.
func TestPageDate(t *testing.T) {
	s := fakeapi.NewServer(fakeapi.Options{Tokens: 30, Seed: 3})
	defer s.Close()
	c := newClient(t, s)
	before := time.Now().Truncate(time.Second)
	p, err := c.Page(listCtx(t, 5*time.Second), 1, apiclient.MaxPageSize)
	after := time.Now()
	require.NoError(t, err)
	assert.False(t, p.Date.Before(before), "Date %s before the request", p.Date)
	assert.False(t, p.Date.After(after), "Date %s after the reply", p.Date)
	assert.Zero(t, p.Date.Nanosecond())
}

func TestWrongKey(t *testing.T) {
	s := fakeapi.NewServer(fakeapi.Options{Tokens: 3})
	defer s.Close()
	const wrong = "wrong-key-must-not-be-printed"
	c := newClient(t, s, func(c *apiclient.Config) { c.Key = apiclient.StaticKey(wrong) })
	_, err := listTokens(c, listCtx(t, 5*time.Second), keepAll)
	require.Error(t, err)
	assert.ErrorIs(t, err, apiclient.ErrUnauthorized)
	var apiErr *apiclient.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, 400, apiErr.StatusCode, "api.video answers a wrong key at login with 400")
	assert.Equal(t, "https://docs.api.video/reference/authentication-invalid-user-credentials", apiErr.Type)
	assert.Contains(t, err.Error(), "API key was rejected")
	assert.NotContains(t, err.Error(), wrong)
	assert.Equal(t, 0, s.Stats().ListRequests)
	assert.Equal(t, 1, s.Stats().Logins, "a rejected key is not retried")
}

func TestEmptyKey(t *testing.T) {
	s := fakeapi.NewServer(fakeapi.Options{})
	defer s.Close()
	c := newClient(t, s, func(c *apiclient.Config) { c.Key = apiclient.StaticKey("") })
	_, err := listTokens(c, listCtx(t, time.Second), keepAll)
	assert.ErrorIs(t, err, apiclient.ErrNoAPIKey)
}

func TestKeyFileRotation(t *testing.T) {
	s := fakeapi.NewServer(fakeapi.Options{Tokens: 5, APIKey: "first-key"})
	defer s.Close()
	path := filepath.Join(t.TempDir(), "key")
	require.NoError(t, os.WriteFile(path, []byte("first-key\n"), 0o600))
	c := newClient(t, s, func(c *apiclient.Config) { c.Key = apiclient.FileKey(path) })
	_, err := listTokens(c, listCtx(t, 5*time.Second), keepAll)
	require.NoError(t, err)

	// The key is rotated: api.video now accepts only the new one, the old
	// session ends, and the Secret's file is updated.
	s.SetAPIKey("second-key")
	s.ExpireAccessTokens()
	require.NoError(t, os.WriteFile(path, []byte("second-key\n"), 0o600))
	list, err := listTokens(c, listCtx(t, 5*time.Second), keepAll)
	require.NoError(t, err)
	assert.Equal(t, 5, list.Len())
	assert.Equal(t, 2, s.Stats().Logins)
}

// TestFaults fetches a page that fails in one way or another: the client
// retries what may pass on a second try, gives up on what will not, and
// returns either the page as the fake holds it or an error that says what
// went wrong, never a partial page. The next listing recovers.
func TestFaults(t *testing.T) {
	for _, tc := range []struct {
		name       string
		page       int
		faults     []fakeapi.Fault
		timeout    time.Duration
		wantErr    error
		wantAs     bool // the error is an *APIError
		wantStatus int  // the *APIError's status, when it matters
		maxTime    time.Duration
		wantPages  int // requests of the faulty page
	}{
		{name: "500 then success", page: 2, faults: []fakeapi.Fault{{Kind: fakeapi.FaultStatus, Status: 500}}, timeout: 5 * time.Second, wantPages: 2},
		{name: "503 twice then success", page: 3, faults: []fakeapi.Fault{{Kind: fakeapi.FaultStatus, Status: 503}, {Kind: fakeapi.FaultStatus, Status: 503}}, timeout: 5 * time.Second, wantPages: 3},
		{name: "connection reset mid-body", page: 2, faults: []fakeapi.Fault{{Kind: fakeapi.FaultReset}}, timeout: 5 * time.Second, wantPages: 2},
		{name: "429 whose wait fits", page: 2, faults: []fakeapi.Fault{{Kind: fakeapi.FaultRateLimited, RetryAfter: 1}}, timeout: 5 * time.Second, wantPages: 2},
		{name: "429 whose wait does not fit", page: 2, faults: []fakeapi.Fault{{Kind: fakeapi.FaultRateLimited, RetryAfter: 30}}, timeout: 3 * time.Second, wantErr: apiclient.ErrRateLimited, wantAs: true, wantStatus: 429, wantPages: 1},
		{name: "404 is not retried", page: 2, faults: []fakeapi.Fault{{Kind: fakeapi.FaultStatus, Status: 404}}, timeout: 5 * time.Second, wantErr: &apiclient.APIError{}, wantAs: true, wantStatus: 404, wantPages: 1},
		{name: "400 is not retried", page: 2, faults: []fakeapi.Fault{{Kind: fakeapi.FaultStatus, Status: 400}}, timeout: 5 * time.Second, wantErr: &apiclient.APIError{}, wantAs: true, wantStatus: 400, wantPages: 1},
		{name: "malformed body", page: 3, faults: []fakeapi.Fault{{Kind: fakeapi.FaultMalformed}}, timeout: 5 * time.Second, wantErr: apiclient.ErrMalformedResponse, wantPages: 1},
		{name: "truncated body", page: 1, faults: []fakeapi.Fault{{Kind: fakeapi.FaultTruncated}}, timeout: 5 * time.Second, wantErr: apiclient.ErrMalformedResponse, wantPages: 1},
		{name: "no pagination", page: 2, faults: []fakeapi.Fault{{Kind: fakeapi.FaultWrongShape}}, timeout: 5 * time.Second, wantErr: apiclient.ErrMalformedResponse, wantPages: 1},
		{name: "oversize body", page: 2, faults: []fakeapi.Fault{{Kind: fakeapi.FaultOversize, Size: 5 << 20}}, timeout: 5 * time.Second, wantErr: apiclient.ErrResponseTooLarge, wantPages: 1},
		{name: "page never answers", page: 2, faults: []fakeapi.Fault{{Kind: fakeapi.FaultHang}}, timeout: 1500 * time.Millisecond, wantErr: context.DeadlineExceeded, maxTime: 30 * time.Second, wantPages: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := fakeapi.NewServer(fakeapi.Options{Tokens: 257, WithoutExpiry: 43, Seed: 11})
			defer s.Close()
			s.FailPage(tc.page, tc.faults...)
			c := newClient(t, s)
			start := time.Now()
			p, err := c.Page(listCtx(t, tc.timeout), tc.page, apiclient.MaxPageSize)
			elapsed := time.Since(start)
			if tc.maxTime > 0 {
				assert.Less(t, elapsed, tc.maxTime)
			}
			assert.Equal(t, tc.wantPages, s.PageRequests()[tc.page], "requests of the faulty page")
			if tc.wantErr == nil {
				require.NoError(t, err)
				requirePageMatches(t, s, tc.page, apiclient.MaxPageSize, p)
			} else {
				require.Error(t, err)
				assert.Nil(t, p, "no partial page")
				if tc.wantAs {
					var apiErr *apiclient.APIError
					require.ErrorAs(t, err, &apiErr)
					assert.Equal(t, tc.wantStatus, apiErr.StatusCode)
				} else {
					assert.ErrorIs(t, err, tc.wantErr)
				}
				if errors.Is(tc.wantErr, apiclient.ErrRateLimited) {
					assert.ErrorIs(t, err, apiclient.ErrRateLimited)
				}
			}
			// Only 404 and 400 are what a page past the end of the list
			// gets; no other fault may pass for the end of the list.
			assert.Equal(t, tc.wantStatus == 404 || tc.wantStatus == 400, apiclient.PastEnd(err), "PastEnd")
			// After every fault the next listing recovers.
			list, err := listTokens(c, listCtx(t, 5*time.Second), keepAll)
			require.NoError(t, err)
			requireMatchesFake(t, s, list)
		})
	}
}

func TestRetriesGiveUp(t *testing.T) {
	s := fakeapi.NewServer(fakeapi.Options{Tokens: 10})
	defer s.Close()
	for range 10 {
		s.FailPage(1, fakeapi.Fault{Kind: fakeapi.FaultStatus, Status: 502})
	}
	_, err := listTokens(newClient(t, s), listCtx(t, 10*time.Second), keepAll)
	var apiErr *apiclient.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, 502, apiErr.StatusCode)
	assert.Equal(t, 4, s.PageRequests()[1], "a bounded number of attempts")
}

func TestRateLimitHeaders(t *testing.T) {
	s := fakeapi.NewServer(fakeapi.Options{Tokens: 10, RateLimit: 50})
	defer s.Close()
	c := newClient(t, s)
	_, known := c.RateLimit()
	assert.False(t, known)
	_, err := listTokens(c, listCtx(t, 5*time.Second), keepAll)
	require.NoError(t, err)
	rl, known := c.RateLimit()
	require.True(t, known)
	assert.Equal(t, 50, rl.Limit)
	assert.Equal(t, 48, rl.Remaining, "a login and a page spent")
}

func TestEnforcedRateLimitIsNotHammered(t *testing.T) {
	// A budget of 3 requests a minute: the login and pages 1 and 2 pass,
	// page 3 gets a 429 whose wait (up to a minute) cannot fit.
	s := fakeapi.NewServer(fakeapi.Options{Tokens: 300, RateLimit: 3, EnforceRateLimit: true})
	defer s.Close()
	c := newClient(t, s)
	ctx := listCtx(t, 3*time.Second)
	for number := 1; number <= 2; number++ {
		p, err := c.Page(ctx, number, apiclient.MaxPageSize)
		require.NoError(t, err, "page %d", number)
		requirePageMatches(t, s, number, apiclient.MaxPageSize, p)
	}
	p, err := c.Page(ctx, 3, apiclient.MaxPageSize)
	assert.ErrorIs(t, err, apiclient.ErrRateLimited)
	assert.NotErrorIs(t, err, context.DeadlineExceeded, "the 429 was not waited out until the deadline")
	assert.Nil(t, p)
	assert.Equal(t, 1, s.Stats().RateLimited, "one 429, no hammering")
	assert.Equal(t, 2, s.Stats().ListRequests, "pages 1 and 2 served, page 3 refused")
}

func TestUserAgent(t *testing.T) {
	var got atomic.Value
	s := fakeapi.NewServer(fakeapi.Options{Tokens: 1})
	defer s.Close()
	c := newClient(t, s, func(c *apiclient.Config) {
		c.UserAgent = "apivideo_exporter/1.2.3"
		c.Transport = roundTripFunc(func(r *httpRequest) (*httpResponse, error) {
			got.Store(r.Header.Get("User-Agent"))
			return defaultTransport.RoundTrip(r)
		})
	})
	_, err := listTokens(c, listCtx(t, 5*time.Second), keepAll)
	require.NoError(t, err)
	assert.Equal(t, "apivideo_exporter/1.2.3", got.Load())
}

func TestNewValidatesConfig(t *testing.T) {
	key := apiclient.StaticKey("k")
	for _, tc := range []struct {
		name string
		cfg  apiclient.Config
		want string
	}{
		{"no key", apiclient.Config{}, "no api.video API key"},
		{"bad scheme", apiclient.Config{Key: key, BaseURL: "ftp://x"}, "not an http or https URL"},
		{"no host", apiclient.Config{Key: key, BaseURL: "https://"}, "has no host"},
		{"page too large", apiclient.Config{Key: key, PageSize: 101}, "page size"},
		{"negative concurrency", apiclient.Config{Key: key, Concurrency: -1}, "concurrency"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := apiclient.New(tc.cfg)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestParseBaseURL(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		want string // part of the error; empty when the URL is accepted
	}{
		{"https://ws.api.video", ""},
		{"https://sandbox.api.video/", ""},
		{"http://127.0.0.1:8080/proxy/apivideo", ""},
		{"ftp://ws.api.video", "not an http or https URL"},
		{"ws.api.video", "not an http or https URL"},
		{"https://", "has no host"},
		{"http:ws.api.video", "has no host"},
		{"http://host?x=1", "has a query"},
		{"http://host/?", "has a query"},
		{"http://host#top", "has a fragment"},
		{"http://host/#", "has a fragment"},
		{"https://user:s3cret@ws.api.video", "user info is not allowed"},
		{"https://apikey@ws.api.video", "user info is not allowed"},
		{"http://host/%zz", "not a URL"},
	} {
		t.Run(tc.raw, func(t *testing.T) {
			u, err := apiclient.ParseBaseURL(tc.raw)
			if tc.want == "" {
				require.NoError(t, err)
				assert.Equal(t, tc.raw, u.String())
				return
			}
			require.ErrorIs(t, err, apiclient.ErrBaseURL)
			assert.ErrorContains(t, err, tc.want)
			assert.NotContains(t, err.Error(), "s3cret", "the error quotes no credentials")
		})
	}
}

func TestAPIErrorMessage(t *testing.T) {
	e := &apiclient.APIError{StatusCode: 429, Title: "Too many requests."}
	assert.Equal(t, "api.video answered 429 Too Many Requests: Too many requests.", e.Error())
	assert.True(t, errors.Is(fmt.Errorf("x: %w", e), apiclient.ErrRateLimited))
	assert.False(t, errors.Is(e, apiclient.ErrUnauthorized))
	assert.True(t, strings.HasPrefix((&apiclient.APIError{StatusCode: 401}).Error(), "api.video answered 401 Unauthorized"))
}

func TestRequestsAreCountedByStatusCode(t *testing.T) {
	s := fakeapi.NewServer(fakeapi.Options{Tokens: 257})
	defer s.Close()
	s.FailPage(2, fakeapi.Fault{Kind: fakeapi.FaultStatus, Status: 503})
	reg := prometheus.NewRegistry()
	c := newClient(t, s, func(c *apiclient.Config) { c.Registerer = reg })
	ctx := listCtx(t, 5*time.Second)
	for number := 1; number <= 3; number++ {
		_, err := c.Page(ctx, number, apiclient.MaxPageSize)
		require.NoError(t, err, "page %d", number)
	}
	// The login and three pages answered 200; page 2 first answered 503.
	want := `
# HELP apivideo_api_requests_total Requests made to the api.video API, by HTTP status code.
# TYPE apivideo_api_requests_total counter
apivideo_api_requests_total{code="200"} 4
apivideo_api_requests_total{code="401"} 0
apivideo_api_requests_total{code="429"} 0
apivideo_api_requests_total{code="500"} 0
apivideo_api_requests_total{code="503"} 1
`
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(want), "apivideo_api_requests_total"))
	assert.Equal(t, 1, testutil.CollectAndCount(reg, "apivideo_api_request_duration_seconds"))
	problems, err := testutil.GatherAndLint(reg)
	require.NoError(t, err)
	assert.Empty(t, problems)
}

func TestLoginIsCancelledWithTheContext(t *testing.T) {
	release := make(chan struct{})
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer hanging.Close()
	defer close(release)
	c, err := apiclient.New(apiclient.Config{BaseURL: hanging.URL, Key: apiclient.StaticKey("k")})
	require.NoError(t, err)

	// Two listings at once: one waits in the login, the other for it.
	errs := make(chan error, 2)
	start := time.Now()
	for range 2 {
		go func() {
			_, err := listTokens(c, listCtx(t, 300*time.Millisecond), keepAll)
			errs <- err
		}()
	}
	for range 2 {
		assert.ErrorIs(t, <-errs, context.DeadlineExceeded)
	}
	assert.Less(t, time.Since(start), 30*time.Second, "ended at the deadline, not after the hang")
}

func TestRedirectsAreNotFollowed(t *testing.T) {
	var leaked atomic.Bool
	elsewhere := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { leaked.Store(true) }))
	defer elsewhere.Close()
	redirecting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer redirecting.Close()
	c, err := apiclient.New(apiclient.Config{BaseURL: redirecting.URL, Key: apiclient.StaticKey("k")})
	require.NoError(t, err)
	_, err = listTokens(c, listCtx(t, 5*time.Second), keepAll)
	var apiErr *apiclient.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, http.StatusTemporaryRedirect, apiErr.StatusCode)
	assert.False(t, leaked.Load(), "the login, with the key, was not resent elsewhere")
}

func TestExpiringTokenRidesOutAFailingAuthEndpoint(t *testing.T) {
	// Access tokens live 6 s and are due for renewal after 4.5 s; the auth
	// endpoints then fail, and the current token is used until it expires.
	clock := newManualClock()
	s := fakeapi.NewServer(fakeapi.Options{Tokens: 10, AccessTokenTTL: 6 * time.Second, Now: clock.Now})
	defer s.Close()
	c := newClient(t, s, func(cfg *apiclient.Config) { cfg.Now = clock.Now })
	_, err := listOnClock(c, clock, listCtx(t, 5*time.Second))
	require.NoError(t, err)
	clock.Advance(4600 * time.Millisecond)
	s.FailAuth(fakeapi.Fault{Kind: fakeapi.FaultStatus, Status: 503}, 100)
	_, err = listOnClock(c, clock, listCtx(t, 5*time.Second))
	require.NoError(t, err, "the listing used the token that is due for renewal but still valid")
	assert.Equal(t, 0, s.Stats().Rejected)
	// Once it has expired, the failing auth endpoint fails the listing.
	clock.Advance(1500 * time.Millisecond)
	_, err = listOnClock(c, clock, listCtx(t, 5*time.Second))
	require.Error(t, err, "no listing with an expired access token")
	assert.Equal(t, 0, s.Stats().Rejected, "the expired token was not sent")
}

// TestPaginationIsPassedOnAsAnswered fetches pages whose pagination no
// list of api.video can have: the client hands it on as answered, for the
// listing, which knows what it asked for, to judge; it rejects only what
// is not a count, without retrying it.
func TestPaginationIsPassedOnAsAnswered(t *testing.T) {
	for _, tc := range []struct {
		name, pagination string
		want             *apiclient.Page // nil: rejected as malformed
	}{
		{"page size above 100", `{"currentPage":1,"pageSize":100000,"pagesTotal":1,"itemsTotal":0}`,
			&apiclient.Page{CurrentPage: 1, PageSize: 100000, PagesTotal: 1}},
		{"too many pages", `{"currentPage":1,"pageSize":100,"pagesTotal":20000,"itemsTotal":0}`,
			&apiclient.Page{CurrentPage: 1, PageSize: 100, PagesTotal: 20000}},
		{"pages cannot hold the items", `{"currentPage":1,"pageSize":100,"pagesTotal":1,"itemsTotal":1000000000}`,
			&apiclient.Page{CurrentPage: 1, PageSize: 100, PagesTotal: 1, ItemsTotal: 1000000000}},
		{"largest items total", fmt.Sprintf(`{"currentPage":1,"pageSize":100,"pagesTotal":1,"itemsTotal":%d}`, math.MaxInt),
			&apiclient.Page{CurrentPage: 1, PageSize: 100, PagesTotal: 1, ItemsTotal: math.MaxInt}},
		{"more pages than the items need", `{"currentPage":1,"pageSize":100,"pagesTotal":50,"itemsTotal":10}`,
			&apiclient.Page{CurrentPage: 1, PageSize: 100, PagesTotal: 50, ItemsTotal: 10}},
		{"items total that overflows", `{"currentPage":1,"pageSize":100,"pagesTotal":1,"itemsTotal":99999999999999999999}`, nil},
		{"negative pages total", `{"currentPage":1,"pageSize":100,"pagesTotal":-1,"itemsTotal":0}`, nil},
		{"negative current page", `{"currentPage":-1,"pageSize":100,"pagesTotal":1,"itemsTotal":0}`, nil},
		{"fractional page size", `{"currentPage":1,"pageSize":99.5,"pagesTotal":1,"itemsTotal":0}`, nil},
		{"items total as a string", `{"currentPage":1,"pageSize":100,"pagesTotal":1,"itemsTotal":"10"}`, nil},
		{"no pages total", `{"currentPage":1,"pageSize":100,"itemsTotal":0}`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var lists atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/auth/api-key" {
					fmt.Fprint(w, `{"access_token":"a","refresh_token":"r","expires_in":3600}`)
					return
				}
				lists.Add(1)
				fmt.Fprintf(w, `{"data":[],"pagination":%s}`, tc.pagination)
			}))
			defer srv.Close()
			c, err := apiclient.New(apiclient.Config{BaseURL: srv.URL, Key: apiclient.StaticKey("k")})
			require.NoError(t, err)
			p, err := c.Page(listCtx(t, 5*time.Second), 1, apiclient.MaxPageSize)
			assert.EqualValues(t, 1, lists.Load(), "one request")
			if tc.want == nil {
				assert.ErrorIs(t, err, apiclient.ErrMalformedResponse)
				assert.Nil(t, p)
				return
			}
			require.NoError(t, err)
			assert.Empty(t, p.Tokens)
			assert.Equal(t, tc.want.CurrentPage, p.CurrentPage)
			assert.Equal(t, tc.want.PageSize, p.PageSize)
			assert.Equal(t, tc.want.PagesTotal, p.PagesTotal)
			assert.Equal(t, tc.want.ItemsTotal, p.ItemsTotal)
		})
	}
}
