package apiclient

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"
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
	// ErrInconsistentListing means the token list moved faster than it could be
	// read, or its pages contradict each other.
	ErrInconsistentListing = errors.New("token listing changed while it was read")
	// ErrNoAPIKey means the key source returned an empty key.
	ErrNoAPIKey = errors.New("no api.video API key")
	// ErrUnexpectedReply means api.video answered in a way it never should,
	// such as a redirect.
	ErrUnexpectedReply = errors.New("unexpected reply from api.video")
)

// APIError is an error reply from api.video: a non-2xx status, with the
// fields of its JSON problem body when it had one. The text fields are
// scrubbed before they are stored: anything that looks like a key or a
// token is replaced by [redacted], and they are cut to a few hundred bytes
// of printable UTF-8, since api.video may echo what it was sent.
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
	if e.StatusCode >= 300 && e.StatusCode < 400 {
		b.WriteString(" (a redirect, not followed)")
	}
	if e.Type != "" {
		fmt.Fprintf(&b, " [%s]", e.Type)
	}
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

const (
	redactedText = "[redacted]"
	// maxProblemText bounds each text field kept from a problem body.
	maxProblemText = 200
)

// scrub makes text from api.video safe to log: the given secrets and any
// word that looks like a key or a token become [redacted], control
// characters and invalid UTF-8 become spaces and U+FFFD, and the result is
// cut to limit bytes (no limit when 0).
func scrub(text string, limit int, secrets ...string) string {
	for _, s := range secrets {
		if len(s) >= 4 {
			text = strings.ReplaceAll(text, s, redactedText)
		}
	}
	var b strings.Builder
	for i := 0; i < len(text); {
		if j := wordEnd(text, i); j > i {
			if looksSecret(text[i:j]) {
				b.WriteString(redactedText)
			} else {
				b.WriteString(text[i:j])
			}
			i = j
			continue
		}
		r, size := utf8.DecodeRuneInString(text[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			b.WriteRune(utf8.RuneError)
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			b.WriteByte(' ')
		default:
			b.WriteString(text[i : i+size])
		}
		i += size
	}
	out := b.String()
	if limit > 0 && len(out) > limit {
		cut := limit
		for cut > 0 && !utf8.RuneStart(out[cut]) {
			cut--
		}
		out = out[:cut] + "..."
	}
	return out
}

// wordEnd returns the end of the run of [A-Za-z0-9_] starting at i.
func wordEnd(s string, i int) int {
	for i < len(s) {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			break
		}
		i++
	}
	return i
}

// looksSecret reports whether word could be an API key, an upload token or
// a piece of an access token: 24 characters or more, or 10 or more with a
// digit or three capitals after the first letter, as random base62 nearly
// always has. Prose, camel-case names (currentPage, TooManyRequests) and
// api.video's problem slugs (authentication-failed) pass.
func looksSecret(word string) bool {
	if len(word) >= 24 {
		return true
	}
	if len(word) < 10 {
		return false
	}
	capitals := 0
	for i := 0; i < len(word); i++ {
		switch c := word[i]; {
		case c >= '0' && c <= '9':
			return true
		case i > 0 && c >= 'A' && c <= 'Z':
			capitals++
		}
	}
	return capitals >= 3
}

// scrubbedError carries an error whose text may hold what api.video sent
// (Go's HTTP client quotes a malformed status line, for example) with that
// text scrubbed; errors.Is and errors.As still see the original.
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

func scrubError(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := scrub(msg, 0, secrets...)
	if clean == msg {
		return err
	}
	return &scrubbedError{msg: clean, err: err}
}
