package accounts

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apivideo-exporter/apivideo_exporter/collector"
	"github.com/apivideo-exporter/apivideo_exporter/internal/fakeapi"
)

// headerTimeout is the announced scrape timeout, capped by limit.
func headerTimeout(r *http.Request, limit time.Duration) time.Duration {
	if s, err := strconv.ParseFloat(r.Header.Get("X-Prometheus-Scrape-Timeout-Seconds"), 64); err == nil && s > 0 {
		return min(limit, time.Duration(s*float64(time.Second)))
	}
	return limit
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Reset()
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testSet is a Set of the accounts file it writes, with its probe handler
// behind an httptest server.
type testSet struct {
	*Set
	path string
	reg  *prometheus.Registry
	logs *syncBuffer
	srv  *httptest.Server
}

func newTestSet(t *testing.T, file string, maxProbes int) *testSet {
	t.Helper()
	path := filepath.Join(t.TempDir(), "accounts.yml")
	require.NoError(t, os.WriteFile(path, []byte(file), 0o600))
	ts := &testSet{path: path, reg: prometheus.NewRegistry(), logs: &syncBuffer{}}
	ts.Set = New(path, Options{
		Defaults:            testDefaults,
		Wiring:              Wiring{TokenLabel: collector.LabelRedacted, MaxTokenSeries: 10},
		MaxConcurrentProbes: maxProbes,
		Registerer:          ts.reg,
		Logger:              log.NewLogfmtLogger(ts.logs),
	})
	require.NoError(t, ts.Reload(context.Background()))
	mux := http.NewServeMux()
	mux.Handle("/probe", ts.ProbeHandler(headerTimeout, nil))
	mux.Handle("/-/reload", ts.ReloadHandler())
	ts.srv = httptest.NewServer(mux)
	t.Cleanup(ts.srv.Close)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", ts.logs.String())
		}
	})
	return ts
}

func (ts *testSet) write(t *testing.T, file string) {
	t.Helper()
	require.NoError(t, os.WriteFile(ts.path, []byte(file), 0o600))
}

// probe fetches /probe?account=name with a scrape timeout of timeout
// seconds (none when 0).
func (ts *testSet) probe(t *testing.T, name string, timeout float64) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, ts.srv.URL+"/probe?account="+name, nil)
	require.NoError(t, err)
	if timeout > 0 {
		req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", strconv.FormatFloat(timeout, 'f', -1, 64))
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

// metrics probes an account and parses the reply, which must be a 200.
func (ts *testSet) metrics(t *testing.T, name string, timeout float64) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := ts.probe(t, name, timeout)
	require.Equal(t, http.StatusOK, code, body)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(strings.NewReader(body))
	require.NoError(t, err)
	return mfs
}

func gauge(t *testing.T, mfs map[string]*dto.MetricFamily, name string) float64 {
	t.Helper()
	mf, ok := mfs[name]
	require.True(t, ok, "no %s", name)
	require.Len(t, mf.GetMetric(), 1, name)
	return mf.GetMetric()[0].GetGauge().GetValue()
}

// listingModes returns apivideo_listing_mode by mode.
func listingModes(t *testing.T, mfs map[string]*dto.MetricFamily) map[string]float64 {
	t.Helper()
	mf, ok := mfs["apivideo_listing_mode"]
	require.True(t, ok, "no apivideo_listing_mode")
	out := map[string]float64{}
	for _, m := range mf.GetMetric() {
		require.Len(t, m.GetLabel(), 1)
		out[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
	}
	return out
}

// requests returns the probe's apivideo_api_requests_total by code, and
// checks that it carries no label but code.
func requests(t *testing.T, mfs map[string]*dto.MetricFamily) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, m := range mfs["apivideo_api_requests_total"].GetMetric() {
		require.Len(t, m.GetLabel(), 1)
		require.Equal(t, "code", m.GetLabel()[0].GetName())
		out[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
	}
	return out
}

func keyFile(t *testing.T, key string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "api-key")
	require.NoError(t, os.WriteFile(path, []byte(key+"\n"), 0o600))
	return path
}

