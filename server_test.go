package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	stdlog "log"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apivideo-exporter/apivideo_exporter/apiclient"
	"github.com/apivideo-exporter/apivideo_exporter/internal/accounts"
	"github.com/apivideo-exporter/apivideo_exporter/internal/testsupport"
)

func serverTestHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "Healthy") })
}

func TestServerBounds(t *testing.T) {
	assert.Positive(t, idleTimeout)
	assert.LessOrEqual(t, idleTimeout, 60*time.Second)
	srv := newServer(serverTestHandler(), idleTimeout, log.NewNopLogger())
	assert.Equal(t, idleTimeout, srv.IdleTimeout)
	assert.Positive(t, srv.ReadHeaderTimeout)
	assert.Equal(t, 64<<10, srv.MaxHeaderBytes)
	assert.NotNil(t, srv.ErrorLog)
}

// TestIdleConnectionsAreClosed opens keep-alive connections, leaves them
// idle past the idle timeout, and sees the server close every one.
func TestIdleConnectionsAreClosed(t *testing.T) {
	const idle = 300 * time.Millisecond
	ts := httptest.NewUnstartedServer(serverTestHandler())
	ts.Config = newServer(serverTestHandler(), idle, log.NewNopLogger())
	ts.Start()
	defer ts.Close()

	conns := make([]net.Conn, 50)
	for i := range conns {
		conn, err := net.Dial("tcp", ts.Listener.Addr().String())
		require.NoError(t, err)
		defer conn.Close()
		fmt.Fprint(conn, "GET /-/healthy HTTP/1.1\r\nHost: exporter\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		require.NoError(t, err)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.False(t, resp.Close, "kept alive")
		conns[i] = conn
	}
	// Every connection is now idle; each read ends with EOF once the server
	// closes it, well before the 5 s deadline.
	var wg sync.WaitGroup
	for _, conn := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err := conn.Read(make([]byte, 1))
			assert.ErrorIs(t, err, io.EOF, "the server closed the idle connection")
		}()
	}
	wg.Wait()
}

func TestOversizeRequestHeadersAreRefused(t *testing.T) {
	ts := httptest.NewUnstartedServer(serverTestHandler())
	ts.Config = newServer(serverTestHandler(), idleTimeout, log.NewNopLogger())
	ts.Start()
	defer ts.Close()
	req, err := http.NewRequest(http.MethodGet, ts.URL+"/-/healthy", nil)
	require.NoError(t, err)
	req.Header.Set("X-Filler", strings.Repeat("x", 200<<10))
	resp, err := ts.Client().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusRequestHeaderFieldsTooLarge, resp.StatusCode)
}

// TestTLSHandshakeErrorsGoThroughTheLogger: with --log.format=json, a bad
// TLS client gives a JSON line, not a line from Go's standard logger.
func TestTLSHandshakeErrorsGoThroughTheLogger(t *testing.T) {
	logs := &testsupport.SyncBuffer{}
	logger := level.NewFilter(log.NewJSONLogger(logs), level.AllowDebug())
	ts := httptest.NewUnstartedServer(serverTestHandler())
	ts.Config = newServer(serverTestHandler(), idleTimeout, logger)
	stderr := captureStdlog(t)
	ts.StartTLS()
	defer ts.Close()

	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	require.NoError(t, err)
	fmt.Fprint(conn, "GET / HTTP/1.1\r\nHost: exporter\r\n\r\n")
	io.Copy(io.Discard, conn)
	conn.Close()
	// A proper TLS client still gets through.
	resp, err := ts.Client().Get(ts.URL)
	require.NoError(t, err)
	resp.Body.Close()

	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "TLS handshake error") }, 5*time.Second, 20*time.Millisecond)
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &rec), "a JSON line: %s", line)
		assert.Equal(t, "debug", fmt.Sprint(rec["level"]))
		assert.Equal(t, "http", rec["component"])
	}
	assert.Empty(t, stderr(), "nothing through Go's standard logger")
}

// captureStdlog redirects Go's standard logger for the test and returns
// what it received.
func captureStdlog(t *testing.T) func() string {
	buf := &testsupport.SyncBuffer{}
	prev := stdlog.Writer()
	stdlog.SetOutput(buf)
	t.Cleanup(func() { stdlog.SetOutput(prev) })
	return buf.String
}

// TestScrapesInFlightAreLimited: past --web.max-requests, scrapes get 503
// at once instead of queueing.
func TestScrapesInFlightAreLimited(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	defer unblock()
	s := newHostileServer(t, nil, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		hostilePage(hostileGoodItems...)(w, r)
	})
	reg := newRegistry()
	wired, err := accounts.Wire(accounts.Settings{URL: s.URL, Concurrency: apiclient.DefaultConcurrency, Timeout: 10 * time.Second, Listing: "auto"},
		apiclient.StaticKey(hostileKey), accounts.Wiring{MaxTokenSeries: 10})
	require.NoError(t, err)
	exporter := httptest.NewServer(metricsHandler(reg, wired.Tokens, 0, 10*time.Second, 2, log.NewNopLogger()))
	defer exporter.Close()

	codes := testsupport.GetStatuses(exporter.URL, 2)
	require.Eventually(t, func() bool { return s.lists.Load() > 0 }, 5*time.Second, 10*time.Millisecond)
	// Both scrapes are in the handler.
	require.Eventually(t, func() bool {
		return inFlight(t, reg) == 2
	}, 5*time.Second, time.Millisecond)
	resp, err := http.Get(exporter.URL)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "refused at once, not queued")
	assert.Contains(t, string(body), "Limit of concurrent requests reached (2)")

	unblock()
	for range 2 {
		assert.Equal(t, http.StatusOK, <-codes)
	}
	resp, err = http.Get(exporter.URL)
	require.NoError(t, err)
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode, "served again once the slots are free")
	assert.Contains(t, string(body), `promhttp_metric_handler_requests_total{code="503"} 1`, "the refusal is counted")
}

func TestScrapeTimeout(t *testing.T) {
	const limit = 10 * time.Second
	for _, tc := range []struct {
		header string
		offset float64
		want   time.Duration
	}{
		{"", 0.5, limit},
		{"2", 0.5, 1500 * time.Millisecond},
		{"10", 0.5, 9500 * time.Millisecond},
		{"60", 0.5, limit},
		{"2.5", 0, 2500 * time.Millisecond},
		{"0.4", 0.5, 200 * time.Millisecond},
		{"0.5", 0.5, 250 * time.Millisecond},
		{"abc", 0.5, limit},
		{"-3", 0.5, limit},
		{"NaN", 0.5, limit},
		{"Inf", 0.5, limit},
		{"1e11", 0.5, limit},
		// The announced time is all taken by the offset: half of it, never
		// more than limit, never a negative overflow.
		{"8", 100, 4 * time.Second},
		{"60", 100, limit},
		{"20", 20, limit},
		{"1e20", 1e30, limit},
		{"1e300", math.MaxFloat64, limit},
	} {
		t.Run(fmt.Sprintf("%q-%v", tc.header, tc.offset), func(t *testing.T) {
			h := http.Header{}
			if tc.header != "" {
				h.Set("X-Prometheus-Scrape-Timeout-Seconds", tc.header)
			}
			assert.Equal(t, tc.want, scrapeTimeout(h, tc.offset, limit))
		})
	}
}

// inFlight is promhttp's gauge of the /metrics requests being served.
func inFlight(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == "promhttp_metric_handler_requests_in_flight" {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return 0
}
