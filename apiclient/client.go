// Package apiclient is a small, goroutine-safe client for the parts of the
// api.video API that the exporter reads: authentication and the list of
// active delegated upload tokens.
package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/apivideo-exporter/apivideo_exporter/internal/boundedfile"
)

const (
	// DefaultURL is api.video's production host.
	DefaultURL = "https://ws.api.video"
	// MaxPageSize is the largest page api.video serves.
	MaxPageSize = 100
	// DefaultConcurrency is how many pages are fetched at once by default.
	DefaultConcurrency = 8
	// DefaultMaxBodyBytes caps a reply: a full page of 100 tokens is about
	// 15 KiB.
	DefaultMaxBodyBytes = 1 << 20
	// maxBodiesInFlight bounds the replies read at once across every
	// client of the process, so that replies near the cap take at most
	// maxBodiesInFlight × DefaultMaxBodyBytes, however many accounts and
	// requests are under way.
	maxBodiesInFlight = 16
	// MaxResponseHeaderBytes caps the headers of a reply, which the body
	// cap does not cover; api.video's are under 2 KiB.
	MaxResponseHeaderBytes = 64 << 10
	// MaxRetryAfter is the longest wait taken from Retry-After or
	// X-RateLimit-Retry-After: a larger value is read as this one, which
	// fits no scrape's deadline, so the scrape fails at once.
	MaxRetryAfter = 24 * time.Hour
	// maxRateLimitValue bounds X-RateLimit-Limit and X-RateLimit-Remaining.
	maxRateLimitValue = 1<<31 - 1

	maxAttempts  = 4
	backoffBase  = 100 * time.Millisecond
	backoffLimit = 2 * time.Second
)

// KeySource returns the API key. It is called whenever a new login is
// needed, so a key kept in a file can be rotated without a restart.
type KeySource func(ctx context.Context) (string, error)

// StaticKey returns a KeySource for a fixed key.
func StaticKey(key string) KeySource {
	return func(context.Context) (string, error) { return key, nil }
}

const (
	// MaxKeyFileBytes bounds an API key file: a key is about 44 characters.
	MaxKeyFileBytes = 4096
	// KeyCheckTimeout bounds the check of a key file at start or reload,
	// which no scrape's deadline bounds.
	KeyCheckTimeout = 5 * time.Second
)

// FileKey returns a KeySource that reads the key from path on every call,
// within the call's deadline: a file that is not regular (a FIFO, a
// device) or larger than MaxKeyFileBytes is refused, and a read that
// blocks (a hung mount) fails that call only.
func FileKey(path string) KeySource {
	file := boundedfile.New(path, MaxKeyFileBytes)
	return func(ctx context.Context) (string, error) {
		b, err := file.Read(ctx)
		if err != nil {
			return "", fmt.Errorf("reading API key file %s: %w", describePath(path), withoutPath(err))
		}
		return CleanKey(string(b)), nil
	}
}

// describePath names a key file in errors, unless the value looks like a
// key put where a path belongs: errors reach logs and /-/reload.
func describePath(path string) string {
	if strings.ContainsAny(path, `/\.`) {
		return strconv.Quote(path)
	}
	return "(a value that looks like a key rather than a path)"
}

// withoutPath drops the path that *os.PathError repeats.
func withoutPath(err error) error {
	if pe, ok := errors.AsType[*os.PathError](err); ok {
		return fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	return err
}

// CleanKey trims white space and a UTF-8 byte-order mark, which some
// editors write at the start of a file, from a key.
func CleanKey(s string) string {
	s = strings.TrimSpace(s)
	return strings.TrimSpace(strings.TrimPrefix(s, "\uFEFF"))
}

// LoadKey returns where the API key comes from: the file when one is
// given, read again at every login so that a rotated key is picked up,
// else the environment variable env, read once. Either is cleaned with
// CleanKey. It checks the key is there now, within ctx, so that a missing
// key fails at start rather than at the first scrape; an empty one is
// ErrNoAPIKey.
func LoadKey(ctx context.Context, file, env string) (KeySource, error) {
	if file != "" {
		src := FileKey(file)
		key, err := src(ctx)
		if err != nil {
			return nil, err
		}
		if key == "" {
			return nil, fmt.Errorf("%w: API key file %s is empty", ErrNoAPIKey, describePath(file))
		}
		return src, nil
	}
	if key := CleanKey(os.Getenv(env)); key != "" {
		return StaticKey(key), nil
	}
	return nil, fmt.Errorf("%w: environment variable %s is unset or empty", ErrNoAPIKey, describeEnv(env))
}

// describeEnv names an environment variable in errors, unless the value
// does not look like a variable's name (upper case, digits, underscores):
// a key put where the name belongs.
func describeEnv(name string) string {
	for _, c := range name {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return "(a value that looks like a key rather than a variable's name)"
		}
	}
	return name
}