func TestProbeTwoAccounts(t *testing.T) {
	a := fakeapi.NewServer(fakeapi.Options{APIKey: "key-a", Tokens: 30, WithoutExpiry: 5, Seed: 1})
	t.Cleanup(a.Close)
	b := fakeapi.NewServer(fakeapi.Options{APIKey: "key-b", Tokens: 7, WithoutExpiry: 2, Seed: 2})
	t.Cleanup(b.Close)
	t.Setenv("TEST_KEY_B", "key-b")
	ts := newTestSet(t, fmt.Sprintf(`accounts:
  alpha:
    url: %s
    api_key_file: %s
  beta:
    url: %s
    api_key_env: TEST_KEY_B
`, a.URL, keyFile(t, "key-a"), b.URL), 4)
	assert.Equal(t, []string{"alpha", "beta"}, ts.Names())

	for _, tc := range []struct {
		account               string
		fake                  *fakeapi.Server
		active, withoutExpiry float64
	}{
		{"alpha", a, 30, 5},
		{"beta", b, 7, 2},
	} {
		t.Run(tc.account, func(t *testing.T) {
			mfs := ts.metrics(t, tc.account, 5)
			assert.Equal(t, 1.0, gauge(t, mfs, "apivideo_up"))
			assert.Equal(t, tc.active, gauge(t, mfs, "apivideo_upload_tokens_active"))
			assert.Equal(t, tc.withoutExpiry, gauge(t, mfs, "apivideo_upload_tokens_without_expiry"))
			assert.Equal(t, 500.0, gauge(t, mfs, "apivideo_ratelimit_limit"))
			// The cap of 10 series: the tokens without expiry first, then
			// the expiring ones.
			standing := min(10, tc.withoutExpiry)
			assert.Len(t, mfs["apivideo_upload_token_without_expiry_created_timestamp_seconds"].GetMetric(), int(standing))
			assert.Len(t, mfs["apivideo_upload_token_expires_in_seconds"].GetMetric(), int(min(10-standing, tc.active-tc.withoutExpiry)))
			// The login and one page, counted by this account's client alone.
			assert.Equal(t, 2.0, requests(t, mfs)["200"])
			for name, mf := range mfs {
				for _, m := range mf.GetMetric() {
					for _, l := range m.GetLabel() {
						assert.NotEqual(t, "account", l.GetName(), "%s has an account label", name)
					}
				}
			}
			st := tc.fake.Stats()
			assert.Equal(t, 1, st.Logins, "one login with the account's own key")
			assert.Equal(t, 0, st.Rejected)
		})
	}

	// The request metrics are the probe's alone: the Set gives /metrics
	// nothing to serve, so that a selector matching both the probe job and
	// the /metrics job counts each account once.
	families, err := ts.reg.Gather()
	require.NoError(t, err)
	var names []string
	for _, mf := range families {
		names = append(names, mf.GetName())
	}
	assert.ElementsMatch(t, []string{"apivideo_exporter_config_last_reload_successful", "apivideo_exporter_config_last_reload_success_timestamp_seconds"}, names,
		"the exporter's registry gets the reload metrics and nothing of the accounts")
}

func TestProbeBadRequests(t *testing.T) {
	t.Setenv("TEST_KEY", "k")
	ts := newTestSet(t, "accounts:\n  alpha:\n    url: http://127.0.0.1:1\n    api_key_env: TEST_KEY\n", 4)
	for _, tc := range []struct {
		query, want string
	}{
		{"", "the account parameter is missing"},
		{"gamma", `unknown account "gamma"`},
		{"ALPHA", `unknown account "ALPHA"`},
	} {
		code, body := ts.probe(t, tc.query, 0)
		assert.Equal(t, http.StatusBadRequest, code, tc.query)
		assert.Contains(t, body, tc.want)
	}
}

