package apiclient_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apivideo-exporter/apivideo_exporter/apiclient"
)

const (
	hostileKey     = "hostileKey0123456789abcdefXYZ"
	hostileAccess  = "accessTOKEN0123456789abcdefghij"
	hostileRefresh = "refreshTOKEN0123456789abcdefghij"
	hostileToken   = "toSECRETsecretSECRET1234"
)

// hostileAPI is api.video as far as the login and the list go, with the
// replies that tests break.
type hostileAPI struct {
	*httptest.Server
	logins, refreshes, lists atomic.Int32
	loginBody                atomic.Value
}

func newHostileAPI(t *testing.T, login, list http.HandlerFunc) *hostileAPI {
	t.Helper()
	a := &hostileAPI{}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/auth/api-key":
			a.logins.Add(1)
			var body struct{ APIKey string }
			_ = json.NewDecoder(r.Body).Decode(&body)
			a.loginBody.Store(body.APIKey)
			if login != nil {
				login(w, r)
				return
			}
			fmt.Fprintf(w, `{"access_token":%q,"refresh_token":%q,"expires_in":3600}`, hostileAccess, hostileRefresh)
		case "/auth/refresh":
			a.refreshes.Add(1)
			fmt.Fprintf(w, `{"access_token":%q,"refresh_token":%q,"expires_in":3600}`, hostileAccess, hostileRefresh)
		case "/upload-tokens":
			a.lists.Add(1)
			if list != nil {
				list(w, r)
				return
			}
			fmt.Fprintf(w, `{"data":[{"token":%q,"ttl":0}],"pagination":{"currentPage":1,"pageSize":100,"pagesTotal":1,"itemsTotal":1}}`, hostileToken)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(a.Close)
	return a
}

func (a *hostileAPI) client(t *testing.T) *apiclient.Client {
	t.Helper()
	c, err := apiclient.New(apiclient.Config{BaseURL: a.URL, Key: apiclient.StaticKey(hostileKey)})
	require.NoError(t, err)
	return c
}

// pagesOf250 answers every page of 100 of a list of 250 tokens that never
// expire, whatever page size was asked for.
func pagesOf250(w http.ResponseWriter, r *http.Request) {
	page := 1
	fmt.Sscan(r.URL.Query().Get("currentPage"), &page)
	n := min(100, 250-(page-1)*100)
	items := make([]string, n)
	for i := range items {
		items[i] = fmt.Sprintf(`{"token":"to%022d","ttl":0}`, (page-1)*100+i)
	}
	fmt.Fprintf(w, `{"data":[%s],"pagination":{"currentPage":%d,"pageSize":100,"pagesTotal":3,"itemsTotal":250}}`,
		strings.Join(items, ","), page)
}

func TestHugeExpiresInIsClamped(t *testing.T) {
	for _, expiresIn := range []string{"10000000000", "1e10", "9223372036854775807", "1e400"} {
		t.Run(expiresIn, func(t *testing.T) {
			a := newHostileAPI(t, func(w http.ResponseWriter, _ *http.Request) {
				fmt.Fprintf(w, `{"access_token":%q,"refresh_token":%q,"expires_in":%s}`, hostileAccess, hostileRefresh, expiresIn)
			}, pagesOf250)
			c := a.client(t)
			ctx := listCtx(t, 5*time.Second)
			for range 3 {
				seen := map[string]bool{}
				for number := 1; number <= 3; number++ {
					p, err := c.Page(ctx, number, apiclient.MaxPageSize)
					require.NoError(t, err, "page %d", number)
					for _, tok := range p.Tokens {
						seen[tok.Value] = true
					}
				}
				require.Len(t, seen, 250)
			}
			assert.EqualValues(t, 1, a.logins.Load())
			assert.EqualValues(t, 0, a.refreshes.Load(), "no renewal before every page")
			assert.EqualValues(t, 3*3, a.lists.Load(), "three rounds of three pages, each asked for once")
		})
	}
}

