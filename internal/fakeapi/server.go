// Package fakeapi is a fake of the api.video API for tests, benchmarks
// and the exporter's demo mode. It speaks the documented shapes of
// POST /auth/api-key, POST /auth/refresh and GET /upload-tokens: Bearer and
// Basic auth, pagination with links, JSON problem bodies and rate-limit
// headers. Knobs inject latency and faults.
package fakeapi

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
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
	// Seed makes token values and lifetimes reproducible.
	Seed uint64
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
	ListRequests int
	Logins       int
	Refreshes    int
	Rejected     int // 401 replies
	RateLimited  int // 429 replies
	// MaxInFlight is the most list requests that were being served at once.
	MaxInFlight int
}

// TokenInfo is an upload token as the fake holds it.
type TokenInfo struct {
	Token     string
	CreatedAt time.Time
	// TTL in seconds; 0 for a token that never expires.
	TTL int
}

// ExpiresAt is the zero time for a token that never expires.
func (t TokenInfo) ExpiresAt() time.Time {
	if t.TTL == 0 {
		return time.Time{}
	}
	return t.CreatedAt.Add(time.Duration(t.TTL) * time.Second)
}

// Server is a running fake.
type Server struct {
	URL string

	http   *httptest.Server
	opts   Options
	now    func() time.Time
	closed chan struct{}

	mu       sync.Mutex
	rng      *rand.Rand
	tokens   []TokenInfo
	pruneAt  time.Time            // earliest expiry among tokens; zero after a change
	access   map[string]time.Time // access token -> expiry
	refresh  map[string]bool
	faults   map[int][]Fault // page (0: any page) -> queued faults
	onList   func(page int)
	latency  time.Duration
	window   time.Time
	used     int
	stats    Stats
	pageHits map[int]int
	inFlight int
	issued   atomic.Int64
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
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	s := &Server{
		opts:     opts,
		now:      now,
		closed:   make(chan struct{}),
		rng:      rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15)),
		access:   map[string]time.Time{},
		refresh:  map[string]bool{},
		faults:   map[int][]Fault{},
		pageHits: map[int]int{},
		latency:  opts.Latency,
	}
	s.tokens = s.generate(opts.Tokens, opts.WithoutExpiry, now())
	return s
}

// Listen starts the fake on a listener of the caller's, for a fixed address.
func Listen(l net.Listener, opts Options) *Server {
	s := newServer(opts)
	s.http = &httptest.Server{Listener: l, Config: &http.Server{Handler: s}}
	s.http.Start()
	s.URL = s.http.URL
	return s
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
func (s *Server) APIKey() string { return s.opts.APIKey }

const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// newTokenValue returns a token in api.video's shape: "to" and 22 characters.
func (s *Server) newTokenValue() string {
	b := make([]byte, 24)
	b[0], b[1] = 't', 'o'
	for i := 2; i < len(b); i++ {
		b[i] = alphabet[s.rng.IntN(len(alphabet))]
	}
	return string(b)
}

// generate makes n tokens, the first withoutExpiry of them with ttl 0, the
// others with lives from minutes to weeks, created in the last minute.
func (s *Server) generate(n, withoutExpiry int, now time.Time) []TokenInfo {
	out := make([]TokenInfo, n)
	for i := range out {
		out[i] = TokenInfo{Token: s.newTokenValue(), CreatedAt: now.Add(-time.Duration(s.rng.IntN(60)) * time.Second).Truncate(time.Second)}
		if i >= withoutExpiry {
			out[i].TTL = 600 + s.rng.IntN(14*24*3600)
		}
	}
	// Spread the tokens without expiry through the list, as a real account would.
	s.rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// Tokens returns the active tokens, in list order.
func (s *Server) Tokens() []TokenInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]TokenInfo(nil), s.activeLocked()...)
}

// SetTokens replaces the account's tokens.
func (s *Server) SetTokens(tokens []TokenInfo) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens = append([]TokenInfo(nil), tokens...)
	s.pruneAt = time.Time{}
}

// AddTokens creates n tokens with the given ttl in seconds (0: no expiry) at
// the end of the list and returns them.
func (s *Server) AddTokens(n, ttl int) []TokenInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().Truncate(time.Second)
	added := make([]TokenInfo, n)
	for i := range added {
		added[i] = TokenInfo{Token: s.newTokenValue(), CreatedAt: now, TTL: ttl}
	}
	s.tokens = append(s.tokens, added...)
	s.pruneAt = time.Time{}
	return added
}