// One account's api.video hangs and another's rejects the key: each gives
// apivideo_up 0 within its scrape timeout, and the healthy account's probe
// neither waits for them nor changes.
func TestOneAccountDown(t *testing.T) {
	healthy := fakeapi.NewServer(fakeapi.Options{APIKey: "key-h", Tokens: 12, Seed: 3})
	t.Cleanup(healthy.Close)
	hanging := fakeapi.NewServer(fakeapi.Options{APIKey: "key-s", Tokens: 12, Seed: 4})
	hanging.SetLatency(time.Minute)
	t.Cleanup(hanging.Close)
	rejecting := fakeapi.NewServer(fakeapi.Options{APIKey: "other", Tokens: 12, Seed: 5})
	t.Cleanup(rejecting.Close)
	ts := newTestSet(t, fmt.Sprintf(`accounts:
  healthy:
    url: %s
    api_key_file: %s
  hanging:
    url: %s
    api_key_file: %s
  rejecting:
    url: %s
    api_key_file: %s
`, healthy.URL, keyFile(t, "key-h"), hanging.URL, keyFile(t, "key-s"), rejecting.URL, keyFile(t, "key-r")), 4)

	// Probes of the hanging account keep its api.video busy meanwhile.
	var wg sync.WaitGroup
	hangingDone := make(chan time.Duration, 3)
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			mfs := ts.metrics(t, "hanging", 1.5)
			hangingDone <- time.Since(start)
			assert.Equal(t, 0.0, gauge(t, mfs, "apivideo_up"))
			assert.NotContains(t, mfs, "apivideo_upload_tokens_active", "no counts from a failed scrape")
		}()
	}
	require.Eventually(t, func() bool { return hanging.Stats().Received > 0 }, 10*time.Second, time.Millisecond,
		"the hanging account's api.video has the probes' request")

	mfs := ts.metrics(t, "rejecting", 1.5)
	assert.Equal(t, 0.0, gauge(t, mfs, "apivideo_up"))
	assert.NotContains(t, mfs, "apivideo_upload_tokens_active")
	assert.Contains(t, ts.logs.String(), "the API key was rejected", "a rejected key fails as such, not at the deadline")

	mfs = ts.metrics(t, "healthy", 1.5)
	assert.Equal(t, 1.0, gauge(t, mfs, "apivideo_up"), "the healthy account does not wait for the hanging one")
	assert.Equal(t, 12.0, gauge(t, mfs, "apivideo_upload_tokens_active"))

	wg.Wait()
	close(hangingDone)
	for d := range hangingDone {
		assert.Less(t, d, 30*time.Second, "the hanging account (a minute a request) answers within its 1.5 s scrape timeout, not its latency")
	}
	assert.Contains(t, ts.logs.String(), `account=rejecting`)
	assert.Contains(t, ts.logs.String(), `the API key was rejected`)
}

// With one slot, a probe of a second account waits for the first account's
// read, and gives up in time.
func TestProbeSlots(t *testing.T) {
	slow := fakeapi.NewServer(fakeapi.Options{Tokens: 3, Seed: 6})
	slow.SetLatency(3 * time.Second)
	t.Cleanup(slow.Close)
	fast := fakeapi.NewServer(fakeapi.Options{Tokens: 3, Seed: 7})
	t.Cleanup(fast.Close)
	t.Setenv("TEST_KEY", fakeapi.DefaultAPIKey)
	file := fmt.Sprintf("accounts:\n  slow:\n    url: %s\n    api_key_env: TEST_KEY\n  fast:\n    url: %s\n    api_key_env: TEST_KEY\n", slow.URL, fast.URL)
	for _, tc := range []struct {
		slots  int
		fastUp float64
	}{
		{1, 0},
		{2, 1},
	} {
		t.Run(strconv.Itoa(tc.slots), func(t *testing.T) {
			ts := newTestSet(t, file, tc.slots)
			done := make(chan struct{})
			before := slow.Stats().Received
			go func() {
				defer close(done)
				ts.probe(t, "slow", 2)
			}()
			// The slow account's read holds its slot from here.
			require.Eventually(t, func() bool { return slow.Stats().Received > before }, 10*time.Second, time.Millisecond)
			mfs := ts.metrics(t, "fast", 0.5)
			assert.Equal(t, tc.fastUp, gauge(t, mfs, "apivideo_up"))
			<-done
			if tc.fastUp == 0 {
				assert.Contains(t, ts.logs.String(), "no probe slot came free in time")
			}
		})
	}
}

