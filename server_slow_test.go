package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apivideo-exporter/apivideo_exporter/internal/scrape"
	"github.com/apivideo-exporter/apivideo_exporter/internal/testsupport"
)

// bigExposition is about 1 MB of series: more than the socket buffers of
// a testsupport.SmallSendBuffers listener hold, so that a client that does not read
// stalls the writer.
func bigExposition() prometheus.Collector {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "filler", Help: "Filler."}, []string{"label"})
	pad := strings.Repeat("x", 200)
	for i := range 5_000 {
		g.WithLabelValues(fmt.Sprintf("%s%d", pad, i)).Set(1)
	}
	return g
}

// A client that asks for /metrics and never reads the answer loses the
// request at the scrape's write deadline, and its slot serves the next
// scrape; the server closes its connection.
func TestStalledReaderReleasesItsSlot(t *testing.T) {
	grace := scrape.WriteGrace
	scrape.WriteGrace = time.Second
	t.Cleanup(func() { scrape.WriteGrace = grace })
	reg := newRegistry()
	reg.MustRegister(bigExposition())
	h := metricsHandler(reg, nil, 0, 200*time.Millisecond, 1, log.NewNopLogger())
	ts := httptest.NewUnstartedServer(h)
	ts.Config = newServer(h, idleTimeout, log.NewNopLogger())
	var states sync.Map
	ts.Config.ConnState = func(c net.Conn, s http.ConnState) { states.Store(c.RemoteAddr().String(), s) }
	ts.Listener = testsupport.SmallSendBuffers(ts.Listener)
	ts.Start()
	defer ts.Close()

	stalled, err := net.Dial("tcp", ts.Listener.Addr().String())
	require.NoError(t, err)
	defer stalled.Close()
	// A tiny receive buffer, never read.
	require.NoError(t, stalled.(*net.TCPConn).SetReadBuffer(4096))
	fmt.Fprintf(stalled, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")

	status := func() int {
		resp, err := http.Get(ts.URL + "/metrics")
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// The slot is taken while the answer is stuck (503), then freed: well
	// before the server's 30 s WriteTimeout would free it.
	require.Eventually(t, func() bool { return status() == http.StatusServiceUnavailable }, 10*time.Second, 10*time.Millisecond, "the stalled answer holds the slot")
	require.Eventually(t, func() bool { return status() == http.StatusOK }, 20*time.Second, 50*time.Millisecond,
		"/metrics answers 200 again once the stalled answer times out")

	// And the server closed the stalled connection, and its descriptor.
	require.Eventually(t, func() bool {
		state, ok := states.Load(stalled.LocalAddr().String())
		return ok && state == http.StateClosed
	}, 20*time.Second, 10*time.Millisecond, "the server closes the stalled connection")
}

// A client that sends its headers, then dribbles a body, is cut off at
// the read timeout.
func TestDribbledBodyIsCutOff(t *testing.T) {
	ts := httptest.NewUnstartedServer(serverTestHandler())
	ts.Config = newServer(serverTestHandler(), idleTimeout, log.NewNopLogger())
	ts.Config.ReadTimeout = 300 * time.Millisecond
	ts.Start()
	defer ts.Close()

	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	fmt.Fprintf(conn, "POST /-/healthy HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
	r := bufio.NewReader(conn)
	resp, err := http.ReadResponse(r, nil)
	require.NoError(t, err)
	resp.Body.Close()
	// The handler answered without the body; the server then reads on to
	// reuse the connection, and gives up at the read timeout.
	closed := make(chan error, 1)
	go func() {
		for {
			if _, err := conn.Write([]byte("x")); err != nil {
				closed <- err
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	select {
	case err := <-closed:
		assert.Error(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("the connection dribbling a body is still open")
	}
}

func TestServerTimeoutsAndStreams(t *testing.T) {
	srv := newServer(serverTestHandler(), idleTimeout, log.NewNopLogger())
	assert.Equal(t, readTimeout, srv.ReadTimeout)
	assert.Equal(t, writeTimeout, srv.WriteTimeout)
	require.NotNil(t, srv.HTTP2)
	assert.Equal(t, maxStreams, srv.HTTP2.MaxConcurrentStreams)
}