func TestNegativeExpiresInIsAnError(t *testing.T) {
	a := newHostileAPI(t, func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `{"access_token":%q,"expires_in":-5}`, hostileAccess)
	}, nil)
	_, err := listTokens(a.client(t), listCtx(t, 5*time.Second), keepAll)
	assert.ErrorIs(t, err, apiclient.ErrMalformedResponse)
	assert.NotContains(t, err.Error(), hostileAccess)
}

func TestHugeRetryAfterFailsAtOnce(t *testing.T) {
	for _, header := range []string{"Retry-After", "X-RateLimit-Retry-After"} {
		for _, v := range []string{"10000000000", "9223372036854775807", "99999999999999999999999"} {
			t.Run(header+"="+v, func(t *testing.T) {
				a := newHostileAPI(t, nil, func(w http.ResponseWriter, _ *http.Request) {
					w.Header().Set(header, v)
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusTooManyRequests)
					fmt.Fprint(w, `{"type":"https://docs.api.video/reference/too-many-requests","title":"Too many requests.","status":429}`)
				})
				_, err := listTokens(a.client(t), listCtx(t, 5*time.Second), keepAll)
				assert.ErrorIs(t, err, apiclient.ErrRateLimited)
				assert.NotErrorIs(t, err, context.DeadlineExceeded, "no wait until the deadline")
				assert.EqualValues(t, 1, a.lists.Load(), "one request, not four")
			})
		}
	}
}

func TestRateLimitHeadersOutOfRangeAreDropped(t *testing.T) {
	limit := "500"
	a := newHostileAPI(t, nil, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-RateLimit-Limit", limit)
		w.Header().Set("X-RateLimit-Remaining", "499")
		fmt.Fprintf(w, `{"data":[{"token":%q,"ttl":0}],"pagination":{"currentPage":1,"pageSize":100,"pagesTotal":1,"itemsTotal":1}}`, hostileToken)
	})
	c := a.client(t)
	_, err := listTokens(c, listCtx(t, 5*time.Second), keepAll)
	require.NoError(t, err)
	rl, known := c.RateLimit()
	require.True(t, known)
	assert.Equal(t, 500, rl.Limit)

	limit = "99999999999999999999"
	_, err = listTokens(c, listCtx(t, 5*time.Second), keepAll)
	require.NoError(t, err)
	_, known = c.RateLimit()
	assert.False(t, known, "an out-of-range limit makes the gauges unknown, not wrapped")
}

func TestReplyTextNeverCarriesSecrets(t *testing.T) {
	echo := hostileKey + " " + hostileAccess + " " + hostileRefresh + " " + hostileToken
	problem := func(status int) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(status)
			json.NewEncoder(w).Encode(map[string]string{
				"type": "https://docs.api.video/" + echo, "title": "Bad: " + echo,
				"name": echo, "detail": "You sent " + echo + "\n\x1b[31m\xff",
			})
		}
	}
	badStatusLine := func(w http.ResponseWriter, _ *http.Request) {
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprintf(rw, "HTTP/1.1 %s\r\n\r\n", echo)
		rw.Flush()
	}
	badHeader := func(w http.ResponseWriter, _ *http.Request) {
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprintf(rw, "HTTP/1.1 200 OK\r\n%s\r\n\r\n", echo)
		rw.Flush()
	}
	for _, tc := range []struct {
		name        string
		login, list http.HandlerFunc
	}{
		{"401 on login echoing the key", problem(401), nil},
		{"400 on login echoing the key", problem(400), nil},
		{"400 on a page echoing a token", nil, problem(400)},
		{"403 on a page echoing the bearer", nil, problem(403)},
		{"500 forever echoing everything", nil, problem(500)},
		{"status line echoing the key", badStatusLine, nil},
		{"status line echoing the bearer", nil, badStatusLine},
		{"header line echoing a token", nil, badHeader},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newHostileAPI(t, tc.login, tc.list)
			_, err := listTokens(a.client(t), listCtx(t, 5*time.Second), keepAll)
			require.Error(t, err)
			msg := err.Error()
			for _, secret := range []string{hostileKey, hostileAccess, hostileRefresh, hostileToken} {
				assert.NotContains(t, msg, secret)
			}
			assert.NotContains(t, msg, "\n")
			assert.NotContains(t, msg, "\x1b")
		})
	}
}

