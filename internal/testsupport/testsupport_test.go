package testsupport_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apivideo-exporter/apivideo_exporter/internal/testsupport"
)

func TestRefusingAddressRefusesAndStaysTaken(t *testing.T) {
	addr, release, err := testsupport.RefusingAddress()
	require.NoError(t, err)
	defer release()
	for range 3 {
		_, err := net.DialTimeout("tcp", addr, time.Second)
		assert.True(t, errors.Is(err, syscall.ECONNREFUSED), "dial %s: %v", addr, err)
	}
	_, err = net.Listen("tcp", addr)
	assert.Error(t, err, "nobody else can listen there while it is held")
}

func TestWaitReady(t *testing.T) {
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if calls++; calls < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, testsupport.WaitReady(ctx, srv.Client(), srv.URL))
	assert.Equal(t, 3, calls)

	short, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	calls = -1000
	err := testsupport.WaitReady(short, srv.Client(), srv.URL)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.ErrorContains(t, err, "status 503")
	require.NoError(t, testsupport.WaitReady(ctx, srv.Client(), srv.URL, http.StatusServiceUnavailable))
}

func TestDiscard(t *testing.T) {
	d := testsupport.NewDiscard()
	http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusTeapot)
		w.Write([]byte("hello"))
		w.Write([]byte(", world"))
	}).ServeHTTP(d, httptest.NewRequest(http.MethodGet, "/", nil))
	assert.Equal(t, http.StatusTeapot, d.Status)
	assert.Equal(t, int64(12), d.Bytes)
	assert.Equal(t, "text/plain", d.Head.Get("Content-Type"))
}
