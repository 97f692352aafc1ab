// Package fakeapi is a fake of the api.video API for tests and benchmarks.
// It serves an internal/apimodel account in the documented shapes of
// POST /auth/api-key, POST /auth/refresh and GET /upload-tokens: Bearer and
// Basic auth, pagination with links and sorting, JSON problem bodies and
// rate-limit headers. Knobs inject latency, churn and faults.
package fakeapi

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apivideo-exporter/apivideo_exporter/internal/apimodel"
)

// DefaultAPIKey is the key the fake accepts when Options.APIKey is empty.
const DefaultAPIKey = "fakeapi-key"

// Options configure a Server.
type Options struct {
	// APIKey accepted by /auth/api-key and Basic auth; DefaultAPIKey when empty.
	APIKey string
	// Tokens is how many active upload tokens the account starts with, of
	// which WithoutExpiry never expire.
	Tokens        int
	WithoutExpiry int
	// Spread and TTLs, when Spread is set, give the initial tokens creation
	// times spread evenly over Spread and ttls from TTLs, so that they
	// expire at a steady rate (see apimodel.Options).
	Spread time.Duration
	TTLs   []int
	// Seed makes token values, lifetimes and deletions reproducible.
	Seed uint64
	// Churn creates and deletes tokens as the clock advances.
	Churn apimodel.Churn
	// PastEnd is what a page past the last one gets.
	PastEnd apimodel.PastEnd
	// Latency delays every reply.
	Latency time.Duration
	// AccessTokenTTL is the life of issued access tokens; one hour when 0.
	AccessTokenTTL time.Duration
	// RateLimit is the per-minute limit reported in headers; 500 when 0.
	// It is only enforced, with 429 replies, when EnforceRateLimit is set.
	RateLimit        int
	EnforceRateLimit bool
	// Now is the fake's clock; time.Now when nil.
	Now func() time.Time
	// PadPagesTo, when set, pads every page with leading white space (valid
	// JSON) to this many bytes: replies as large as the client accepts.
	PadPagesTo int
}

// FaultKind is a way a reply can go wrong.
type FaultKind int

// The faults a Server can inject.
const (
	// FaultStatus answers with Fault.Status and a JSON problem body.
	FaultStatus FaultKind = iota + 1
	// FaultRateLimited answers 429 with X-RateLimit-Retry-After: Fault.RetryAfter.
	FaultRateLimited
	// FaultMalformed answers 200 with a body that is not JSON.
	FaultMalformed
	// FaultTruncated answers 200 with a page cut in the middle of the JSON.
	FaultTruncated
	// FaultReset announces a full page, sends half and closes the connection.
	FaultReset
	// FaultHang never answers, until the client gives up.
	FaultHang
	// FaultWrongShape answers 200 with JSON that lacks pagination.
	FaultWrongShape
	// FaultOversize answers 200 with a body of Fault.Size bytes.
	FaultOversize
)

// authFaults is the key of the faults queued for the auth endpoints.
const authFaults = -1

// Fault is one injected failure.
type Fault struct {
	Kind       FaultKind
	Status     int
	RetryAfter int
	Size       int
}

// Stats counts the requests a Server has seen.
type Stats struct {
	// Received counts every request as it arrives, before any latency.
	Received     int
	ListRequests int
	Logins       int
	Refreshes    int
	Rejected     int // 401 replies
	RateLimited  int // 429 replies
	// MaxInFlight is the most list requests that were being served at once.
	MaxInFlight int
}

// TokenInfo is an upload token as the fake holds it.
type TokenInfo = apimodel.Token

// Server is a running fake.
type Server struct {
	URL string

	http     *httptest.Server
	opts     Options
	account  *apimodel.Account
	sessions *apimodel.Sessions
	limit    *apimodel.RateLimit
	closed   chan struct{}

	mu       sync.Mutex
	faults   map[int][]Fault // page (0: any page) -> queued faults
	onList   func(page int)
	latency  time.Duration
	stats    Stats
	pageHits map[int]int
	inFlight int
}

// NewServer starts a fake on a loopback port. Close it when done.
func NewServer(opts Options) *Server {
	s := newServer(opts)
	s.http = httptest.NewServer(s)
	s.URL = s.http.URL
	return s
}

