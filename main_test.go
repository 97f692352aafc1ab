package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/apivideo-exporter/apivideo_exporter/internal/fakeapi"
	"github.com/apivideo-exporter/apivideo_exporter/internal/testsupport"
)

func TestMain(m *testing.M) { os.Exit(testsupport.Main(m)) }

// runExporter runs the exporter to its exit, expecting it not to serve.
func runExporter(t *testing.T, env []string, args ...string) (exitCode int, stderr string) {
	t.Helper()
	cmd := exec.Command(testsupport.ExporterBinary(t), append(args, "--web.listen-address=127.0.0.1:0")...)
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stderr = &out
	err := cmd.Run()
	var exitErr *exec.ExitError
	require.ErrorAs(t, err, &exitErr, "exits non-zero: %s", out.String())
	return exitErr.ExitCode(), out.String()
}

func get(t *testing.T, url string, header http.Header) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, string(body)
}

func parseMetrics(t *testing.T, text string) map[string]*model.Sample {
	t.Helper()
	families := metricFamilies(t, text)
	out := map[string]*model.Sample{}
	for name, mf := range families {
		if len(mf.GetMetric()) == 1 && mf.GetMetric()[0].GetGauge() != nil {
			out[name] = &model.Sample{Value: model.SampleValue(mf.GetMetric()[0].GetGauge().GetValue())}
		}
	}
	return out
}

func metricFamilies(t *testing.T, text string) map[string]*dto.MetricFamily {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(text))
	require.NoError(t, err)
	return families
}

func countSeries(text, name string) int {
	n := 0
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, name+"{") || strings.HasPrefix(line, name+" ") {
			n++
		}
	}
	return n
}

func keyEnv(key string) []string { return []string{"APIVIDEO_API_KEY=" + key} }

func TestMissingKeyExitsAtOnce(t *testing.T) {
	testsupport.ExporterBinary(t) // built before the clock starts
	start := time.Now()
	code, stderr := runExporter(t, []string{})
	assert.Equal(t, 1, code)
	assert.Less(t, time.Since(start), 30*time.Second, "exits, does not serve")
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	require.Len(t, lines, 1, "one line: %s", stderr)
	assert.Contains(t, lines[0], "APIVIDEO_API_KEY")
	assert.Contains(t, lines[0], "--apivideo.api-key-file")
}

// TestBadFlagsExitBeforeListening runs the binary for a few bad values;
// TestParseFlags and TestValidate cover every flag in process.
func TestBadFlagsExitBeforeListening(t *testing.T) {
	for _, tc := range []struct {
		flag     string
		wantCode int
		want     string
	}{
		{"--apivideo.concurrency=abc", 2, `--apivideo.concurrency (or APIVIDEO_CONCURRENCY): invalid value "abc"`},
		{"--log.level=verbose", 2, `--log.level: invalid value "verbose"`},
		{"--apivideo.concurrency=33", 2, "--apivideo.concurrency must be between 1 and 32, got 33"},
		{"--apivideo.url=http://host?x=1", 2, "--apivideo.url must be an http or https URL"},
		{"--web.config.file=/nonexistent/web.yml", 1, "--web.config.file=/nonexistent/web.yml: open /nonexistent/web.yml: no such file or directory"},
	} {
		t.Run(tc.flag, func(t *testing.T) {
			code, stderr := runExporter(t, keyEnv("k"), tc.flag)
			assert.Equal(t, tc.wantCode, code)
			assert.Contains(t, stderr, tc.want)
			assert.NotContains(t, stderr, "Listening on")
		})
	}
}

func TestVersionWithoutLdflags(t *testing.T) {
	out, err := exec.Command(testsupport.ExporterBinary(t), "--version").CombinedOutput()
	require.NoError(t, err, "%s", out)
	first := strings.SplitN(string(out), "\n", 2)[0]
	assert.Regexp(t, `^apivideo_exporter, version \S+ \(branch: \S+, revision: \S+\)$`, first)
	release, err := os.ReadFile("VERSION")
	require.NoError(t, err)
	assert.Contains(t, first, "version "+strings.TrimSpace(string(release))+" ", "a plain go build reports the VERSION file")
}

func TestKeyFileMissing(t *testing.T) {
	code, stderr := runExporter(t, []string{}, "--apivideo.api-key-file=/nonexistent/key")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "reading API key file")
}

