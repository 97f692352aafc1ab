package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apivideo-exporter/apivideo_exporter/apiclient"
	"github.com/apivideo-exporter/apivideo_exporter/collector"
	"github.com/apivideo-exporter/apivideo_exporter/internal/testsupport"
)

const fuzzGood = "toFuzzGood00000000000000"

// fuzzJSONString quotes s for JSON, escaping only what JSON requires, so that
// bytes that are not UTF-8 reach the decoder as they are.
func fuzzJSONString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\' || c < 0x20:
			fmt.Fprintf(&b, `\u%04x`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// hostileCore turns fuzz bytes into 21 base62 characters after "toH": the
// part of the token that must never reach the log.
func hostileCore(seed []byte) string {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	b := []byte("toH")
	for i := 0; len(b) < 24; i++ {
		c := byte(i * 7)
		if i < len(seed) {
			c = seed[i]
		}
		b = append(b, alphabet[int(c)%len(alphabet)])
	}
	return string(b)
}

// fuzzPrintable reports whether s can be a header value as it is.
func fuzzPrintable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// fuzzValidLife mirrors what expires_in may be: absent, or a number of seconds
// that is not negative (infinite ones are clamped).
func fuzzValidLife(s string) bool {
	if s == "" {
		return true
	}
	f, err := strconv.ParseFloat(s, 64)
	return (err == nil || errors.Is(err, strconv.ErrRange)) && !math.IsNaN(f) && f >= 0
}

// FuzzHostileAPI drives the whole exporter (login, pages, headers, the
// collector and /metrics) against replies shaped by the fuzzer, and checks
// that /metrics always answers 200 with apivideo_up; that a count is
// published only when every value was in range, and is then right; and
// that neither the key, the access tokens nor an upload token reaches the
// log.
func FuzzHostileAPI(f *testing.F) {
	f.Add(byte(0), "3600", "", "500", []byte("seed"), []byte(""), int64(3600), "2199-01-01T00:00:00Z", byte(0), uint16(0))
	f.Add(byte(0), "10000000000", "", "", []byte("x"), []byte("\xe9"), int64(0), "", byte(8), uint16(0))
	f.Add(byte(0), "1e10", "10000000000", "99999999999", []byte("y"), []byte("é"), int64(1e11), "9999-12-31T23:59:59Z", byte(1), uint16(0))
	f.Add(byte(0), "", "", "-1", []byte("z"), []byte{}, int64(3600), "0001-01-01T00:00:00+00:00", byte(0), uint16(0))
	f.Add(byte(0), "-1", "", "", []byte("w"), []byte{}, int64(math.MaxInt64), "", byte(0), uint16(0))
	f.Add(byte(1), "3600", "", "", []byte("v"), []byte{}, int64(60), "2030-01-01T00:00:00Z", byte(0), uint16(0))
	f.Add(byte(2), "3600", "", "", []byte("u"), []byte{}, int64(60), "2030-01-01T00:00:00Z", byte(2), uint16(0))
	f.Add(byte(5), "3600", "", "", []byte("t"), []byte{}, int64(60), "2030-01-01T00:00:00Z", byte(5), uint16(0))
	f.Add(byte(0), "3600", "", "", []byte("s"), []byte{}, int64(60), "2030-01-01T00:00:00Z", byte(7), uint16(100))
	f.Add(byte(0), "3600", "1", "", []byte("r"), []byte{}, int64(60), "2030-01-01T00:00:00Z", byte(3), uint16(0))

	f.Fuzz(func(t *testing.T, loginMode byte, expiresIn, retryAfter, rateLimit string, seed, suffix []byte,
		ttl int64, expiresAt string, listMode byte, headerKiB uint16) {
		hostile := hostileCore(seed)
		token := hostile + string(suffix)
		echo := strings.Join([]string{hostileKey, hostileAccess, hostileRefresh, fuzzGood, token}, " ")
		echoProblem := func(w http.ResponseWriter, status int) {
			w.WriteHeader(status)
			json.NewEncoder(w).Encode(map[string]any{"type": "https://docs.api.video/" + echo, "title": echo, "name": echo, "detail": echo, "status": status})
		}
		statusLine := func(w http.ResponseWriter) {
			hostileHijack(w, func(w io.Writer) { fmt.Fprintf(w, "HTTP/1.1 %s\r\n\r\n", echo) })
		}
		login := func(w http.ResponseWriter, r *http.Request) {
			switch loginMode % 6 {
			case 0:
				life := ""
				if expiresIn != "" && json.Valid([]byte(expiresIn)) && strings.ContainsAny(expiresIn[:1], "-0123456789") {
					life = `,"expires_in":` + expiresIn
				} else {
					expiresIn = ""
				}
				fmt.Fprintf(w, `{"access_token":%q,"refresh_token":%q%s}`, hostileAccess, hostileRefresh, life)
			case 1:
				http.Redirect(w, r, "http://127.0.0.1:1/"+hostileKey, http.StatusFound)
			case 2:
				echoProblem(w, http.StatusBadRequest)
			case 3:
				echoProblem(w, http.StatusUnauthorized)
			case 4:
				echoProblem(w, http.StatusInternalServerError)
			case 5:
				statusLine(w)
			}
		}
		itemJSON := fmt.Sprintf(`{"token":%s,"ttl":%d`, fuzzJSONString(token), ttl)
		if expiresAt != "" {
			itemJSON += `,"expiresAt":` + fuzzJSONString(expiresAt)
		}
		itemJSON += "}"
		body := fmt.Sprintf(`{"data":[{"token":%q,"ttl":0},%s],"pagination":{"currentPage":1,"pageSize":100,"pagesTotal":1,"itemsTotal":2}}`, fuzzGood, itemJSON)
		list := func(w http.ResponseWriter, _ *http.Request) {
			if rateLimit != "" && fuzzPrintable(rateLimit) && fuzzPrintable(retryAfter) {
				w.Header().Set("X-RateLimit-Limit", rateLimit)
				w.Header().Set("X-RateLimit-Remaining", rateLimit)
				w.Header().Set("X-RateLimit-Retry-After", retryAfter)
			}
			switch listMode % 8 {
			case 0:
				fmt.Fprint(w, body)
			case 1:
				if fuzzPrintable(retryAfter) {
					w.Header().Set("Retry-After", retryAfter)
				}
				echoProblem(w, http.StatusTooManyRequests)
			case 2:
				echoProblem(w, http.StatusBadRequest)
			case 3:
				echoProblem(w, http.StatusUnauthorized)
			case 4:
				echoProblem(w, http.StatusServiceUnavailable)
			case 5:
				statusLine(w)
			case 6:
				fmt.Fprint(w, body[:len(body)/2])
			case 7:
				filler := strings.Repeat("f", 1023)
				for i := range int(headerKiB % 128) {
					w.Header().Set(fmt.Sprintf("X-F-%d", i), filler)
				}
				fmt.Fprint(w, body)
			}
		}
		mode := collector.LabelRedacted
		if listMode/8%2 == 1 {
			mode = collector.LabelFull
		}

		// What a correct exporter must make of the hostile token. The
		// client reads dates as RFC 3339 (FuzzParseTime holds it to
		// time.Parse).
		expiry, dateErr := time.Parse(time.RFC3339Nano, expiresAt)
		inRange := ttl >= 0 && ttl <= apiclient.MaxTTL &&
			(ttl == 0 || (dateErr == nil && !expiry.Before(apiclient.EarliestDate) && expiry.Before(apiclient.LatestDate)))
		serves := loginMode%6 == 0 && fuzzValidLife(expiresIn) && (listMode%8 == 0 || (listMode%8 == 7 && headerKiB%128 < 48))

		// Replies that fail are retried or waited on within the scrape's
		// time: a short one keeps the fuzzer fast. Replies that serve get
		// time enough never to fail on a slow machine.
		timeout := 200 * time.Millisecond
		if serves {
			timeout = 5 * time.Second
		}
		s := newHostileServer(t, login, list)
		logs := &testsupport.SyncBuffer{}
		now := time.Now()
		code, exposition := hostileScrape(t, s.URL, mode, timeout, logs)
		if code != http.StatusOK {
			t.Fatalf("/metrics answered %d: %s", code, exposition)
		}
		m := hostileSamples(t, exposition)
		if len(m["apivideo_up"]) != 1 {
			t.Fatalf("no apivideo_up in\n%s", exposition)
		}
		up := m["apivideo_up"][0]

		switch {
		case up == 1 && !inRange:
			t.Fatalf("apivideo_up 1 with ttl %d and expiresAt %q out of range", ttl, expiresAt)
		case up == 0 && serves && inRange:
			t.Fatalf("apivideo_up 0 for a well-formed reply (ttl %d, expiresAt %q):\n%s", ttl, expiresAt, logs.String())
		case up == 1:
			want := 2.0
			if ttl != 0 && !expiry.After(now) {
				want = 1
			}
			if ttl == 0 || expiry.Sub(now).Abs() > 5*time.Second {
				if got := m["apivideo_upload_tokens_active"]; len(got) != 1 || got[0] != want {
					t.Fatalf("active %v, want %v", got, want)
				}
			}
		case up == 0:
			if _, ok := m["apivideo_upload_tokens_active"]; ok {
				t.Fatal("a count published with apivideo_up 0")
			}
		}
		log := logs.String()
		for _, secret := range []string{hostileKey, hostileAccess, hostileRefresh, fuzzGood, hostile} {
			if strings.Contains(log, secret) {
				t.Fatalf("%q in the log:\n%s", secret, log)
			}
			if mode == collector.LabelRedacted && strings.Contains(exposition, secret) {
				t.Fatalf("%q in the metrics", secret)
			}
		}
	})
}