func TestReload(t *testing.T) {
	fakes := map[string]*fakeapi.Server{}
	for i, name := range []string{"kept", "changed", "removed", "added"} {
		fakes[name] = fakeapi.NewServer(fakeapi.Options{APIKey: "key-" + name, Tokens: 10 + i, Seed: uint64(i)})
		t.Cleanup(fakes[name].Close)
	}
	keys := map[string]string{}
	for name := range fakes {
		keys[name] = keyFile(t, "key-"+name)
	}
	account := func(name, extra string) string {
		return fmt.Sprintf("  %s:\n    url: %s\n    api_key_file: %s\n    cache_ttl: 1h\n%s", name, fakes[name].URL, keys[name], extra)
	}
	ts := newTestSet(t, "accounts:\n"+account("kept", "")+account("changed", "")+account("removed", ""), 4)
	assert.Equal(t, 1.0, testutil.ToFloat64(ts.reloadOK))
	firstLoad := testutil.ToFloat64(ts.reloadOKTime)
	assert.InDelta(t, float64(time.Now().Unix()), firstLoad, 5)
	for _, name := range []string{"kept", "changed", "removed"} {
		assert.Equal(t, 1.0, gauge(t, ts.metrics(t, name, 0), "apivideo_up"), name)
	}
	kept, _ := ts.Get("kept")

	t.Run("add, remove, change", func(t *testing.T) {
		ts.write(t, "accounts:\n"+account("kept", "")+account("changed", "    concurrency: 2\n")+account("added", ""))
		resp, err := http.Post(ts.srv.URL+"/-/reload", "", nil)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
		assert.Equal(t, []string{"added", "changed", "kept"}, ts.Names())

		// Unchanged: the same client, its login and its cache.
		again, _ := ts.Get("kept")
		assert.Same(t, kept, again)
		mfs := ts.metrics(t, "kept", 0)
		assert.Equal(t, 1.0, gauge(t, mfs, "apivideo_up"))
		assert.Equal(t, 1, fakes["kept"].Stats().Logins)
		assert.Equal(t, 1, fakes["kept"].Stats().ListRequests, "served from the kept cache")

		// Changed: a fresh client logs in again, with fresh counters.
		mfs = ts.metrics(t, "changed", 0)
		assert.Equal(t, 1.0, gauge(t, mfs, "apivideo_up"))
		assert.Equal(t, 2, fakes["changed"].Stats().Logins)
		assert.Equal(t, 2.0, requests(t, mfs)["200"])
		changed, _ := ts.Get("changed")
		assert.Equal(t, 2, changed.Concurrency)

		// Removed: no probe, no request metrics.
		code, text := ts.probe(t, "removed", 0)
		assert.Equal(t, http.StatusBadRequest, code)
		assert.Contains(t, text, `unknown account "removed"`)

		// Added.
		mfs = ts.metrics(t, "added", 0)
		assert.Equal(t, 1.0, gauge(t, mfs, "apivideo_up"))
		assert.Equal(t, 13.0, gauge(t, mfs, "apivideo_upload_tokens_active"))

		assert.Equal(t, 1.0, testutil.ToFloat64(ts.reloadOK))
		assert.Contains(t, ts.logs.String(), `added=added changed=changed removed=removed unchanged=kept`)
	})

	t.Run("broken file", func(t *testing.T) {
		before := testutil.ToFloat64(ts.reloadOKTime)
		for _, broken := range []struct{ file, why string }{
			{"accounts:\n" + account("kept", "    listing: sometimes\n"), `listing must be one of auto, full, incremental, got \"sometimes\"`},
			{"accounts:\n" + account("kept", "    listen: full\n"), "field listen not found"},
			{"accounts:\n  kept:\n    api_key_file: /nonexistent/key\n", "reading API key file"},
			{"accounts: [", "yaml:"},
			{"accounts:\n  kept:\n    api_key_file: " + secretLookingKey + "\n", "looks like a key rather than a path"},
			{"accounts:\n  kept:\n    api_key_file: /dev/zero\n", "not a regular file"},
			{"accounts:\n  kept:\n    api_key_file: " + fifo(t) + "\n", "not a regular file"},
			{"# " + strings.Repeat("x", 1<<20) + "\naccounts: {}\n", "file too large"},
		} {
			ts.write(t, broken.file)
			ts.logs.Reset()
			resp, err := http.Post(ts.srv.URL+"/-/reload", "", nil)
			require.NoError(t, err)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			assert.Equal(t, http.StatusInternalServerError, resp.StatusCode)
			// The reason is logged, never answered: it may quote the file.
			assert.Equal(t, "failed to reload the accounts file: the reason is in the exporter's log\n", string(body))
			assert.Contains(t, ts.logs.String(), broken.why)
			assert.NotContains(t, ts.logs.String(), secretLookingKey)
			assert.Contains(t, ts.logs.String(), `msg="loading the accounts file failed"`)
			assert.Contains(t, ts.logs.String(), `accounts_in_use=added,changed,kept`)
			assert.Equal(t, 0.0, testutil.ToFloat64(ts.reloadOK))
			assert.Equal(t, before, testutil.ToFloat64(ts.reloadOKTime))
			// The last good accounts still serve.
			assert.Equal(t, []string{"added", "changed", "kept"}, ts.Names())
			assert.Equal(t, 1.0, gauge(t, ts.metrics(t, "added", 0), "apivideo_up"))
		}

		resp, err := http.Get(ts.srv.URL + "/-/reload")
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)

		// One reload at a time: another is refused at once, not queued.
		ts.reloadMu.Lock()
		resp, err = http.Post(ts.srv.URL+"/-/reload", "", nil)
		ts.reloadMu.Unlock()
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)

		ts.write(t, "accounts:\n"+account("kept", ""))
		require.NoError(t, ts.Reload(context.Background()))
		assert.Equal(t, 1.0, testutil.ToFloat64(ts.reloadOK))
		assert.Equal(t, []string{"kept"}, ts.Names())
	})
}

