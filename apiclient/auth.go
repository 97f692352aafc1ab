package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/go-kit/log/level"
)

// renewBefore is how long before its expiry an access token is replaced, so
// that a token never expires between the pages of one scrape. Short-lived
// tokens are renewed after three quarters of their life instead.
const renewBefore = 5 * time.Minute

// Bounds on expires_in. api.video's access tokens live an hour; a reply
// without expires_in (or with 0) is taken to mean that, and a longer life
// than a day is read as a day, so that no reply can push the renewal out
// of range.
const (
	defaultTokenLife = time.Hour
	maxTokenLife     = 24 * time.Hour
	// maxCredentialBytes bounds an access or refresh token, which is sent
	// back in a header or body.
	maxCredentialBytes = 8 << 10
)

// authenticator holds the Bearer token and renews it. Logins are serialised
// through sem, a one-slot semaphore that callers can stop waiting on when
// their context ends.
type authenticator struct {
	client *Client
	key    KeySource
	now    func() time.Time
	sem    chan struct{}

	mu      sync.Mutex
	access  string
	refresh string
	renewAt time.Time
	expiry  time.Time
	// loginKey is the key of the last login that succeeded.
	loginKey string
}

type tokenReply struct {
	AccessToken  string      `json:"access_token"`
	RefreshToken string      `json:"refresh_token"`
	ExpiresIn    json.Number `json:"expires_in"`
}

// life reads expires_in, a number of seconds: 0 or absent means
// defaultTokenLife, more than maxTokenLife (however large) is clamped to
// it, and a negative or non-numeric value is an error.
func (r *tokenReply) life() (time.Duration, error) {
	if r.ExpiresIn == "" {
		return defaultTokenLife, nil
	}
	f, err := strconv.ParseFloat(string(r.ExpiresIn), 64)
	if (err != nil && !errors.Is(err, strconv.ErrRange)) || math.IsNaN(f) || f < 0 {
		return 0, errors.New("expires_in is not a number of seconds")
	}
	switch {
	case f == 0:
		return defaultTokenLife, nil
	case f >= maxTokenLife.Seconds():
		return maxTokenLife, nil
	}
	return time.Duration(f * float64(time.Second)), nil
}

