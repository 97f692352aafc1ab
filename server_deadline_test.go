package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apivideo-exporter/apivideo_exporter/apiclient"
	"github.com/apivideo-exporter/apivideo_exporter/internal/accounts"
	"github.com/apivideo-exporter/apivideo_exporter/internal/fakeapi"
)

// Clients that loop on /metrics announcing a 0.6 s scrape timeout keep
// starting listings that api.video (0.8 s a request) cannot answer in that
// time; the 10 s scrapes that join them still get their own time, and are
// up, as the issue of hostile clients asks: at least 95 % of them.
func TestShortTimeoutClientsCannotFailPrometheus(t *testing.T) {
	s := fakeapi.NewServer(fakeapi.Options{Tokens: 50, Latency: 800 * time.Millisecond})
	defer s.Close()
	wired, err := accounts.Wire(accounts.Settings{URL: s.URL, Concurrency: apiclient.DefaultConcurrency, Timeout: 10 * time.Second, Listing: "auto"},
		apiclient.StaticKey(s.APIKey()), accounts.Wiring{MaxTokenSeries: 10})
	require.NoError(t, err)
	exporter := httptest.NewServer(metricsHandler(newRegistry(), wired.Tokens, 0, 10*time.Second, 40, log.NewNopLogger()))
	defer exporter.Close()
	scrape := func(timeout string) (bool, error) {
		req, err := http.NewRequest(http.MethodGet, exporter.URL, nil)
		if err != nil {
			return false, err
		}
		req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", timeout)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return false, err
		}
		return float64(parseMetrics(t, string(body))["apivideo_up"].Value) == 1, nil
	}

	stop := make(chan struct{})
	var attackers sync.WaitGroup
	for range 4 {
		attackers.Add(1)
		go func() {
			defer attackers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, _ = scrape("0.6")
			}
		}()
	}
	const scrapes = 10
	up := 0
	for range scrapes {
		ok, err := scrape("10")
		require.NoError(t, err)
		if ok {
			up++
		}
	}
	close(stop)
	attackers.Wait()
	assert.GreaterOrEqual(t, float64(up), 0.95*scrapes, "10 s scrapes up among %d", scrapes)
}
