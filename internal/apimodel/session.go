package apimodel

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Sessions is api.video's authentication: POST /auth/api-key and
// POST /auth/refresh issue Bearer tokens; Basic auth with the key as user
// name works too. It is safe for concurrent use.
type Sessions struct {
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	key     string
	access  map[string]time.Time // access token -> expiry
	refresh map[string]bool
	issued  int64
}

// NewSessions accepts key and issues access tokens that live ttl.
func NewSessions(key string, ttl time.Duration, now func() time.Time) *Sessions {
	return &Sessions{key: key, ttl: ttl, now: now, access: map[string]time.Time{}, refresh: map[string]bool{}}
}

// Key is the accepted API key.
func (s *Sessions) Key() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.key
}

// SetKey changes the accepted key, as a key rotation does.
func (s *Sessions) SetKey(key string) {
	s.mu.Lock()
	s.key = key
	s.mu.Unlock()
}

// ExpireAll makes every issued access token invalid.
func (s *Sessions) ExpireAll() {
	s.mu.Lock()
	s.access = map[string]time.Time{}
	s.mu.Unlock()
}

// ServeLogin answers POST /auth/api-key and reports whether it issued a
// token. A wrong key gets 400, as api.video answers it.
func (s *Sessions) ServeLogin(w http.ResponseWriter, r *http.Request) bool {
	var body struct {
		APIKey string `json:"apiKey"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.APIKey == "" {
		WriteProblem(w, http.StatusBadRequest, TypeInvalidAttribute, "This attribute is required.", "apiKey")
		return false
	}
	if body.APIKey != s.Key() {
		WriteProblem(w, http.StatusBadRequest, TypeInvalidCredential, "The user credentials were incorrect.", "")
		return false
	}
	s.issue(w)
	return true
}

// ServeRefresh answers POST /auth/refresh and reports whether it issued a token.
func (s *Sessions) ServeRefresh(w http.ResponseWriter, r *http.Request) bool {
	var body struct {
		RefreshToken string `json:"refreshToken"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.RefreshToken == "" {
		WriteProblem(w, http.StatusBadRequest, TypeInvalidAttribute, "This attribute is required.", "refreshToken")
		return false
	}
	s.mu.Lock()
	ok := s.refresh[body.RefreshToken]
	delete(s.refresh, body.RefreshToken)
	s.mu.Unlock()
	if !ok {
		WriteProblem(w, http.StatusBadRequest, TypeAuthFailed, "The refresh token is invalid.", "refreshToken")
		return false
	}
	s.issue(w)
	return true
}

func (s *Sessions) issue(w http.ResponseWriter) {
	s.mu.Lock()
	s.issued++
	now := s.now()
	access := fmt.Sprintf("access-%d-%d", s.issued, now.UnixNano())
	refresh := fmt.Sprintf("refresh-%d-%d", s.issued, now.UnixNano())
	s.access[access] = now.Add(s.ttl)
	s.refresh[refresh] = true
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"token_type":    "Bearer",
		"expires_in":    int(s.ttl / time.Second),
		"access_token":  access,
		"refresh_token": refresh,
	})
}

// Authorized accepts a live Bearer token, or Basic auth with the API key as
// user name.
func (s *Sessions) Authorized(r *http.Request) bool {
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
		return user == s.key
	}
	return false
}

// WriteUnauthorized answers a request without valid credentials.
func WriteUnauthorized(w http.ResponseWriter) {
	WriteProblem(w, http.StatusUnauthorized, TypeAuthFailed, "Unauthorized request.", "")
}

// RateLimit is api.video's per-minute request budget and its headers.
type RateLimit struct {
	Limit int
	now   func() time.Time

	mu     sync.Mutex
	window time.Time
	used   int
}

// NewRateLimit counts requests against limit a minute.
func NewRateLimit(limit int, now func() time.Time) *RateLimit {
	return &RateLimit{Limit: limit, now: now}
}

// Take counts one request, sets the X-RateLimit-* headers and reports
// whether the minute's budget still allowed it.
func (l *RateLimit) Take(w http.ResponseWriter) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if now.Sub(l.window) >= time.Minute {
		l.window = now
		l.used = 0
	}
	l.used++
	remaining := max(l.Limit-l.used, 0)
	retryAfter := int((time.Minute - now.Sub(l.window) + time.Second - 1) / time.Second)
	h := w.Header()
	h.Set("X-RateLimit-Limit", strconv.Itoa(l.Limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
	h.Set("X-RateLimit-Retry-After", strconv.Itoa(retryAfter))
	return l.used <= l.Limit
}

// Handler serves an account as api.video does: login, refresh and the
// list, with rate-limit headers; a 429 once the minute's budget is spent.
type Handler struct {
	Account  *Account
	Sessions *Sessions
	Limit    *RateLimit
}

func (h Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.Limit.Take(w) {
		WriteProblem(w, http.StatusTooManyRequests, TypeTooManyRequests, "Too many requests.", "")
		return
	}
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/auth/api-key":
		h.Sessions.ServeLogin(w, r)
	case r.Method == http.MethodPost && r.URL.Path == "/auth/refresh":
		h.Sessions.ServeRefresh(w, r)
	case r.Method == http.MethodGet && r.URL.Path == "/upload-tokens":
		if !h.Sessions.Authorized(r) {
			WriteUnauthorized(w)
			return
		}
		q, bad := ParseListQuery(r)
		if bad != nil {
			bad.Write(w)
			return
		}
		h.Account.Page(q).Write(w)
	default:
		WriteProblem(w, http.StatusNotFound, TypeNotFound, "The requested resource was not found.", "")
	}
}