// RemoveToken deletes the token at index i of the active list.
func (s *Server) RemoveToken(i int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	active := s.activeLocked()
	victim := active[i].Token
	for j, t := range s.tokens {
		if t.Token == victim {
			s.tokens = append(s.tokens[:j], s.tokens[j+1:]...)
			return
		}
	}
}

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
func (s *Server) ExpireAccessTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.access = map[string]time.Time{}
}

// SetAPIKey changes the accepted key, as a key rotation does.
func (s *Server) SetAPIKey(key string) {
	s.mu.Lock()
	s.opts.APIKey = key
	s.mu.Unlock()
}

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

// activeLocked drops expired tokens, as api.video lists active ones only.
// It scans the tokens only once the earliest expiry has passed, so that a
// listing of n pages does not cost n scans of a large account.
func (s *Server) activeLocked() []TokenInfo {
	now := s.now()
	if !s.pruneAt.IsZero() && now.Before(s.pruneAt) {
		return s.tokens
	}
	never := time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	s.pruneAt = never
	kept := s.tokens[:0]
	for _, t := range s.tokens {
		if t.TTL == 0 {
			kept = append(kept, t)
			continue
		}
		if exp := t.ExpiresAt(); exp.After(now) {
			kept = append(kept, t)
			if exp.Before(s.pruneAt) {
				s.pruneAt = exp
			}
		}
	}
	s.tokens = kept
	return kept
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
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
		writeProblem(w, http.StatusNotFound, "https://docs.api.video/reference/resource-not-found", "The requested resource was not found.", "")
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
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if now.Sub(s.window) >= time.Minute {
		s.window = now
		s.used = 0
	}
	s.used++
	remaining := max(s.opts.RateLimit-s.used, 0)
	retryAfter := int((time.Minute - now.Sub(s.window) + time.Second - 1) / time.Second)
	h := w.Header()
	h.Set("X-RateLimit-Limit", strconv.Itoa(s.opts.RateLimit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
	h.Set("X-RateLimit-Retry-After", strconv.Itoa(retryAfter))
	if s.opts.EnforceRateLimit && s.used > s.opts.RateLimit {
		s.stats.RateLimited++
		writeProblem(w, http.StatusTooManyRequests, "https://docs.api.video/reference/too-many-requests", "Too many requests.", "")
		return false
	}
	return true
}

func (s *Server) serveLogin(w http.ResponseWriter, r *http.Request) {
	var body struct {
		APIKey string `json:"apiKey"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.APIKey == "" {
		writeProblem(w, http.StatusBadRequest, "https://docs.api.video/reference/invalid-attribute", "This attribute is required.", "apiKey")
		return
	}
	s.mu.Lock()
	s.stats.Logins++
	ok := body.APIKey == s.opts.APIKey
	if !ok {
		s.stats.Rejected++
	}
	s.mu.Unlock()
	if !ok {
		writeProblem(w, http.StatusUnauthorized, "https://docs.api.video/reference/authentication-failed", "The API key is invalid.", "")
		return
	}
	s.issue(w)
}

func (s *Server) serveRefresh(w http.ResponseWriter, r *http.Request) {
	var body struct {
		RefreshToken string `json:"refreshToken"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.RefreshToken == "" {
		writeProblem(w, http.StatusBadRequest, "https://docs.api.video/reference/invalid-attribute", "This attribute is required.", "refreshToken")
		return
	}
	s.mu.Lock()
	s.stats.Refreshes++
	ok := s.refresh[body.RefreshToken]
	delete(s.refresh, body.RefreshToken)
	s.mu.Unlock()
	if !ok {
		writeProblem(w, http.StatusBadRequest, "https://docs.api.video/reference/authentication-failed", "The refresh token is invalid.", "refreshToken")
		return
	}
	s.issue(w)
}

func (s *Server) issue(w http.ResponseWriter) {
	n := s.issued.Add(1)
	access := fmt.Sprintf("access-%d-%d", n, s.now().UnixNano())
	refresh := fmt.Sprintf("refresh-%d-%d", n, s.now().UnixNano())
	s.mu.Lock()
	s.access[access] = s.now().Add(s.opts.AccessTokenTTL)
	s.refresh[refresh] = true
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"token_type":    "Bearer",
		"expires_in":    int(s.opts.AccessTokenTTL / time.Second),
		"access_token":  access,
		"refresh_token": refresh,
	})
}

// authorized accepts a live Bearer token, or Basic auth with the API key as
// user name.
func (s *Server) authorized(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	s.mu.Lock()
	defer s.mu.Unlock()
	if tok, ok := strings.CutPrefix(h, "Bearer "); ok {
		exp, found := s.access[tok]
		return found && s.now().Before(exp)
	}
	if enc, ok := strings.CutPrefix(h, "Basic "); ok {
		raw, err := base64.StdEncoding.DecodeString(enc)
		if err != nil {
			return false
		}
		user, _, _ := strings.Cut(string(raw), ":")
		return user == s.opts.APIKey
	}
	return false
}

func (s *Server) serveList(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(r) {
		s.mu.Lock()
		s.stats.Rejected++
		s.mu.Unlock()
		writeProblem(w, http.StatusUnauthorized, "https://docs.api.video/reference/authentication-failed", "Unauthorized request.", "")
		return
	}
	q := r.URL.Query()
	current, size := 1, 25
	if v := q.Get("currentPage"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeProblem(w, http.StatusBadRequest, "https://docs.api.video/reference/invalid-attribute", "This value should be greater than or equal to 1.", "currentPage")
			return
		}
		current = n
	}
	if v := q.Get("pageSize"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			writeProblem(w, http.StatusBadRequest, "https://docs.api.video/reference/invalid-attribute", "This value should be between 1 and 100.", "pageSize")
			return
		}
		size = n
	}

	s.mu.Lock()
	s.stats.ListRequests++
	s.pageHits[current]++
	hook := s.onList
	var fault *Fault
	for _, key := range []int{current, 0} {
		if q := s.faults[key]; len(q) > 0 {
			fault = &q[0]
			s.faults[key] = q[1:]
			break
		}
	}
	s.mu.Unlock()
	if hook != nil {
		hook(current)
	}
	body := s.page(current, size)
	if fault != nil && s.inject(w, r, *fault, body) {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Write(body)
}