// Config configures a Client. Only Key is required.
type Config struct {
	// BaseURL of the API; DefaultURL when empty.
	BaseURL string
	// Key supplies the API key.
	Key KeySource
	// UserAgent sent with every request.
	UserAgent string
	// Concurrency is how many pages are fetched at once; DefaultConcurrency when 0.
	Concurrency int
	// PageSize requested; MaxPageSize when 0.
	PageSize int
	// Transport for requests; a tuned http.Transport when nil.
	Transport http.RoundTripper
	// Registerer, when set, receives apivideo_api_requests_total and
	// apivideo_api_request_duration_seconds.
	Registerer prometheus.Registerer
	// Logger for retries and renewals; silent when nil.
	Logger log.Logger
	// Now is the clock that decides which tokens have expired and when
	// the access token is due for renewal; time.Now when nil.
	Now func() time.Time
}

// RateLimit is what the latest reply said of the rate limit.
type RateLimit struct {
	Limit     int
	Remaining int
}

// Client talks to api.video. It is safe for concurrent use.
type Client struct {
	baseURL     string
	userAgent   string
	concurrency int
	pageSize    int
	maxBody     int64
	http        *http.Client
	logger      log.Logger
	auth        *authenticator
	now         func() time.Time
	wallClock   bool
	decoders    sync.Pool
	bodies      sync.Pool
	// idle is the transport under the instrumentation, which alone can
	// close its idle connections.
	idle interface{ CloseIdleConnections() }
	// inFlight counts the requests under way; closed is set by Close.
	inFlight atomic.Int64
	closed   atomic.Bool

	rlMu      sync.Mutex
	rateLimit RateLimit
	rlKnown   bool
}

// New returns a Client for cfg.
func New(cfg Config) (*Client, error) {
	if cfg.Key == nil {
		return nil, fmt.Errorf("apiclient: %w", ErrNoAPIKey)
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultURL
	}
	if _, err := ParseBaseURL(cfg.BaseURL); err != nil {
		return nil, fmt.Errorf("apiclient: %w", err)
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.Concurrency < 1 {
		return nil, fmt.Errorf("apiclient: concurrency %d is below 1", cfg.Concurrency)
	}
	if cfg.PageSize == 0 {
		cfg.PageSize = MaxPageSize
	}
	if cfg.PageSize < 1 || cfg.PageSize > MaxPageSize {
		return nil, fmt.Errorf("apiclient: page size %d is outside 1..%d", cfg.PageSize, MaxPageSize)
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "apivideo_exporter"
	}
	if cfg.Logger == nil {
		cfg.Logger = log.NewNopLogger()
	}
	wallClock := cfg.Now == nil
	if wallClock {
		cfg.Now = time.Now
	}
	transport := cfg.Transport
	if transport == nil {
		transport = newTransport(cfg.Concurrency)
	}
	idle, _ := transport.(interface{ CloseIdleConnections() })
	if cfg.Registerer != nil {
		transport = instrument(cfg.Registerer, transport)
	}
	c := &Client{
		idle:        idle,
		baseURL:     strings.TrimRight(cfg.BaseURL, "/"),
		userAgent:   cfg.UserAgent,
		concurrency: cfg.Concurrency,
		pageSize:    cfg.PageSize,
		maxBody:     DefaultMaxBodyBytes,
		// No client-wide timeout: every call carries its deadline in its
		// context. No redirects: one would resend the login body, and the
		// key in it, to wherever it points.
		http: &http.Client{Transport: transport, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}},
		logger: cfg.Logger,
		now:    cfg.Now,
		// Waiting makes sense only on the wall clock.
		wallClock: wallClock,
	}
	c.auth = &authenticator{client: c, key: cfg.Key, now: cfg.Now, sem: make(chan struct{}, 1)}
	// One seed per client: token hashes are compared only within it.
	seed := maphash.MakeSeed()
	c.decoders.New = func() any { return &pageDecoder{seed: seed} }
	c.bodies.New = func() any { return new(bytes.Buffer) }
	return c, nil
}

