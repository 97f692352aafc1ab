package apiclient

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDecodeTokenRanges(t *testing.T) {
	for _, tc := range []struct {
		name string
		item string
		ok   bool
	}{
		{"largest ttl", `{"token":"to1","ttl":2147483647,"expiresAt":"2090-01-01T00:00:00Z"}`, true},
		{"ttl past 32 bits", `{"token":"to1","ttl":2147483648,"expiresAt":"2090-01-01T00:00:00Z"}`, false},
		{"ttl 2^63-1 without expiresAt", `{"token":"to1","ttl":9223372036854775807,"createdAt":"2020-12-02T10:26:46Z"}`, false},
		{"ttl 1e11", `{"token":"to1","ttl":100000000000,"createdAt":"2020-12-02T10:26:46Z"}`, false},
		{"ttl in exponent notation", `{"token":"to1","ttl":1e11,"createdAt":"2020-12-02T10:26:46Z"}`, false},
		{"expiresAt in 9999", `{"token":"to1","ttl":3600,"expiresAt":"9999-12-31T23:59:59Z"}`, false},
		{"expiresAt 0001-01-01 with a ttl", `{"token":"to1","ttl":3600,"expiresAt":"0001-01-01T00:00:00+00:00"}`, false},
		{"expiresAt 0001-01-01 without a ttl", `{"token":"to1","expiresAt":"0001-01-01T00:00:00Z"}`, false},
		{"expiresAt in 1999", `{"token":"to1","ttl":60,"expiresAt":"1999-12-31T23:59:59Z"}`, false},
		{"expiresAt on the first day of 2000", `{"token":"to1","ttl":60,"expiresAt":"2000-01-01T00:00:00Z"}`, true},
		{"expiresAt on the last day of 2199", `{"token":"to1","ttl":60,"expiresAt":"2199-12-31T23:59:59Z"}`, true},
		{"expiresAt in 2200", `{"token":"to1","ttl":60,"expiresAt":"2200-01-01T00:00:00Z"}`, false},
		{"createdAt in year 1 with a ttl", `{"token":"to1","ttl":60,"createdAt":"0001-01-01T00:00:00Z"}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := testDecoder()
			body := `{"data":[` + tc.item + `],"pagination":{"currentPage":1,"pageSize":100,"pagesTotal":1,"itemsTotal":1}}`
			p, err := d.decode([]byte(body))
			if !tc.ok {
				require.ErrorIs(t, err, ErrMalformedResponse)
				return
			}
			require.NoError(t, err)
			assert.False(t, p.Tokens[0].NeverExpires())
			assert.False(t, p.Tokens[0].ExpiresAt().Before(EarliestDate))
			assert.True(t, p.Tokens[0].ExpiresAt().Before(LatestDate))
		})
	}
}

func TestTokenLife(t *testing.T) {
	for _, tc := range []struct {
		expiresIn string
		want      time.Duration
		err       bool
	}{
		{"", time.Hour, false},
		{"0", time.Hour, false},
		{"3600", time.Hour, false},
		{"90.5", 90500 * time.Millisecond, false},
		{"86400", 24 * time.Hour, false},
		{"10000000000", 24 * time.Hour, false},
		{"1e10", 24 * time.Hour, false},
		{"1e400", 24 * time.Hour, false},
		{"9223372036854775807", 24 * time.Hour, false},
		{"-1", 0, true},
		{"-1e400", 0, true},
		{"soon", 0, true},
	} {
		t.Run(tc.expiresIn, func(t *testing.T) {
			r := tokenReply{ExpiresIn: jsonNumber(tc.expiresIn)}
			got, err := r.life()
			if tc.err {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestRetryAfterAndRateLimitParsing(t *testing.T) {
	for _, tc := range []struct {
		v    string
		want int
		ok   bool
	}{
		{"0", 0, true}, {"30", 30, true}, {" 7 ", 7, true}, {"86400", 86400, true},
		{"86401", 86400, true}, {"10000000000", 86400, true}, {"99999999999999999999999999", 86400, true},
		{"", 0, false}, {"-1", 0, false}, {"1e10", 0, false}, {"1.5", 0, false},
		{"Wed, 21 Oct 2015 07:28:00 GMT", 0, false},
	} {
		got, ok := parseRetryAfter(tc.v)
		assert.Equal(t, tc.ok, ok, "%q", tc.v)
		assert.Equal(t, tc.want, got, "%q", tc.v)
	}

	for _, tc := range []struct {
		limit, remaining string
		known            bool
	}{
		{"500", "499", true},
		{"2147483647", "0", true},
		{"2147483648", "0", false},
		{"99999999999999999999", "1", false},
		{"500", "501", false},
		{"500", "-1", false},
		{"five hundred", "1", false},
	} {
		c := &Client{}
		c.recordRateLimit(http.Header{"X-Ratelimit-Limit": {tc.limit}, "X-Ratelimit-Remaining": {tc.remaining}})
		_, known := c.RateLimit()
		assert.Equal(t, tc.known, known, "limit %q remaining %q", tc.limit, tc.remaining)
	}
}

func TestScrub(t *testing.T) {
	const key = "k3yOfTheAccount"
	for _, tc := range []struct{ in, want string }{
		{"The API key " + key + " is invalid", "The API key [redacted] is invalid"},
		{"short key abc is wrong", "short key abc is wrong"},
		{"token toAbCdEf0123456789ABCDEF expired", "token [redacted] expired"},
		{"a 24-character word abcdefghijklmnopqrstuvwx", "a 24-character word [redacted]"},
		{"https://docs.api.video/reference/authentication-failed", "https://docs.api.video/reference/authentication-failed"},
		{"GET /upload-tokens?currentPage=2&pageSize=100: TooManyRequests", "GET /upload-tokens?currentPage=2&pageSize=100: TooManyRequests"},
		{"bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.abc", "bearer [redacted].[redacted].abc"},
		{"line\nbreak\x1b[31m", "line break [31m"},
		{"bad \xff byte", "bad \uFFFD byte"},
	} {
		assert.Equal(t, tc.want, scrub(tc.in, 0, key), "%q", tc.in)
	}
	long := scrub(strings.Repeat("é", 300), maxProblemText)
	assert.LessOrEqual(t, len(long), maxProblemText+3)
	assert.True(t, strings.HasSuffix(long, "..."))
}

func jsonNumber(s string) json.Number { return json.Number(s) }