func TestBasicAuthFromWebConfig(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	require.NoError(t, err)
	config := filepath.Join(t.TempDir(), "web.yml")
	require.NoError(t, os.WriteFile(config, []byte("basic_auth_users:\n  prometheus: "+string(hash)+"\n"), 0o600))
	p := testsupport.StartExporter(t, nil, "--demo", "--web.config.file="+config)

	for _, path := range []string{"/metrics", "/", "/-/healthy"} {
		code, _, _ := get(t, p.URL+path, nil)
		assert.Equal(t, http.StatusUnauthorized, code, "%s without credentials", path)
	}
	req, _ := http.NewRequest(http.MethodGet, p.URL+"/metrics", nil)
	req.SetBasicAuth("prometheus", "s3cret")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestDemoAndEndpoints(t *testing.T) {
	p := testsupport.StartExporter(t, nil, "--demo")
	code, _, body := get(t, p.URL+"/metrics", nil)
	require.Equal(t, http.StatusOK, code)
	m := parseMetrics(t, body)
	assert.Equal(t, 1.0, float64(m["apivideo_up"].Value))
	assert.GreaterOrEqual(t, float64(m["apivideo_upload_tokens_active"].Value), 300.0)
	assert.Positive(t, float64(m["apivideo_upload_tokens_without_expiry"].Value))
	release, err := os.ReadFile("VERSION")
	require.NoError(t, err)
	assert.Regexp(t, `apivideo_exporter_build_info\{[^}]*version="`+regexp.QuoteMeta(strings.TrimSpace(string(release)))+`"`, body, "build_info has the VERSION file's version")
	for _, want := range []string{"apivideo_exporter_build_info{", "go_goroutines ", "process_resident_memory_bytes ",
		`apivideo_api_requests_total{code="200"}`, "apivideo_api_request_duration_seconds_bucket"} {
		assert.True(t, strings.Contains(body, want), "/metrics lacks %s", want)
	}

	for path, want := range map[string]string{"/-/healthy": "Healthy", "/-/ready": "Ready", "/": "Metrics"} {
		code, _, body := get(t, p.URL+path, nil)
		assert.Equal(t, http.StatusOK, code, path)
		assert.Contains(t, body, want, path)
	}
	// The landing page shows the version and links only to what is served.
	_, _, landing := get(t, p.URL+"/", nil)
	assert.NotContains(t, landing, "version=,", "a version even without -ldflags")
	assert.NotContains(t, landing, "debug/pprof", "no links to handlers that are not mounted")
	for _, link := range regexp.MustCompile(`href="([^"]+)"`).FindAllStringSubmatch(landing, -1) {
		if strings.HasPrefix(link[1], "/") || !strings.Contains(link[1], ":") {
			code, _, _ := get(t, p.URL+"/"+strings.TrimPrefix(link[1], "/"), nil)
			assert.Equal(t, http.StatusOK, code, "landing page link %s", link[1])
		}
	}

	_, header, body := get(t, p.URL+"/metrics", http.Header{"Accept": {"application/openmetrics-text;version=1.0.0"}})
	assert.Contains(t, header.Get("Content-Type"), "application/openmetrics-text")
	assert.True(t, strings.HasSuffix(body, "# EOF\n"))

	// SIGTERM shuts down cleanly.
	require.NoError(t, p.Stop(), "exit status 0 on SIGTERM")
	log := p.Log()
	assert.Contains(t, log, "shutting down")
	// Every line, the toolkit's "Listening on" included, starts the same way.
	lines := strings.Split(strings.TrimSpace(log), "\n")
	assert.GreaterOrEqual(t, len(lines), 4)
	for _, line := range lines {
		assert.Regexp(t, `^level=\w+ ts=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z caller=\S+:\d+ `, line)
		assert.NotContains(t, line, " time=")
	}
	assert.Contains(t, log, `msg="Listening on"`)
}

// TestAcceptance is the core issue's acceptance case: 257 tokens of which
// 43 never expire, pages of at most 100, dates in all three formats.
func TestAcceptance(t *testing.T) {
	s := fakeapi.NewServer(fakeapi.Options{Tokens: 257, WithoutExpiry: 43, Seed: 21})
	defer s.Close()
	// At debug level, so that every log line is checked for secrets.
	p := testsupport.StartExporter(t, keyEnv(s.APIKey()), "--apivideo.url="+s.URL, "--log.level=debug")
	code, _, body := get(t, p.URL+"/metrics", nil)
	at := time.Now()
	require.Equal(t, http.StatusOK, code)
	m := parseMetrics(t, body)
	assert.Equal(t, 1.0, float64(m["apivideo_up"].Value))
	assert.Equal(t, 257.0, float64(m["apivideo_upload_tokens_active"].Value))
	assert.Equal(t, 43.0, float64(m["apivideo_upload_tokens_without_expiry"].Value))
	assert.Equal(t, 214, countSeries(body, "apivideo_upload_token_expires_in_seconds"))
	assert.Equal(t, 3+1, s.Stats().ListRequests, "pages of 100, and a re-read where pages 2 and 3 meet page 1")

	families := metricFamilies(t, body)
	truth := s.Tokens()
	for _, series := range families["apivideo_upload_token_expires_in_seconds"].GetMetric() {
		label := strings.TrimSuffix(series.GetLabel()[0].GetValue(), "...")
		var match []fakeapi.TokenInfo
		for _, tk := range truth {
			if strings.HasPrefix(tk.Token, label) {
				match = append(match, tk)
			}
		}
		require.Len(t, match, 1)
		assert.InDelta(t, match[0].ExpiresAt().Sub(at).Seconds(), series.GetGauge().GetValue(), 2)
	}
	require.NoError(t, p.Stop())
	log := p.Log()
	for _, tk := range truth {
		require.NotContains(t, body, tk.Token, "a full token in /metrics")
		require.NotContains(t, log, tk.Token, "a full token in the log")
	}
	require.NotContains(t, log, s.APIKey(), "the API key in the log")

	problems, err := promlint.New(strings.NewReader(body)).Lint()
	require.NoError(t, err)
	assert.Empty(t, problems, "promlint")
}

func TestUnreachableAPI(t *testing.T) {
	refusing, release, err := testsupport.RefusingAddress()
	require.NoError(t, err)
	defer release()
	p := testsupport.StartExporter(t, keyEnv("some-key"), "--apivideo.url=http://"+refusing, "--apivideo.timeout=2s")
	start := time.Now()
	code, _, body := get(t, p.URL+"/metrics", nil)
	assert.Less(t, time.Since(start), 10*time.Second, "answers, without waiting on the refused address")
	require.Equal(t, http.StatusOK, code)
	m := parseMetrics(t, body)
	assert.Equal(t, 0.0, float64(m["apivideo_up"].Value))
	for _, name := range []string{"apivideo_upload_tokens_active", "apivideo_upload_tokens_without_expiry",
		"apivideo_upload_token_expires_in_seconds", "apivideo_upload_tokens_expiry_seconds_count"} {
		assert.Equal(t, 0, countSeries(body, name), "%s published on a failed scrape", name)
	}
	// The log is complete only once the process has exited: lines written
	// before the response may still be in the pipe when it arrives.
	require.NoError(t, p.Stop())
	var failures []string
	for _, line := range strings.Split(p.Log(), "\n") {
		if strings.Contains(line, "scrape failed") {
			failures = append(failures, line)
		}
	}
	require.Len(t, failures, 1, "one log line says why")
	assert.Contains(t, failures[0], "connection refused")
	assert.NotContains(t, p.Log(), "some-key")
}

func TestScrapeTimeoutHeaderAgainstHangingAPI(t *testing.T) {
	s := fakeapi.NewServer(fakeapi.Options{Tokens: 500})
	defer s.Close()
	p := testsupport.StartExporter(t, keyEnv(s.APIKey()), "--apivideo.url="+s.URL)
	for range 10 {
		s.FailPage(0, fakeapi.Fault{Kind: fakeapi.FaultHang})
	}
	start := time.Now()
	code, _, body := get(t, p.URL+"/metrics", http.Header{"X-Prometheus-Scrape-Timeout-Seconds": {"2"}})
	elapsed := time.Since(start)
	require.Equal(t, http.StatusOK, code)
	// The header's 2 s less the 0.5 s offset, not --apivideo.timeout's 10 s.
	assert.GreaterOrEqual(t, elapsed, 1400*time.Millisecond)
	assert.Less(t, elapsed, 8*time.Second, "the header's timeout, not --apivideo.timeout's 10 s")
	assert.Equal(t, 0.0, float64(parseMetrics(t, body)["apivideo_up"].Value))
}

func TestConcurrentHTTPScrapesShareOneRound(t *testing.T) {
	s := fakeapi.NewServer(fakeapi.Options{Tokens: 257, WithoutExpiry: 43, Latency: 500 * time.Millisecond})
	defer s.Close()
	// 50 scrapes at once: past the default --web.max-requests of 40.
	p := testsupport.StartExporter(t, keyEnv(s.APIKey()), "--apivideo.url="+s.URL, "--web.max-requests=50")
	var wg sync.WaitGroup
	ups := make(chan float64, 50)
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, p.URL+"/metrics", nil)
			resp, err := http.DefaultClient.Do(req)
			if !assert.NoError(t, err) {
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			ups <- float64(parseMetrics(t, string(b))["apivideo_up"].Value)
		}()
	}
	wg.Wait()
	close(ups)
	for up := range ups {
		assert.Equal(t, 1.0, up)
	}
	st := s.Stats()
	assert.Equal(t, 3+1, st.ListRequests, "one listing (three pages, and a re-read where pages 2 and 3 meet page 1) for 50 scrapes")
	assert.Equal(t, 1, st.Logins)
}

