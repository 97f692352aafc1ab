package main

import (
	"bytes"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/apivideo-exporter/apivideo_exporter/internal/scrape"
)

// One HTTP/2 connection that opens many streams and grants no flow-control
// window holds at most maxStreams of them, so that /metrics still answers
// other clients; its streams end at their write deadline, and the
// connection, idle then, is closed (here with the deadlines scaled down:
// a scrape's timeout plus scrape.WriteGrace, then the idle timeout).
func TestHTTP2StreamsWithoutWindowCannotTakeEverySlot(t *testing.T) {
	const maxRequests = 12
	grace := scrape.WriteGrace
	scrape.WriteGrace = time.Second
	t.Cleanup(func() { scrape.WriteGrace = grace })
	reg := newRegistry()
	h := metricsHandler(reg, nil, 0, 200*time.Millisecond, maxRequests, log.NewNopLogger())
	ts := httptest.NewUnstartedServer(h)
	ts.Config = newServer(h, 2*time.Second, log.NewNopLogger())
	ts.EnableHTTP2 = true
	ts.StartTLS()
	defer ts.Close()

	conn, err := tls.Dial("tcp", ts.Listener.Addr().String(), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	require.NoError(t, err)
	defer conn.Close()
	require.Equal(t, "h2", conn.ConnectionState().NegotiatedProtocol)
	_, err = conn.Write([]byte(http2.ClientPreface))
	require.NoError(t, err)
	framer := http2.NewFramer(conn, conn)
	// No window for any stream, and none granted later.
	require.NoError(t, framer.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0}))
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for _, f := range []hpack.HeaderField{
		{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "https"},
		{Name: ":authority", Value: "exporter"}, {Name: ":path", Value: "/metrics"},
	} {
		require.NoError(t, enc.WriteField(f))
	}
	for i := range 40 {
		require.NoError(t, framer.WriteHeaders(http2.HeadersFrameParam{
			StreamID: uint32(2*i + 1), BlockFragment: block.Bytes(), EndStream: true, EndHeaders: true,
		}))
	}
	// Read the server's frames in the background, as a client must, until
	// the server closes the connection.
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		for {
			if _, err := framer.ReadFrame(); err != nil {
				return
			}
		}
	}()
	// The streams the server accepted are in the handler, stalled.
	require.Eventually(t, func() bool { return inFlight(t, reg) >= min(maxStreams, maxRequests) }, 10*time.Second, time.Millisecond)

	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, Timeout: 10 * time.Second}
	resp, err := client.Get(ts.URL + "/metrics")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode, "a slot is left for Prometheus")

	// The stalled streams end at their write deadline, freeing their
	// slots, and the connection left idle is closed.
	require.Eventually(t, func() bool { return inFlight(t, reg) == 0 }, 20*time.Second, 10*time.Millisecond, "the stalled streams end")
	select {
	case <-closed:
	case <-time.After(20 * time.Second):
		t.Fatal("the server did not close the stalled connection")
	}
}
