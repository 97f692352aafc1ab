package apiclient

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Sentinel errors, for errors.Is. Errors returned by the client wrap one of
// these, or a network or context error, with the request that failed.
var (
	// ErrUnauthorized means api.video rejected the API key or the access token.
	ErrUnauthorized = errors.New("api.video rejected the credentials")
	// ErrRateLimited means api.video answered 429 and its wait did not fit in the deadline.
	ErrRateLimited = errors.New("rate limited by api.video")
	// ErrMalformedResponse means a reply could not be decoded or lacked required fields.
	ErrMalformedResponse = errors.New("malformed response from api.video")
	// ErrResponseTooLarge means a reply exceeded the client's body size cap.
	ErrResponseTooLarge = errors.New("response from api.video too large")
	// ErrInconsistentListing means the token list changed under the reader twice in a row.
	ErrInconsistentListing = errors.New("token listing changed while it was read")
	// ErrNoAPIKey means the key source returned an empty key.
	ErrNoAPIKey = errors.New("no api.video API key")
)

// APIError is an error reply from api.video: a non-2xx status, with the
// fields of its JSON problem body when it had one.
type APIError struct {
	StatusCode int
	Type       string
	Title      string
	Name       string
	Detail     string
	// RetryAfterSeconds is X-RateLimit-Retry-After (or Retry-After), -1 when absent.
	RetryAfterSeconds int
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "api.video answered %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	if e.Title != "" {
		fmt.Fprintf(&b, ": %s", e.Title)
	}
	if e.Name != "" {
		fmt.Fprintf(&b, " (%s)", e.Name)
	}
	if e.Detail != "" {
		fmt.Fprintf(&b, ": %s", e.Detail)
	}
	return b.String()
}

// Is lets errors.Is(err, ErrUnauthorized) and errors.Is(err, ErrRateLimited)
// match the API errors that mean those things.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrUnauthorized:
		return e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden
	case ErrRateLimited:
		return e.StatusCode == http.StatusTooManyRequests
	}
	return false
}