// TestSIGHUPWithoutAccountsFile sends SIGHUP to an exporter that has no
// accounts file: it logs that there is nothing to reload and keeps serving,
// rather than taking the signal's default action and exiting.
func TestSIGHUPWithoutAccountsFile(t *testing.T) {
	s := fakeapi.NewServer(fakeapi.Options{Tokens: 3})
	defer s.Close()
	p := testsupport.StartExporter(t, keyEnv(s.APIKey()), "--apivideo.url="+s.URL)
	require.NoError(t, p.Cmd.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool {
		return strings.Contains(p.Log(), "nothing to reload")
	}, 5*time.Second, 20*time.Millisecond, "the SIGHUP is logged")
	code, _, body := get(t, p.URL+"/metrics", nil)
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, 3.0, float64(parseMetrics(t, body)["apivideo_upload_tokens_active"].Value))
	require.NoError(t, p.Stop(), "the exporter exits cleanly on SIGTERM after the SIGHUP")
}

// TestDeprecatedMetricNames runs the binary with and without
// --collector.deprecated-metric-names: the renamed series appear under
// their old names only with it, and the exposition passes promtool's lint
// either way.
func TestDeprecatedMetricNames(t *testing.T) {
	promtool := testsupport.PrometheusTool(t, "promtool")
	s := fakeapi.NewServer(fakeapi.Options{Tokens: 30, WithoutExpiry: 3, Seed: 5})
	defer s.Close()
	for _, tc := range []struct {
		args    []string
		present []string
		absent  []string
	}{
		{nil, []string{"apivideo_upload_tokens_expiry_seconds"}, []string{"apivideo_upload_tokens_expires_in_seconds"}},
		{[]string{"--collector.deprecated-metric-names"}, []string{"apivideo_upload_tokens_expiry_seconds", "apivideo_upload_tokens_expires_in_seconds"}, nil},
	} {
		t.Run(strings.Join(append([]string{"flags"}, tc.args...), " "), func(t *testing.T) {
			p := testsupport.StartExporter(t, keyEnv(s.APIKey()), append([]string{"--apivideo.url=" + s.URL}, tc.args...)...)
			code, _, body := get(t, p.URL+"/metrics", nil)
			require.Equal(t, http.StatusOK, code)
			m := metricFamilies(t, body)
			for _, name := range tc.present {
				require.Contains(t, m, name)
				assert.EqualValues(t, 27, m[name].GetMetric()[0].GetHistogram().GetSampleCount(), "%s counts every expiring token", name)
			}
			for _, name := range tc.absent {
				assert.NotContains(t, m, name)
			}
			check := exec.Command(promtool, "check", "metrics")
			check.Stdin = strings.NewReader(body)
			out, err := check.CombinedOutput()
			assert.NoError(t, err, "promtool check metrics: %s", out)
			require.NoError(t, p.Stop())
			assert.Equal(t, len(tc.args) > 0, strings.Contains(p.Log(), "deprecated-metric-names"), "a warning names the flag when it is set")
		})
	}
}