// ErrBaseURL is returned for a base URL the client cannot use.
var ErrBaseURL = errors.New("invalid base URL")

// ParseBaseURL checks that raw is an http or https URL with a host and at
// most a path, as the API's base URL must be: request paths are appended to
// it, so a query or fragment would swallow them, and credentials in a URL
// end up in logs. Errors never quote user info.
func ParseBaseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: not a URL", ErrBaseURL)
	}
	var problem string
	switch {
	case u.User != nil:
		return nil, fmt.Errorf("%w: user info is not allowed (the API key is given apart)", ErrBaseURL)
	case u.Scheme != "https" && u.Scheme != "http":
		problem = "is not an http or https URL"
	case u.Host == "":
		problem = "has no host"
	case u.RawQuery != "" || u.ForceQuery:
		problem = "has a query (?...): only a scheme, a host and a path are allowed"
	case u.Fragment != "" || strings.Contains(raw, "#"):
		problem = "has a fragment (#...): only a scheme, a host and a path are allowed"
	default:
		return u, nil
	}
	return nil, fmt.Errorf("%w: %q %s", ErrBaseURL, raw, problem)
}

// newTransport keeps enough idle connections for every concurrent page
// fetch: Go's default keeps two per host, and a new TLS handshake per page
// would dominate a scrape's CPU time.
func newTransport(concurrency int) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = concurrency + 2
	t.MaxIdleConns = concurrency + 2
	t.IdleConnTimeout = 5 * time.Minute
	t.TLSHandshakeTimeout = 10 * time.Second
	t.ResponseHeaderTimeout = 0 // bounded by the request context
	t.MaxResponseHeaderBytes = MaxResponseHeaderBytes
	t.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	return t
}

func instrument(reg prometheus.Registerer, next http.RoundTripper) http.RoundTripper {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "apivideo_api_requests_total",
		Help: "Requests made to the api.video API, by HTTP status code.",
	}, []string{"code"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "apivideo_api_request_duration_seconds",
		Help:    "Time until the response headers of requests to the api.video API arrived.",
		Buckets: []float64{.025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{})
	reg.MustRegister(requests, duration)
	// The codes that matter start at 0, so that increase() sees the first
	// 401 or 429 after a restart.
	for _, code := range []string{"200", "401", "429", "500", "503"} {
		requests.WithLabelValues(code)
	}
	return promhttp.InstrumentRoundTripperCounter(requests,
		promhttp.InstrumentRoundTripperDuration(duration, next))
}

// Close closes the connections kept open for later requests, for a client
// that is no longer used: those idle now, and those in use as soon as
// their last request ends, rather than after the idle timeout.
func (c *Client) Close() {
	c.closed.Store(true)
	c.closeIdle()
}

// requestDone ends a request; the last one of a closed client closes the
// connections it leaves idle.
func (c *Client) requestDone() {
	if c.inFlight.Add(-1) == 0 && c.closed.Load() {
		c.closeIdle()
	}
}

// bodiesInFlight holds a slot for each reply being read (see
// maxBodiesInFlight).
var bodiesInFlight = make(chan struct{}, maxBodiesInFlight)

// maxPooledBody is the largest reply buffer kept for reuse: a page of 100
// tokens takes about 20 KB, and a reply near the body cap must not keep
// megabytes per request slot for good.
const maxPooledBody = 256 << 10

// putBody returns a reply buffer to the pool, unless a large reply grew it.
func (c *Client) putBody(buf *bytes.Buffer) {
	if buf.Cap() <= maxPooledBody {
		c.bodies.Put(buf)
	}
}

func (c *Client) closeIdle() {
	if c.idle != nil {
		c.idle.CloseIdleConnections()
	}
}