// An account listed incrementally keeps its own state between probes and
// says so in apivideo_listing_mode; an account left to auto is listed in
// full while it is small. Turning an account incremental is a change: it
// gets a fresh client.
func TestIncrementalAccount(t *testing.T) {
	inc := fakeapi.NewServer(fakeapi.Options{APIKey: "key-inc", Tokens: 40, WithoutExpiry: 6, Seed: 8})
	t.Cleanup(inc.Close)
	full := fakeapi.NewServer(fakeapi.Options{APIKey: "key-full", Tokens: 9, Seed: 9})
	t.Cleanup(full.Close)
	file := func(fullListing string) string {
		return fmt.Sprintf("accounts:\n  inc:\n    url: %s\n    api_key_file: %s\n    listing: incremental\n  full:\n    url: %s\n    api_key_file: %s\n%s",
			inc.URL, keyFile(t, "key-inc"), full.URL, keyFile(t, "key-full"), fullListing)
	}
	ts := newTestSet(t, file(""), 4)

	for range 2 {
		mfs := ts.metrics(t, "inc", 5)
		assert.Equal(t, 1.0, gauge(t, mfs, "apivideo_up"))
		assert.Equal(t, 40.0, gauge(t, mfs, "apivideo_upload_tokens_active"))
		assert.Equal(t, 6.0, gauge(t, mfs, "apivideo_upload_tokens_without_expiry"))
		assert.Equal(t, 1.0, gauge(t, mfs, "apivideo_sync_progress_ratio"))
		assert.Equal(t, map[string]float64{"full": 0, "incremental": 1}, listingModes(t, mfs))
	}
	mfs := ts.metrics(t, "full", 5)
	assert.Equal(t, 9.0, gauge(t, mfs, "apivideo_upload_tokens_active"))
	assert.Equal(t, map[string]float64{"full": 1, "incremental": 0}, listingModes(t, mfs))

	ts.write(t, file("    listing: incremental\n"))
	require.NoError(t, ts.Reload(context.Background()))
	mfs = ts.metrics(t, "full", 5)
	assert.Equal(t, 9.0, gauge(t, mfs, "apivideo_upload_tokens_active"))
	assert.Equal(t, map[string]float64{"full": 0, "incremental": 1}, listingModes(t, mfs))
	assert.Equal(t, 2, full.Stats().Logins, "a fresh client for the changed account")
	assert.Equal(t, 1, inc.Stats().Logins, "the unchanged account kept its login")
}

// TestEnvKeyIsCleaned gives an account its key through api_key_env with a
// UTF-8 byte-order mark and a newline, as a key pasted from a file may
// carry: both are stripped, as from a key file.
func TestEnvKeyIsCleaned(t *testing.T) {
	s := fakeapi.NewServer(fakeapi.Options{APIKey: "key-bom", Tokens: 4})
	t.Cleanup(s.Close)
	t.Setenv("TEST_KEY_BOM", "\uFEFFkey-bom\n")
	ts := newTestSet(t, fmt.Sprintf("accounts:\n  bom:\n    url: %s\n    api_key_env: TEST_KEY_BOM\n", s.URL), 4)
	mfs := ts.metrics(t, "bom", 0)
	assert.Equal(t, 1.0, gauge(t, mfs, "apivideo_up"))
	assert.Equal(t, 4.0, gauge(t, mfs, "apivideo_upload_tokens_active"))
}

// secretLookingKey is an API key put where a path belongs.
const secretLookingKey = "x8Hk2LmQ9pZr4TvW7yBn3CdF6gJs1aUe"

// fifo returns a named pipe that nothing writes to: reading it would block.
func fifo(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "key.fifo")
	require.NoError(t, syscall.Mkfifo(p, 0o600))
	return p
}