// inject writes a faulty reply and reports whether it did.
func (s *Server) inject(w http.ResponseWriter, r *http.Request, f Fault, body []byte) bool {
	switch f.Kind {
	case FaultStatus:
		writeProblem(w, f.Status, "https://docs.api.video/reference/internal-error", http.StatusText(f.Status), "")
	case FaultRateLimited:
		s.mu.Lock()
		s.stats.RateLimited++
		s.mu.Unlock()
		w.Header().Set("X-RateLimit-Remaining", "0")
		w.Header().Set("X-RateLimit-Retry-After", strconv.Itoa(f.RetryAfter))
		writeProblem(w, http.StatusTooManyRequests, "https://docs.api.video/reference/too-many-requests", "Too many requests.", "")
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

type tokenJSON struct {
	CreatedAt string  `json:"createdAt"`
	ExpiresAt *string `json:"expiresAt"`
	Token     string  `json:"token"`
	TTL       int     `json:"ttl"`
}

type linkJSON struct {
	Rel string `json:"rel"`
	URI string `json:"uri"`
}

// dateFormats are the shapes api.video's dates come in; tokens take them in turn.
var dateFormats = []string{"2006-01-02T15:04:05-07:00", "2006-01-02T15:04:05.000Z07:00", time.RFC3339}

func formatDate(t time.Time, i int) string {
	return t.UTC().Format(dateFormats[i%len(dateFormats)])
}

func (s *Server) page(current, size int) []byte {
	s.mu.Lock()
	active := s.activeLocked()
	total := len(active)
	pagesTotal := max((total+size-1)/size, 1)
	start := min((current-1)*size, total)
	end := min(start+size, total)
	items := make([]tokenJSON, 0, end-start)
	for i, t := range active[start:end] {
		n := start + i
		item := tokenJSON{CreatedAt: formatDate(t.CreatedAt, n), Token: t.Token, TTL: t.TTL}
		if t.TTL != 0 {
			e := formatDate(t.ExpiresAt(), n)
			item.ExpiresAt = &e
		}
		items = append(items, item)
	}
	s.mu.Unlock()
	uri := func(p int) string { return fmt.Sprintf("/upload-tokens?currentPage=%d&pageSize=%d", p, size) }
	links := []linkJSON{{"self", uri(current)}, {"first", uri(1)}}
	if current > 1 {
		links = append(links, linkJSON{"previous", uri(current - 1)})
	}
	if current < pagesTotal {
		links = append(links, linkJSON{"next", uri(current + 1)})
	}
	links = append(links, linkJSON{"last", uri(pagesTotal)})
	body, _ := json.Marshal(map[string]any{
		"data": items,
		"pagination": map[string]any{
			"currentPage":      current,
			"currentPageItems": len(items),
			"pageSize":         size,
			"pagesTotal":       pagesTotal,
			"itemsTotal":       total,
			"links":            links,
		},
	})
	return body
}

func writeProblem(w http.ResponseWriter, status int, typ, title, name string) {
	p := map[string]any{"type": typ, "title": title, "status": status}
	if name != "" {
		p["name"] = name
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(p)
}