// newServer builds a fake without starting it.
func newServer(opts Options) *Server {
	if opts.APIKey == "" {
		opts.APIKey = DefaultAPIKey
	}
	if opts.AccessTokenTTL == 0 {
		opts.AccessTokenTTL = time.Hour
	}
	if opts.RateLimit == 0 {
		opts.RateLimit = 500
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Server{
		opts: opts,
		account: apimodel.New(apimodel.Options{
			Tokens: opts.Tokens, WithoutExpiry: opts.WithoutExpiry, Spread: opts.Spread, TTLs: opts.TTLs,
			Seed: opts.Seed, Churn: opts.Churn, PastEnd: opts.PastEnd, Now: opts.Now,
		}),
		sessions: apimodel.NewSessions(opts.APIKey, opts.AccessTokenTTL, opts.Now),
		limit:    apimodel.NewRateLimit(opts.RateLimit, opts.Now),
		closed:   make(chan struct{}),
		faults:   map[int][]Fault{},
		pageHits: map[int]int{},
		latency:  opts.Latency,
	}
}

// Close stops the fake and any hanging replies.
func (s *Server) Close() {
	select {
	case <-s.closed:
	default:
		close(s.closed)
	}
	s.http.CloseClientConnections()
	s.http.Close()
}

// APIKey is the key the fake accepts.
func (s *Server) APIKey() string { return s.sessions.Key() }

// Account is the simulated account the fake serves.
func (s *Server) Account() *apimodel.Account { return s.account }

// Tokens returns the active tokens, oldest first.
func (s *Server) Tokens() []TokenInfo { return s.account.Tokens() }

// SetTokens replaces the account's tokens.
func (s *Server) SetTokens(tokens []TokenInfo) { s.account.SetTokens(tokens) }

// AddTokens creates n tokens with the given ttl in seconds (0: no expiry)
// now, and returns them.
func (s *Server) AddTokens(n, ttl int) []TokenInfo { return s.account.AddTokens(n, ttl) }

// RemoveToken deletes the i-th active token, oldest first.
func (s *Server) RemoveToken(i int) { s.account.RemoveToken(i) }

// SetLatency changes the delay of every reply.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	s.latency = d
	s.mu.Unlock()
}

// FailPage queues faults for the next requests of a page (0: any page).
func (s *Server) FailPage(page int, faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[page] = append(s.faults[page], faults...)
}

// FailAuth queues a fault for the next n requests to the auth endpoints.
func (s *Server) FailAuth(f Fault, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults[authFaults] = append(s.faults[authFaults], f)
	}
}

// OnList sets a hook called with the page number before each list reply.
func (s *Server) OnList(hook func(page int)) {
	s.mu.Lock()
	s.onList = hook
	s.mu.Unlock()
}

// ExpireAccessTokens makes every issued access token invalid, as when
// tokens expire or are revoked.
func (s *Server) ExpireAccessTokens() { s.sessions.ExpireAll() }

// SetAPIKey changes the accepted key, as a key rotation does.
func (s *Server) SetAPIKey(key string) { s.sessions.SetKey(key) }

// Stats returns the request counts so far.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// PageRequests returns how often each page was requested.
func (s *Server) PageRequests() map[int]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[int]int, len(s.pageHits))
	for k, v := range s.pageHits {
		out[k] = v
	}
	return out
}

// ResetStats zeroes the request counts.
func (s *Server) ResetStats() {
	s.mu.Lock()
	s.stats = Stats{}
	s.pageHits = map[int]int{}
	s.mu.Unlock()
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.stats.Received++
	latency := s.latency
	list := r.URL.Path == "/upload-tokens"
	if list {
		s.inFlight++
		s.stats.MaxInFlight = max(s.stats.MaxInFlight, s.inFlight)
	}
	s.mu.Unlock()
	if list {
		defer func() {
			s.mu.Lock()
			s.inFlight--
			s.mu.Unlock()
		}()
	}
	if latency > 0 {
		select {
		case <-time.After(latency):
		case <-r.Context().Done():
			return
		case <-s.closed:
			return
		}
	}
	if !s.takeRateLimit(w) {
		return
	}
	if strings.HasPrefix(r.URL.Path, "/auth/") && s.authFault(w, r) {
		return
	}
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/auth/api-key":
		s.serveLogin(w, r)
	case r.Method == http.MethodPost && r.URL.Path == "/auth/refresh":
		s.serveRefresh(w, r)
	case r.Method == http.MethodGet && r.URL.Path == "/upload-tokens":
		s.serveList(w, r)
	default:
		apimodel.WriteProblem(w, http.StatusNotFound, apimodel.TypeNotFound, "The requested resource was not found.", "")
	}
}

