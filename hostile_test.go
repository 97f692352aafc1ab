package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apivideo-exporter/apivideo_exporter/apiclient"
	"github.com/apivideo-exporter/apivideo_exporter/collector"
	"github.com/apivideo-exporter/apivideo_exporter/internal/accounts"
	"github.com/apivideo-exporter/apivideo_exporter/internal/testsupport"
)

const (
	hostileKey     = "hostileKey0123456789abcdefXYZ"
	hostileAccess  = "accessTOKEN0123456789abcdefghij"
	hostileRefresh = "refreshTOKEN0123456789abcdefghij"
	// Two tokens sharing twelve characters and the first four bytes of
	// their SHA-256.
	collidingA = "toCRAFTEDabcdTedcL8bqwT7"
	collidingB = "toCRAFTEDabcdKdqR2imWcP4"
)

// hostileServer plays api.video: a good login and a page of the given
// items unless login or list replace them.
type hostileServer struct {
	*httptest.Server
	logins, refreshes, lists atomic.Int32
}

func newHostileServer(t testing.TB, login, list http.HandlerFunc) *hostileServer {
	s := &hostileServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/auth/api-key":
			s.logins.Add(1)
			if login != nil {
				login(w, r)
				return
			}
			fmt.Fprintf(w, `{"access_token":%q,"refresh_token":%q,"expires_in":3600}`, hostileAccess, hostileRefresh)
		case "/auth/refresh":
			s.refreshes.Add(1)
			fmt.Fprintf(w, `{"access_token":%q,"refresh_token":%q,"expires_in":3600}`, hostileAccess, hostileRefresh)
		case "/upload-tokens":
			s.lists.Add(1)
			list(w, r)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

// hostileScrape serves /metrics with the account wired as every account is
// (accounts.Wire) against api, and scrapes it once with Prometheus'
// headers and the given timeout.
func hostileScrape(t testing.TB, api string, mode collector.LabelMode, timeout time.Duration, logs io.Writer) (int, string) {
	reg := newRegistry()
	logger := log.NewLogfmtLogger(logs)
	wired, err := accounts.Wire(accounts.Settings{URL: api, Concurrency: apiclient.DefaultConcurrency, Timeout: timeout, Listing: "auto"},
		apiclient.StaticKey(hostileKey), accounts.Wiring{TokenLabel: mode, MaxTokenSeries: 100, Registerer: reg, Logger: logger})
	require.NoError(t, err)
	exporter := httptest.NewServer(metricsHandler(reg, wired.Tokens, 0, timeout, 40, logger))
	defer exporter.Close()
	req, err := http.NewRequest(http.MethodGet, exporter.URL, nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", fmt.Sprint(timeout.Seconds()))
	resp, err := exporter.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

// hostileSamples parses a text exposition into the values of its series
// by name.
func hostileSamples(t testing.TB, body string) map[string][]float64 {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	require.NoError(t, err, "the exposition parses")
	out := map[string][]float64{}
	for name, mf := range families {
		for _, m := range mf.GetMetric() {
			out[name] = append(out[name], m.GetGauge().GetValue())
		}
	}
	return out
}

func hostilePage(items ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"data":[%s],"pagination":{"currentPage":1,"pageSize":100,"pagesTotal":1,"itemsTotal":%d}}`,
			strings.Join(items, ","), len(items))
	}
}

func hostileItem(token string, ttl int, expiresAt string) string {
	return fmt.Sprintf(`{"token":"%s","ttl":%d,"createdAt":"2026-01-01T00:00:00+00:00","expiresAt":%s}`, token, ttl, expiresAt)
}

const (
	hostileGoodA = "toGoodAAAAAAAAAAAAAAAAAA"
	hostileGoodB = "toGoodBBBBBBBBBBBBBBBBBB"
)

var hostileGoodItems = []string{hostileItem(hostileGoodA, 0, "null"), hostileItem(hostileGoodB, 3600, `"2199-01-01T00:00:00.000Z"`)}

func hostileProblem(status int, detail string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]any{"type": "https://docs.api.video/reference/" + detail,
			"title": "Refused: " + detail, "status": status, "detail": "You sent " + detail})
	}
}

func hostileHijack(w http.ResponseWriter, then func(io.Writer)) {
	conn, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	if then != nil {
		then(rw)
		rw.Flush()
	}
}

// hostileGzipBomb is 100 MiB of zeros in about 100 KiB of gzip: one
// compressed MiB repeated as 100 gzip members, which a reader decodes as one
// stream, so that building it stays cheap under the race detector.
var hostileGzipBomb = sync.OnceValue(func() []byte {
	var member bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&member, gzip.BestCompression)
	zw.Write(make([]byte, 1<<20))
	zw.Close()
	return bytes.Repeat(member.Bytes(), 100)
})

// TestHostileReplies: whatever api.video sends, /metrics answers 200 with
// apivideo_up and the right count (no count when up is 0), and no secret
// reaches the log.
func TestHostileReplies(t *testing.T) {
	hostileGzipBomb() // built before any scrape is timed
	var elsewhere atomic.Bool
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { elsewhere.Store(true) }))
	defer other.Close()

	for _, tc := range []struct {
		name        string
		mode        collector.LabelMode
		login, list http.HandlerFunc
		timeout     time.Duration
		up          float64
		active      float64 // when up is 1
		secrets     []string
		check       func(t *testing.T, s *hostileServer, samples map[string][]float64, logs string)
	}{
		{name: "redacted prefix cuts a character in half", list: hostilePage(append(hostileGoodItems, hostileItem("to12345\u00e9abcdefghijklmnop", 3600, `"2199-01-01T00:00:00Z"`))...),
			up: 1, active: 3, secrets: []string{"to12345\u00e9abcdefghijklmnop"},
			check: func(t *testing.T, _ *hostileServer, m map[string][]float64, _ string) {
				assert.Len(t, m["apivideo_upload_token_expires_in_seconds"], 2)
			}},
		{name: "raw invalid UTF-8 in a token, full labels", mode: collector.LabelFull,
			list: hostilePage(append(hostileGoodItems, hostileItem("to12345\xe9SECRETsecret1234", 3600, `"2199-01-01T00:00:00Z"`))...),
			up:   1, active: 3, secrets: []string{"to12345\xe9SECRETsecret1234", "SECRETsecret1234"},
			check: func(t *testing.T, _ *hostileServer, m map[string][]float64, logs string) {
				assert.Len(t, m["apivideo_upload_token_expires_in_seconds"], 1, "only the valid token's series")
				assert.Contains(t, logs, "dropped per-token series")
			}},
		{name: "two tokens sharing twelve characters and a 4-byte hash prefix",
			list: hostilePage(hostileItem(collidingA, 3600, `"2199-01-01T00:00:00Z"`), hostileItem(collidingB, 3600, `"2199-01-01T00:00:00Z"`)),
			up:   1, active: 2, secrets: []string{collidingA, collidingB},
			check: func(t *testing.T, _ *hostileServer, m map[string][]float64, _ string) {
				assert.Len(t, m["apivideo_upload_token_expires_in_seconds"], 2)
			}},
		{name: "expires_in 1e10 on login",
			login: func(w http.ResponseWriter, _ *http.Request) {
				fmt.Fprintf(w, `{"access_token":%q,"refresh_token":%q,"expires_in":10000000000}`, hostileAccess, hostileRefresh)
			},
			list: hostilePagesOf(250), up: 1, active: 250,
			check: func(t *testing.T, s *hostileServer, _ map[string][]float64, _ string) {
				assert.EqualValues(t, 0, s.refreshes.Load(), "no refresh before every page")
				assert.EqualValues(t, 3+1, s.lists.Load(), "three pages, and a re-read where pages 2 and 3 meet page 1")
			}},
		{name: "Retry-After 1e10 on a 429", list: func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "10000000000")
			hostileProblem(http.StatusTooManyRequests, "too-many-requests")(w, nil)
		}, up: 0, check: func(t *testing.T, s *hostileServer, _ map[string][]float64, _ string) {
			assert.EqualValues(t, 1, s.lists.Load(), "failed at once, no retries")
		}},
		{name: "X-RateLimit headers out of range", list: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-RateLimit-Limit", "9223372036854775807")
			w.Header().Set("X-RateLimit-Remaining", "-4")
			hostilePage(hostileGoodItems...)(w, r)
		}, up: 1, active: 2, check: func(t *testing.T, _ *hostileServer, m map[string][]float64, _ string) {
			assert.NotContains(t, m, "apivideo_ratelimit_limit")
			assert.NotContains(t, m, "apivideo_ratelimit_remaining")
		}},
		{name: "9 MB of response headers", list: func(w http.ResponseWriter, r *http.Request) {
			filler := strings.Repeat("x", 8000)
			for i := range 1150 {
				w.Header().Set(fmt.Sprintf("X-Filler-%d", i), filler)
			}
			hostilePage(hostileGoodItems...)(w, r)
		}, up: 0},
		{name: "401 whose detail echoes the API key", login: hostileProblem(http.StatusUnauthorized, hostileKey), list: hostilePage(hostileGoodItems...), up: 0,
			check: func(t *testing.T, _ *hostileServer, _ map[string][]float64, logs string) {
				assert.Contains(t, logs, "401 Unauthorized")
			}},
		{name: "400 whose detail holds a token", list: hostileProblem(http.StatusBadRequest, "toLEAKEDleaked0123456789"), up: 0,
			secrets: []string{"toLEAKEDleaked0123456789"}},
		{name: "status line echoing the API key", login: func(w http.ResponseWriter, _ *http.Request) {
			hostileHijack(w, func(w io.Writer) { fmt.Fprintf(w, "HTTP/1.1 %s\r\n\r\n", hostileKey) })
		}, list: hostilePage(hostileGoodItems...), up: 0},
		{name: "ttl 2^63-1 without expiresAt", list: hostilePage(hostileGoodItems[0], `{"token":"toHugeTTL0000000000000000","ttl":9223372036854775807,"createdAt":"2026-01-01T00:00:00Z"}`), up: 0},
		{name: "ttl 1e11", list: hostilePage(hostileGoodItems[0], hostileItem("toTTL1e11000000000000000", 100000000000, `"2199-01-01T00:00:00Z"`)), up: 0},
		{name: "expiresAt in year 9999", list: hostilePage(hostileGoodItems[0], hostileItem("toYear999900000000000000", 3600, `"9999-12-31T23:59:59Z"`)), up: 0},
		{name: "expiresAt 0001-01-01 with ttl 3600", list: hostilePage(hostileGoodItems[0], hostileItem("toYearOne000000000000000", 3600, `"0001-01-01T00:00:00+00:00"`)), up: 0,
			check: func(t *testing.T, _ *hostileServer, m map[string][]float64, _ string) {
				assert.NotContains(t, m, "apivideo_upload_tokens_without_expiry", "not counted as never expiring")
			}},
		{name: "302 on login", login: func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, other.URL+"/auth/api-key", http.StatusFound)
		}, list: hostilePage(hostileGoodItems...), up: 0, check: func(t *testing.T, _ *hostileServer, _ map[string][]float64, logs string) {
			assert.Contains(t, logs, "redirect")
			assert.NotContains(t, logs, "rejected")
			assert.False(t, elsewhere.Load(), "the key was not sent to the redirect's target")
		}},
		{name: "redirect on a page", list: func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, other.URL+r.URL.String(), http.StatusTemporaryRedirect)
		}, up: 0, check: func(t *testing.T, _ *hostileServer, _ map[string][]float64, _ string) {
			assert.False(t, elsewhere.Load(), "the bearer was not sent to the redirect's target")
		}},
		{name: "huge body", list: func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprint(w, `{"data":[`)
			for range 60000 {
				fmt.Fprint(w, hostileItem(hostileGoodA, 0, "null")+",")
			}
			fmt.Fprint(w, `]}`)
		}, up: 0},
		{name: "gzip bomb", list: func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Encoding", "gzip")
			w.Write(hostileGzipBomb())
		}, up: 0, check: func(t *testing.T, _ *hostileServer, _ map[string][]float64, logs string) {
			assert.Contains(t, logs, "too large", "stopped at the body cap")
		}},
		{name: "deep nesting", list: func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprint(w, `{"data":`+strings.Repeat("[", 200000)+strings.Repeat("]", 200000)+`,"pagination":{"pagesTotal":1,"itemsTotal":1}}`)
		}, up: 0},
		{name: "drip feed", timeout: 1500 * time.Millisecond, list: func(w http.ResponseWriter, r *http.Request) {
			for _, c := range []byte(`{"data":[],"pagination":{"pagesTotal":0,"itemsTotal":0}}`) {
				w.Write([]byte{c})
				w.(http.Flusher).Flush()
				select {
				case <-time.After(200 * time.Millisecond):
				case <-r.Context().Done():
					return
				}
			}
		}, up: 0},
		{name: "connection reset", list: func(w http.ResponseWriter, _ *http.Request) { hostileHijack(w, nil) }, up: 0},
		{name: "401 forever", list: hostileProblem(http.StatusUnauthorized, "authentication-failed"), up: 0,
			check: func(t *testing.T, s *hostileServer, _ map[string][]float64, _ string) {
				assert.LessOrEqual(t, s.logins.Load(), int32(2), "one fresh login after a 401, no more")
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newHostileServer(t, tc.login, tc.list)
			timeout := tc.timeout
			if timeout == 0 {
				timeout = 5 * time.Second
			}
			logs := &testsupport.SyncBuffer{}
			start := time.Now()
			code, body := hostileScrape(t, s.URL, tc.mode, timeout, logs)
			assert.Less(t, time.Since(start), timeout+time.Second, "answered within the scrape timeout")
			require.Equal(t, http.StatusOK, code, body)
			m := hostileSamples(t, body)
			require.Len(t, m["apivideo_up"], 1, "apivideo_up is published")
			assert.Equal(t, tc.up, m["apivideo_up"][0])
			for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "apivideo_exporter_build_info"} {
				assert.Contains(t, m, name)
			}
			if tc.up == 1 {
				require.Len(t, m["apivideo_upload_tokens_active"], 1)
				assert.Equal(t, tc.active, m["apivideo_upload_tokens_active"][0])
			} else {
				assert.NotContains(t, m, "apivideo_upload_tokens_active", "no count from a failed scrape")
			}
			log := logs.String()
			for _, secret := range append([]string{hostileKey, hostileAccess, hostileRefresh, hostileGoodA, hostileGoodB, collidingA, collidingB}, tc.secrets...) {
				assert.NotContains(t, log, secret, "a secret in the log")
				if tc.mode != collector.LabelFull {
					assert.NotContains(t, body, secret, "a whole token in the metrics")
				}
			}
			if tc.check != nil {
				tc.check(t, s, m, log)
			}
			if t.Failed() {
				t.Logf("log:\n%s", log)
			}
		})
	}
}

// hostilePagesOf answers every page of a listing of n tokens that never
// expire, in pages of the size asked for.
func hostilePagesOf(n int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		number, size := 1, 25
		fmt.Sscan(r.URL.Query().Get("currentPage"), &number)
		fmt.Sscan(r.URL.Query().Get("pageSize"), &size)
		count := max(0, min(size, n-(number-1)*size))
		items := make([]string, count)
		for i := range items {
			items[i] = fmt.Sprintf(`{"token":"to%022d","ttl":0}`, (number-1)*size+i)
		}
		fmt.Fprintf(w, `{"data":[%s],"pagination":{"currentPage":%d,"pageSize":%d,"pagesTotal":%d,"itemsTotal":%d}}`,
			strings.Join(items, ","), number, size, (n+size-1)/size, n)
	}
}
