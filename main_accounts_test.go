package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apivideo-exporter/apivideo_exporter/internal/fakeapi"
	"github.com/apivideo-exporter/apivideo_exporter/internal/testsupport"
)

// writeAccounts writes an accounts file of the fakes, by name, each with
// its key in a file of its own.
func writeAccounts(t *testing.T, path string, fakes map[string]*fakeapi.Server) {
	t.Helper()
	var b strings.Builder
	b.WriteString("accounts:\n")
	for name, f := range fakes {
		key := filepath.Join(filepath.Dir(path), name+".key")
		require.NoError(t, os.WriteFile(key, []byte(f.APIKey()), 0o600))
		fmt.Fprintf(&b, "  %s:\n    url: %s\n    api_key_file: %s\n", name, f.URL, key)
	}
	require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o600))
}

// With an accounts file and no key, the exporter starts, serves each
// account on /probe and only its own metrics and the accounts' request
// metrics on /metrics, and reloads on SIGHUP.
func TestAccountsFileWithoutKey(t *testing.T) {
	one := fakeapi.NewServer(fakeapi.Options{APIKey: "key-one", Tokens: 20, WithoutExpiry: 4, Seed: 31})
	t.Cleanup(one.Close)
	two := fakeapi.NewServer(fakeapi.Options{APIKey: "key-two", Tokens: 9, Seed: 32})
	t.Cleanup(two.Close)
	path := filepath.Join(t.TempDir(), "accounts.yml")
	writeAccounts(t, path, map[string]*fakeapi.Server{"one": one})
	p := testsupport.StartExporter(t, []string{"APIVIDEO_CONFIG_FILE=" + path})

	code, _, body := get(t, p.URL+"/probe?account=one", nil)
	require.Equal(t, http.StatusOK, code, body)
	m := parseMetrics(t, body)
	assert.Equal(t, 1.0, float64(m["apivideo_up"].Value))
	assert.Equal(t, 20.0, float64(m["apivideo_upload_tokens_active"].Value))
	assert.Contains(t, body, `apivideo_api_requests_total{code="200"} 2`)
	assert.NotContains(t, body, "go_goroutines", "a probe serves the account alone")

	code, _, body = get(t, p.URL+"/probe?account=two", nil)
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Contains(t, body, `unknown account "two"`)

	code, _, body = get(t, p.URL+"/metrics", nil)
	require.Equal(t, http.StatusOK, code)
	assert.NotContains(t, body, "apivideo_up ")
	// The accounts' request metrics are on their probes only: a selector
	// matching both jobs counts each account once.
	assert.NotContains(t, body, "apivideo_api_requests_total")
	assert.NotContains(t, body, "apivideo_api_request_duration_seconds")
	for _, want := range []string{
		"apivideo_exporter_config_last_reload_successful 1",
		"apivideo_exporter_config_last_reload_success_timestamp_seconds ",
		"go_goroutines ",
	} {
		assert.Contains(t, body, want)
	}

	writeAccounts(t, path, map[string]*fakeapi.Server{"one": one, "two": two})
	require.NoError(t, p.Cmd.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool {
		code, _, _ := get(t, p.URL+"/probe?account=two", nil)
		return code == http.StatusOK
	}, 5*time.Second, 50*time.Millisecond)
	_, _, body = get(t, p.URL+"/probe?account=two", nil)
	assert.Equal(t, 9.0, float64(parseMetrics(t, body)["apivideo_upload_tokens_active"].Value))
	assert.Equal(t, 1, one.Stats().Logins, "the unchanged account kept its login")

	require.NoError(t, os.WriteFile(path, []byte("accounts:\n  one:\n    api_key: x\n"), 0o600))
	resp, err := http.Post(p.URL+"/-/reload", "", nil)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusInternalServerError, resp.StatusCode)
	_, _, body = get(t, p.URL+"/metrics", nil)
	assert.Contains(t, body, "apivideo_exporter_config_last_reload_successful 0")
	assert.Eventually(t, func() bool { return strings.Contains(p.Log(), "field api_key not found") },
		10*time.Second, 10*time.Millisecond, "the reload's reason is logged")
	code, _, _ = get(t, p.URL+"/probe?account=two", nil)
	assert.Equal(t, http.StatusOK, code, "the last good accounts still serve")
}