func TestProblemTypeAndStatusAreKept(t *testing.T) {
	a := newHostileAPI(t, func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"type":"https://docs.api.video/reference/authentication-failed","title":"The API key is invalid.","status":400}`)
	}, nil)
	_, err := listTokens(a.client(t), listCtx(t, 5*time.Second), keepAll)
	assert.ErrorIs(t, err, apiclient.ErrUnauthorized)
	assert.Contains(t, err.Error(), "400 Bad Request [https://docs.api.video/reference/authentication-failed]: The API key is invalid.")
}

func TestResponseHeadersAreCapped(t *testing.T) {
	// 1 MiB of headers on every page: the transport stops reading at
	// MaxResponseHeaderBytes and the listing fails.
	a := newHostileAPI(t, nil, func(w http.ResponseWriter, _ *http.Request) {
		filler := strings.Repeat("x", 1000)
		for i := range 1024 {
			w.Header().Set(fmt.Sprintf("X-Filler-%d", i), filler)
		}
		fmt.Fprint(w, `{"data":[],"pagination":{"pagesTotal":0,"itemsTotal":0}}`)
	})
	_, err := listTokens(a.client(t), listCtx(t, 5*time.Second), keepAll)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "headers exceeded")
}

func TestLoginRedirectIsNotARejectedKey(t *testing.T) {
	a := newHostileAPI(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://elsewhere.example/login", http.StatusFound)
	}, nil)
	_, err := listTokens(a.client(t), listCtx(t, 5*time.Second), keepAll)
	require.Error(t, err)
	assert.ErrorIs(t, err, apiclient.ErrUnexpectedReply)
	assert.NotErrorIs(t, err, apiclient.ErrUnauthorized)
	assert.NotContains(t, err.Error(), "rejected")
	assert.Contains(t, err.Error(), "302 Found (a redirect, not followed)")
}

func TestKeyFileByteOrderMark(t *testing.T) {
	a := newHostileAPI(t, nil, nil)
	path := filepath.Join(t.TempDir(), "key")
	require.NoError(t, os.WriteFile(path, []byte("\uFEFF"+hostileKey+"\r\n"), 0o600))
	c, err := apiclient.New(apiclient.Config{BaseURL: a.URL, Key: apiclient.FileKey(path)})
	require.NoError(t, err)
	_, err = listTokens(c, listCtx(t, 5*time.Second), keepAll)
	require.NoError(t, err)
	assert.Equal(t, hostileKey, a.loginBody.Load(), "the key is sent without the byte-order mark")
}

// An /auth/refresh error that echoes the API key given at login gets the
// key scrubbed, even a key too plain to look like a secret.
func TestRefreshErrorsNeverCarryTheKey(t *testing.T) {
	const plainKey = "plainkey"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/auth/api-key":
			fmt.Fprintf(w, `{"access_token":%q,"refresh_token":%q,"expires_in":8}`, hostileAccess, hostileRefresh)
		case "/auth/refresh":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"type":"about:blank","title":"Refresh refused for key %s","status":400}`, plainKey)
		default:
			fmt.Fprint(w, `{"data":[],"pagination":{"currentPage":1,"pageSize":100,"pagesTotal":0,"itemsTotal":0}}`)
		}
	}))
	defer srv.Close()
	var logged strings.Builder
	clock := newManualClock()
	c, err := apiclient.New(apiclient.Config{BaseURL: srv.URL, Key: apiclient.StaticKey(plainKey), Now: clock.Now,
		Logger: log.NewLogfmtLogger(log.NewSyncWriter(&logged))})
	require.NoError(t, err)
	_, err = listOnClock(c, clock, listCtx(t, 30*time.Second))
	require.NoError(t, err)
	clock.Advance(7 * time.Second)
	_, err = listOnClock(c, clock, listCtx(t, 30*time.Second))
	require.NoError(t, err, "a failed refresh falls back to a login")
	assert.Contains(t, logged.String(), "refreshing the access token failed")
	assert.Contains(t, logged.String(), "Refresh refused for key")
	assert.NotContains(t, logged.String(), plainKey)
}