// authFault injects the next queued auth fault, if any.
func (s *Server) authFault(w http.ResponseWriter, r *http.Request) bool {
	s.mu.Lock()
	q := s.faults[authFaults]
	if len(q) == 0 {
		s.mu.Unlock()
		return false
	}
	f := q[0]
	s.faults[authFaults] = q[1:]
	s.mu.Unlock()
	return s.inject(w, r, f, nil)
}

// takeRateLimit sets the rate-limit headers and, when enforcing, answers
// 429 once the minute's budget is spent.
func (s *Server) takeRateLimit(w http.ResponseWriter) bool {
	if s.limit.Take(w) || !s.opts.EnforceRateLimit {
		return true
	}
	s.mu.Lock()
	s.stats.RateLimited++
	s.mu.Unlock()
	apimodel.WriteProblem(w, http.StatusTooManyRequests, apimodel.TypeTooManyRequests, "Too many requests.", "")
	return false
}

func (s *Server) serveLogin(w http.ResponseWriter, r *http.Request) {
	ok := s.sessions.ServeLogin(w, r)
	s.mu.Lock()
	s.stats.Logins++
	if !ok {
		s.stats.Rejected++
	}
	s.mu.Unlock()
}

func (s *Server) serveRefresh(w http.ResponseWriter, r *http.Request) {
	s.sessions.ServeRefresh(w, r)
	s.mu.Lock()
	s.stats.Refreshes++
	s.mu.Unlock()
}

func (s *Server) serveList(w http.ResponseWriter, r *http.Request) {
	if !s.sessions.Authorized(r) {
		s.mu.Lock()
		s.stats.Rejected++
		s.mu.Unlock()
		apimodel.WriteUnauthorized(w)
		return
	}
	q, bad := apimodel.ParseListQuery(r)
	if bad != nil {
		bad.Write(w)
		return
	}

	s.mu.Lock()
	s.stats.ListRequests++
	s.pageHits[q.CurrentPage]++
	hook := s.onList
	var fault *Fault
	for _, key := range []int{q.CurrentPage, 0} {
		if queued := s.faults[key]; len(queued) > 0 {
			fault = &queued[0]
			s.faults[key] = queued[1:]
			break
		}
	}
	s.mu.Unlock()
	if hook != nil {
		hook(q.CurrentPage)
	}
	reply := s.account.Page(q)
	if fault != nil && s.inject(w, r, *fault, reply.Body) {
		return
	}
	if pad := s.opts.PadPagesTo - len(reply.Body); pad > 0 {
		reply.Body = append(bytes.Repeat([]byte{' '}, pad), reply.Body...)
	}
	reply.Write(w)
}

// inject writes a faulty reply and reports whether it did.
func (s *Server) inject(w http.ResponseWriter, r *http.Request, f Fault, body []byte) bool {
	switch f.Kind {
	case FaultStatus:
		apimodel.WriteProblem(w, f.Status, apimodel.TypeInternal, http.StatusText(f.Status), "")
	case FaultRateLimited:
		s.mu.Lock()
		s.stats.RateLimited++
		s.mu.Unlock()
		w.Header().Set("X-RateLimit-Remaining", "0")
		w.Header().Set("X-RateLimit-Retry-After", strconv.Itoa(f.RetryAfter))
		apimodel.WriteProblem(w, http.StatusTooManyRequests, apimodel.TypeTooManyRequests, "Too many requests.", "")
	case FaultMalformed:
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`<html><body>502 Bad Gateway</body></html>`))
	case FaultTruncated:
		w.Header().Set("Content-Type", "application/json")
		w.Write(body[:len(body)/2])
	case FaultWrongShape:
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"data":[]}`))
	case FaultOversize:
		w.Header().Set("Content-Type", "application/json")
		pad := strings.Repeat(" ", max(f.Size-len(body), 0))
		w.Write(append([]byte(pad), body...))
	case FaultReset:
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body[:len(body)/2])
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		panic(http.ErrAbortHandler)
	case FaultHang:
		select {
		case <-r.Context().Done():
		case <-s.closed:
		}
	default:
		return false
	}
	return true
}