// RateLimit returns the rate-limit headers of the latest reply, and false
// before any reply carried them.
func (c *Client) RateLimit() (RateLimit, bool) {
	c.rlMu.Lock()
	defer c.rlMu.Unlock()
	return c.rateLimit, c.rlKnown
}

// recordRateLimit keeps the rate-limit headers of a reply. A reply without
// them leaves the last known values; one with values out of range (not a
// count, above 2^31-1, more remaining than the limit) makes them unknown,
// so that no gauge shows a number api.video cannot have meant.
func (c *Client) recordRateLimit(h http.Header) {
	rawLimit, rawRemaining := h.Get("X-RateLimit-Limit"), h.Get("X-RateLimit-Remaining")
	if rawLimit == "" && rawRemaining == "" {
		return
	}
	limit, ok1 := parseCount(rawLimit, maxRateLimitValue)
	remaining, ok2 := parseCount(rawRemaining, maxRateLimitValue)
	c.rlMu.Lock()
	defer c.rlMu.Unlock()
	if !ok1 || !ok2 || remaining > limit {
		c.rateLimit, c.rlKnown = RateLimit{}, false
		return
	}
	c.rateLimit = RateLimit{Limit: limit, Remaining: remaining}
	c.rlKnown = true
}

// parseCount parses a header value of at most ten decimal digits, between 0
// and limit.
func parseCount(v string, limit int) (int, bool) {
	v = strings.TrimSpace(v)
	if v == "" || len(v) > 10 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, false
		}
		n = n*10 + int(v[i]-'0')
	}
	return n, n <= limit
}

// parseRetryAfter parses a wait in seconds, reading anything longer than
// MaxRetryAfter (however many digits) as MaxRetryAfter. It reports false
// for a value that is not a number of seconds.
func parseRetryAfter(v string) (int, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, false
		}
	}
	maxSeconds := int(MaxRetryAfter / time.Second)
	if n, ok := parseCount(v, maxSeconds); ok {
		return n, true
	}
	return maxSeconds, true
}

// request is one API call. body, when set, is sent as JSON. secrets are
// the credentials it carries, scrubbed from any error it returns.
type request struct {
	method  string
	path    string
	body    []byte
	bearer  string
	secrets []string
	// date, when set, takes the successful reply's Date header: zero when
	// it has none, or one that does not parse.
	date *time.Time
}

// do sends req, retrying 5xx replies and network errors with jittered
// backoff and waiting out a 429 when its wait fits in the context's
// deadline. On success it returns the body in buf, which it fills.
func (c *Client) do(ctx context.Context, req request, buf *bytes.Buffer) error {
	if req.bearer != "" {
		req.secrets = append(req.secrets, req.bearer)
	}
	return scrubError(c.try(ctx, req, buf), req.secrets...)
}

func (c *Client) try(ctx context.Context, req request, buf *bytes.Buffer) error {
	var lastErr error
	for attempt := 0; attempt < maxAttempts; attempt++ {
		status, header, err := c.send(ctx, req, buf)
		if err == nil && status >= 200 && status < 300 {
			if req.date != nil {
				*req.date, _ = http.ParseTime(header.Get("Date"))
			}
			return nil
		}
		if err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return fmt.Errorf("%s %s: %w", req.method, req.path, ctxErr)
			}
			if errors.Is(err, ErrResponseTooLarge) {
				return fmt.Errorf("%s %s: %w", req.method, req.path, err)
			}
			lastErr = fmt.Errorf("%s %s: %w", req.method, req.path, err)
		} else {
			apiErr := decodeAPIError(status, header, buf.Bytes(), req.secrets...)
			lastErr = fmt.Errorf("%s %s: %w", req.method, req.path, apiErr)
			switch {
			case status == http.StatusTooManyRequests:
				wait := time.Duration(max(apiErr.RetryAfterSeconds, 1)) * time.Second
				if attempt == maxAttempts-1 {
					return lastErr
				}
				if !fitsDeadline(ctx, wait) {
					return fmt.Errorf("%w (retry after %s does not fit in the scrape deadline)", lastErr, wait)
				}
				level.Warn(c.logger).Log("msg", "rate limited by api.video, waiting", "path", req.path, "wait", wait)
				if err := Sleep(ctx, wait); err != nil {
					return fmt.Errorf("%w (while waiting out a 429: %w)", lastErr, err)
				}
				continue
			case status < 500:
				return lastErr
			}
		}
		if attempt == maxAttempts-1 {
			break
		}
		wait := backoff(attempt)
		if !fitsDeadline(ctx, wait) {
			return lastErr
		}
		level.Debug(c.logger).Log("msg", "retrying api.video request", "path", req.path, "err", scrubError(lastErr, req.secrets...), "wait", wait)
		if err := Sleep(ctx, wait); err != nil {
			return lastErr
		}
	}
	return lastErr
}

