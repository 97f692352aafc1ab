package scrape

import (
	"compress/gzip"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apivideo-exporter/apivideo_exporter/internal/testsupport"
)

func handler(g prometheus.Gatherer) http.Handler {
	return Handler(func(*http.Request) (Target, error) {
		return Target{Limit: 10 * time.Second, Gatherers: prometheus.Gatherers{g}}, nil
	}, func(_ *http.Request, limit time.Duration) time.Duration { return limit }, promhttp.HandlerOpts{})
}

func gauges(n int) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "filler", Help: "Filler."}, []string{"label"})
	for i := range n {
		g.WithLabelValues(fmt.Sprintf("%s%d", strings.Repeat("x", 100), i)).Set(1)
	}
	reg.MustRegister(g)
	return reg
}

// The exposition is encoded compressed, and sent as the client asks: gzip
// as it is, otherwise decompressed.
func TestEachClientGetsTheEncodingItAsks(t *testing.T) {
	ts := httptest.NewServer(handler(gauges(1000)))
	defer ts.Close()
	get := func(acceptEncoding string) (*http.Response, string) {
		req, err := http.NewRequest(http.MethodGet, ts.URL, nil)
		require.NoError(t, err)
		if acceptEncoding != "" {
			req.Header.Set("Accept-Encoding", acceptEncoding)
		}
		// The transport must not ask for gzip itself.
		resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		body := io.Reader(resp.Body)
		if resp.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(resp.Body)
			require.NoError(t, err)
			body = zr
		}
		b, err := io.ReadAll(body)
		require.NoError(t, err)
		return resp, string(b)
	}
	plain, want := get("")
	assert.Equal(t, http.StatusOK, plain.StatusCode)
	assert.Empty(t, plain.Header.Get("Content-Encoding"))
	assert.Equal(t, 1000, strings.Count(want, "\nfiller{"))
	for _, tc := range []struct {
		acceptEncoding string
		gzip           bool
	}{
		{"gzip", true},
		{"zstd;q=1.0, gzip;q=0.5", true},
		{"*", true},
		{"gzip;q=0", false},
		{"identity", false},
		{"br", false},
	} {
		t.Run(tc.acceptEncoding, func(t *testing.T) {
			resp, body := get(tc.acceptEncoding)
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, tc.gzip, resp.Header.Get("Content-Encoding") == "gzip")
			assert.Equal(t, want, body)
		})
	}
}

// gate is a Gatherer that waits until it is opened, counting the gathers
// under way.
type gate struct {
	mu           sync.Mutex
	open         chan struct{}
	inside, most int
	reg          *prometheus.Registry
}

func (g *gate) Gather() ([]*dto.MetricFamily, error) {
	g.mu.Lock()
	g.inside++
	g.most = max(g.most, g.inside)
	g.mu.Unlock()
	<-g.open
	g.mu.Lock()
	g.inside--
	g.mu.Unlock()
	return g.reg.Gather()
}

func (g *gate) under() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.inside
}

// At most MaxEncoding scrapes gather and encode at once; the others wait
// their turn, and every one is answered.
func TestGatheringIsBounded(t *testing.T) {
	g := &gate{open: make(chan struct{}), reg: gauges(10)}
	ts := httptest.NewServer(handler(g))
	defer ts.Close()
	const scrapes = 5
	codes := testsupport.GetStatuses(ts.URL, scrapes)
	require.Eventually(t, func() bool { return g.under() == MaxEncoding && len(encoding) == MaxEncoding }, 10*time.Second, time.Millisecond)
	close(g.open)
	for range scrapes {
		assert.Equal(t, http.StatusOK, <-codes)
	}
	assert.Equal(t, MaxEncoding, g.most, "gathers at once")
}

// A client that never reads its answer holds only the encoded exposition:
// its gathering slot is free again at once, and other scrapes go on.
func TestStalledClientHoldsNoGatheringSlot(t *testing.T) {
	ts := httptest.NewUnstartedServer(handler(gauges(10_000)))
	ts.Listener = testsupport.SmallSendBuffers(ts.Listener)
	ts.Start()
	defer ts.Close()
	for range MaxEncoding + 1 {
		stalled, err := net.Dial("tcp", ts.Listener.Addr().String())
		require.NoError(t, err)
		defer stalled.Close()
		require.NoError(t, stalled.(*net.TCPConn).SetReadBuffer(4096))
		fmt.Fprintf(stalled, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	}
	resp, err := http.Get(ts.URL)
	require.NoError(t, err)
	_, err = io.Copy(io.Discard, resp.Body)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Eventually(t, func() bool { return len(encoding) == 0 }, 10*time.Second, time.Millisecond)
}