// validCredential reports whether an access or refresh token can be sent
// back as it is: printable ASCII of a sane length.
func validCredential(s string) bool {
	if len(s) > maxCredentialBytes {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// token returns a valid access token, logging in or refreshing first when
// the cached one is missing or about to expire.
func (a *authenticator) token(ctx context.Context) (string, error) {
	if t, ok := a.cached(); ok {
		return t, nil
	}
	select {
	case a.sem <- struct{}{}:
	case <-ctx.Done():
		return "", fmt.Errorf("waiting for login: %w", ctx.Err())
	}
	defer func() { <-a.sem }()
	// Another caller may have logged in while this one waited.
	if t, ok := a.cached(); ok {
		return t, nil
	}
	t, err := a.renew(ctx)
	if err == nil {
		return t, nil
	}
	// A token due for renewal still works until it expires: ride out a
	// failing auth endpoint on it rather than fail scrapes early.
	a.mu.Lock()
	current, expiry := a.access, a.expiry
	a.mu.Unlock()
	if current != "" && ctx.Err() == nil && a.now().Before(expiry) {
		level.Warn(a.client.logger).Log("msg", "renewing the api.video access token failed, using the current one until it expires", "expires_in", expiry.Sub(a.now()).Round(time.Second), "err", scrubError(err, current))
		return current, nil
	}
	return "", err
}

// renew gets a new access token: through the refresh token when there is
// one, else (or when that fails) by logging in with the key.
func (a *authenticator) renew(ctx context.Context) (string, error) {
	a.mu.Lock()
	refresh, loginKey := a.refresh, a.loginKey
	a.mu.Unlock()
	if refresh != "" {
		// An upstream that echoes the key it was given at login gets it
		// scrubbed from refresh errors too.
		t, err := a.grant(ctx, "/auth/refresh", map[string]string{"refreshToken": refresh}, refresh, loginKey)
		if err == nil {
			return t, nil
		}
		if ctx.Err() != nil {
			return "", err
		}
		level.Debug(a.client.logger).Log("msg", "refreshing the access token failed, logging in again", "err", err)
	}
	key, err := a.key(ctx)
	if err != nil {
		return "", fmt.Errorf("logging in to api.video: %w", err)
	}
	if key == "" {
		return "", fmt.Errorf("logging in to api.video: %w", ErrNoAPIKey)
	}
	t, err := a.grant(ctx, "/auth/api-key", map[string]string{"apiKey": key}, key)
	if err == nil {
		a.mu.Lock()
		a.loginKey = key
		a.mu.Unlock()
	}
	var apiErr *APIError
	switch {
	case err == nil:
		return t, nil
	case errors.As(err, &apiErr) && apiErr.StatusCode < 400:
		// A redirect (never followed) or an odd 1xx/2xx says nothing of the key.
		return "", fmt.Errorf("logging in to api.video: %w: %w", ErrUnexpectedReply, err)
	case errors.As(err, &apiErr) && apiErr.StatusCode < 500 && apiErr.StatusCode != http.StatusTooManyRequests:
		// api.video answers a wrong key with 400 or 404 as well as 401.
		return "", fmt.Errorf("logging in to api.video: %w", rejectedKeyError{err})
	default:
		return "", fmt.Errorf("logging in to api.video: %w", err)
	}
}

// rejectedKeyError is a login refused for its key; it matches ErrUnauthorized.
type rejectedKeyError struct{ err error }

func (e rejectedKeyError) Error() string   { return "the API key was rejected: " + e.err.Error() }
func (e rejectedKeyError) Unwrap() []error { return []error{ErrUnauthorized, e.err} }

func (a *authenticator) cached() (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.access != "" && a.now().Before(a.renewAt) {
		return a.access, true
	}
	return "", false
}

// invalidate forgets token after api.video refused it, so that the next
// call logs in afresh with the key rather than trusting a refresh token
// from the same session.
func (a *authenticator) invalidate(token string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.access == token {
		a.access, a.refresh, a.renewAt, a.expiry = "", "", time.Time{}, time.Time{}
	}
}

// grant posts payload, which carries secrets, to path and keeps the
// tokens of the reply.
func (a *authenticator) grant(ctx context.Context, path string, payload map[string]string, secrets ...string) (string, error) {
	body, err := json.Marshal(payload)
	if err != nil {
		return "", err
	}
	buf := a.client.bodies.Get().(*bytes.Buffer)
	defer a.client.putBody(buf)
	issued := a.now()
	if err := a.client.do(ctx, request{method: http.MethodPost, path: path, body: body, secrets: secrets}, buf); err != nil {
		return "", err
	}
	var reply tokenReply
	if err := json.Unmarshal(buf.Bytes(), &reply); err != nil || reply.AccessToken == "" {
		return "", fmt.Errorf("POST %s: %w: no access_token in the reply", path, ErrMalformedResponse)
	}
	if !validCredential(reply.AccessToken) || !validCredential(reply.RefreshToken) {
		return "", fmt.Errorf("POST %s: %w: access_token or refresh_token is not printable ASCII of at most %d bytes", path, ErrMalformedResponse, maxCredentialBytes)
	}
	life, err := reply.life()
	if err != nil {
		return "", fmt.Errorf("POST %s: %w: %w", path, ErrMalformedResponse, err)
	}
	a.mu.Lock()
	a.access = reply.AccessToken
	a.refresh = reply.RefreshToken
	a.renewAt = issued.Add(life - min(renewBefore, life/4))
	a.expiry = issued.Add(life)
	a.mu.Unlock()
	return reply.AccessToken, nil
}