// send makes one HTTP exchange and reads the body (capped) into buf.
func (c *Client) send(ctx context.Context, req request, buf *bytes.Buffer) (int, http.Header, error) {
	var body io.Reader
	if req.body != nil {
		body = bytes.NewReader(req.body)
	}
	hreq, err := http.NewRequestWithContext(ctx, req.method, c.baseURL+req.path, body)
	if err != nil {
		return 0, nil, err
	}
	hreq.Header.Set("User-Agent", c.userAgent)
	hreq.Header.Set("Accept", "application/json")
	if req.body != nil {
		hreq.Header.Set("Content-Type", "application/json")
	}
	if req.bearer != "" {
		hreq.Header.Set("Authorization", "Bearer "+req.bearer)
	}
	c.inFlight.Add(1)
	defer c.requestDone()
	resp, err := c.http.Do(hreq)
	if err != nil {
		// Go's client may quote what the server sent, such as a
		// malformed status line.
		return 0, nil, scrubError(err, req.secrets...)
	}
	defer resp.Body.Close()
	c.recordRateLimit(resp.Header)
	select {
	case bodiesInFlight <- struct{}{}:
		defer func() { <-bodiesInFlight }()
	case <-ctx.Done():
		return 0, nil, fmt.Errorf("waiting to read the reply: %w", ctx.Err())
	}
	buf.Reset()
	n, err := buf.ReadFrom(io.LimitReader(resp.Body, c.maxBody+1))
	if err != nil {
		return 0, nil, fmt.Errorf("reading reply: %w", scrubError(err, req.secrets...))
	}
	if n > c.maxBody {
		return 0, nil, fmt.Errorf("%w: more than %d bytes", ErrResponseTooLarge, c.maxBody)
	}
	return resp.StatusCode, resp.Header, nil
}

// decodeAPIError builds an APIError from a non-2xx reply, using the JSON
// problem body when there is one, scrubbed of secrets.
func decodeAPIError(status int, h http.Header, body []byte, secrets ...string) *APIError {
	e := &APIError{StatusCode: status, RetryAfterSeconds: -1}
	for _, name := range []string{"X-RateLimit-Retry-After", "Retry-After"} {
		if n, ok := parseRetryAfter(h.Get(name)); ok {
			e.RetryAfterSeconds = n
			break
		}
	}
	var problem struct {
		Type   string `json:"type"`
		Title  string `json:"title"`
		Name   string `json:"name"`
		Detail string `json:"detail"`
	}
	if json.Unmarshal(body, &problem) == nil {
		e.Type = scrub(problem.Type, maxProblemText, secrets...)
		e.Title = scrub(problem.Title, maxProblemText, secrets...)
		e.Name = scrub(problem.Name, maxProblemText, secrets...)
		e.Detail = scrub(problem.Detail, maxProblemText, secrets...)
	}
	return e
}

func backoff(attempt int) time.Duration {
	d := backoffBase << attempt
	if d > backoffLimit {
		d = backoffLimit
	}
	// Equal jitter: at least half the step, so retries never bunch at zero.
	return d/2 + rand.N(d/2+1)
}

// fitsDeadline reports whether waiting d still leaves time for a request.
func fitsDeadline(ctx context.Context, d time.Duration) bool {
	deadline, ok := ctx.Deadline()
	if !ok {
		return d <= time.Minute
	}
	return time.Until(deadline) > d+50*time.Millisecond
}

// Sleep waits for d, or until ctx is done.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