// With a key as well, /metrics serves that account exactly as without an
// accounts file.
func TestAccountsFileWithKey(t *testing.T) {
	single := fakeapi.NewServer(fakeapi.Options{Tokens: 15, Seed: 33})
	t.Cleanup(single.Close)
	other := fakeapi.NewServer(fakeapi.Options{APIKey: "key-other", Tokens: 5, Seed: 34})
	t.Cleanup(other.Close)
	path := filepath.Join(t.TempDir(), "accounts.yml")
	writeAccounts(t, path, map[string]*fakeapi.Server{"other": other})
	p := testsupport.StartExporter(t, keyEnv(single.APIKey()), "--apivideo.url="+single.URL, "--config.file="+path)

	code, _, body := get(t, p.URL+"/metrics", nil)
	require.Equal(t, http.StatusOK, code)
	m := parseMetrics(t, body)
	assert.Equal(t, 1.0, float64(m["apivideo_up"].Value))
	assert.Equal(t, 15.0, float64(m["apivideo_upload_tokens_active"].Value))
	assert.Contains(t, body, `apivideo_api_requests_total{code="200"} 2`)
	assert.NotContains(t, body, `account="other"`, "the probed account's series stay on its probe")

	code, _, body = get(t, p.URL+"/probe?account=other", nil)
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, 5.0, float64(parseMetrics(t, body)["apivideo_upload_tokens_active"].Value))
}

func TestAccountsFileBrokenAtStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "accounts.yml")
	require.NoError(t, os.WriteFile(path, []byte("accounts:\n  Prod:\n    api_key_env: K\n"), 0o600))
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		code int
		want string
	}{
		{"broken file", nil, []string{"--config.file=" + path}, 1, "the name must match [a-z0-9_-]+"},
		{"missing file", nil, []string{"--config.file=/nonexistent/accounts.yml"}, 1, "reading accounts file"},
		{"missing key file", nil, []string{"--config.file=" + path, "--apivideo.api-key-file=/nonexistent/key"}, 1, "reading API key file"},
		{"probe cap", keyEnv("k"), []string{"--probe.max-concurrent=0"}, 2, "--probe.max-concurrent must be between 1 and 1024"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stderr := runExporter(t, tc.env, tc.args...)
			assert.Equal(t, tc.code, code)
			assert.Contains(t, stderr, tc.want)
			assert.NotContains(t, stderr, "Listening on")
		})
	}
}

// startWithHangingAccount starts the exporter, with args, on one account
// named "hanging" whose API takes a minute to answer.
func startWithHangingAccount(t *testing.T, seed uint64, args ...string) (*testsupport.Exporter, *fakeapi.Server) {
	t.Helper()
	hanging := fakeapi.NewServer(fakeapi.Options{Tokens: 3, Seed: seed})
	hanging.SetLatency(time.Minute)
	t.Cleanup(hanging.Close)
	path := filepath.Join(t.TempDir(), "accounts.yml")
	writeAccounts(t, path, map[string]*fakeapi.Server{"hanging": hanging})
	return testsupport.StartExporter(t, nil, append([]string{"--config.file=" + path}, args...)...), hanging
}

// A probe of a hanging account answers apivideo_up 0 within the scrape
// timeout Prometheus announces, less --web.timeout-offset.
func TestProbeScrapeTimeoutHeader(t *testing.T) {
	p, _ := startWithHangingAccount(t, 35, "--web.timeout-offset=0.5")

	start := time.Now()
	code, _, body := get(t, p.URL+"/probe?account=hanging", http.Header{"X-Prometheus-Scrape-Timeout-Seconds": {"2"}})
	elapsed := time.Since(start)
	require.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, 0.0, float64(parseMetrics(t, body)["apivideo_up"].Value))
	// The header's 2 s less the 0.5 s offset, not the account's 10 s.
	assert.GreaterOrEqual(t, elapsed, 1400*time.Millisecond)
	assert.Less(t, elapsed, 8*time.Second, "the account's 10s timeout gave way to the header's")
	// Each line names its component once, an account's lines their account.
	// The exporter's log reaches the test through a pipe: wait for it.
	require.Eventually(t, func() bool { return strings.Contains(p.Log(), "account=hanging component=collector") },
		10*time.Second, 10*time.Millisecond, "the collector's line names its account")
	for _, line := range strings.Split(strings.TrimSpace(p.Log()), "\n") {
		assert.LessOrEqual(t, strings.Count(line, "component="), 1, line)
	}
}

// --web.max-requests bounds the probes served at once too: past it, a
// probe gets 503 at once instead of queueing.
func TestProbesInFlightAreLimited(t *testing.T) {
	p, hanging := startWithHangingAccount(t, 36, "--web.max-requests=1")

	done := make(chan int, 1)
	go func() {
		code, _, _ := get(t, p.URL+"/probe?account=hanging", http.Header{"X-Prometheus-Scrape-Timeout-Seconds": {"3"}})
		done <- code
	}()
	// The first probe waits on api.video.
	require.Eventually(t, func() bool { return hanging.Stats().Received > 0 }, 10*time.Second, 5*time.Millisecond)
	require.Empty(t, done, "the first probe is still in flight")
	start := time.Now()
	code, _, body := get(t, p.URL+"/probe?account=hanging", nil)
	assert.Equal(t, http.StatusServiceUnavailable, code, body)
	assert.Contains(t, body, "Limit of concurrent requests reached (1)")
	assert.Less(t, time.Since(start), time.Second, "refused at once")
	assert.Equal(t, http.StatusOK, <-done)
}
