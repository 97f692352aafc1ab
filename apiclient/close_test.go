package apiclient

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A closed client's connections in use are closed as their requests end,
// not left open for the idle timeout, even when a listing under way goes
// on with requests after the close.
func TestCloseEndsConnectionsInUse(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	open := map[net.Conn]bool{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/upload-tokens" {
			<-release
		}
		fmt.Fprint(w, `{"access_token":"a","refresh_token":"r","expires_in":3600,"data":[],"pagination":{"currentPage":1,"pageSize":100,"pagesTotal":0,"itemsTotal":0}}`)
	}))
	srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		mu.Lock()
		defer mu.Unlock()
		switch s {
		case http.StateNew:
			open[c] = true
		case http.StateClosed, http.StateHijacked:
			delete(open, c)
		}
	}
	srv.Start()
	defer srv.Close()
	openConns := func() int { mu.Lock(); defer mu.Unlock(); return len(open) }

	c, err := New(Config{BaseURL: srv.URL, Key: StaticKey("key"), Concurrency: 4})
	require.NoError(t, err)
	var wg sync.WaitGroup
	for page := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = c.Page(context.Background(), page+1, 100)
		}()
	}
	require.Eventually(t, func() bool { return openConns() >= 4 }, 5*time.Second, time.Millisecond)
	c.Close()
	close(release)
	wg.Wait()
	// A listing still under way when its client was replaced goes on
	// with requests of its own.
	for page := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = c.Page(context.Background(), page+1, 100)
		}()
	}
	wg.Wait()
	require.Eventually(t, func() bool { return openConns() == 0 }, 5*time.Second, time.Millisecond,
		"every connection closed once its request ended")
}

func TestLargeReplyBuffersAreNotPooled(t *testing.T) {
	c, err := New(Config{BaseURL: "http://127.0.0.1", Key: StaticKey("key")})
	require.NoError(t, err)
	big := bytes.NewBuffer(make([]byte, 0, 4<<20))
	c.putBody(big)
	for range 10 {
		assert.NotSame(t, big, c.bodies.Get().(*bytes.Buffer))
	}
}

// Replies are read at most maxBodiesInFlight at once, across clients: a
// request that finds every slot taken waits, within its deadline.
func TestRepliesReadAtOnceAreBounded(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"access_token":"a","refresh_token":"r","expires_in":3600,"data":[],"pagination":{"currentPage":1,"pageSize":100,"pagesTotal":0,"itemsTotal":0}}`)
	}))
	defer srv.Close()
	c, err := New(Config{BaseURL: srv.URL, Key: StaticKey("key")})
	require.NoError(t, err)
	_, err = c.Page(context.Background(), 1, 100)
	require.NoError(t, err)
	for range maxBodiesInFlight {
		bodiesInFlight <- struct{}{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	_, err = c.Page(ctx, 1, 100)
	cancel()
	require.ErrorIs(t, err, context.DeadlineExceeded, "the reply waited for a slot to the deadline")
	for range maxBodiesInFlight {
		<-bodiesInFlight
	}
	_, err = c.Page(context.Background(), 1, 100)
	require.NoError(t, err)
}
