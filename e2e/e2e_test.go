//go:build prometheus

package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apivideo-exporter/apivideo_exporter/dashboards"
	"github.com/apivideo-exporter/apivideo_exporter/internal/fakeapi"
	"github.com/apivideo-exporter/apivideo_exporter/internal/testsupport"
)

const (
	job          = "apivideo"
	tokens       = 257
	noExpiry     = 43
	rateInterval = "15s"
)

// mintTTLs are the ttls, in seconds, of the tokens the account mints while
// Prometheus scrapes the exporter, one every mintEvery (0: no expiry). None
// expires during the test, nor does any of the fake's initial tokens (ten
// minutes at least), so that the counts stay exact.
var mintTTLs = []int{3600, 0, 600, 3 * 86400, 0, 900, 7 * 86400, 1800}

const mintEvery = 300 * time.Millisecond

func TestMain(m *testing.M) { os.Exit(testsupport.Main(m)) }

// startProcess starts cmd and kills it on cleanup, logging its output if
// the test failed.
func startProcess(t *testing.T, name string, cmd *exec.Cmd) {
	t.Helper()
	out := &testsupport.SyncBuffer{}
	cmd.Stdout = out
	cmd.Stderr = out
	require.NoError(t, cmd.Start(), "starting %s", name)
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("%s output:\n%s", name, out.String())
		}
	})
}

// waitReady waits until url answers 200.
func waitReady(t *testing.T, url string, within time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	require.NoError(t, testsupport.WaitReady(ctx, http.DefaultClient, url))
}

// startPrometheus runs Prometheus on configFile, with its storage under
// dir, and returns its URL once it is ready.
func startPrometheus(t *testing.T, prometheus, dir, configFile string) string {
	t.Helper()
	promAddr, err := testsupport.FreeAddress()
	require.NoError(t, err)
	startProcess(t, "prometheus", exec.Command(prometheus,
		"--config.file="+configFile,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+promAddr,
		"--log.level=warn",
	))
	promURL := "http://" + promAddr
	waitReady(t, promURL+"/-/ready", 20*time.Second)
	return promURL
}

// awaitQuery runs expr every 250ms until done accepts its vector, and
// fails with failure and the last answer if that takes longer than within.
func awaitQuery(t *testing.T, promURL, expr string, within time.Duration, done func([]sample) bool, failure string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		v, err := query(t, promURL, expr)
		if err == nil && done(v) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v %v", failure, v, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// sample is one element of an instant vector from Prometheus' HTTP API.
type sample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

func (s sample) float(t *testing.T) float64 {
	t.Helper()
	str, ok := s.Value[1].(string)
	require.True(t, ok)
	f, err := strconv.ParseFloat(str, 64)
	require.NoError(t, err)
	return f
}

// query runs an instant query and returns the vector, or the API error.
func query(t *testing.T, promURL, expr string) ([]sample, error) {
	t.Helper()
	resp, err := http.PostForm(promURL+"/api/v1/query", url.Values{"query": {expr}})
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var r struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
		Data      struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal(body, &r), string(body))
	if r.Status != "success" {
		return nil, fmt.Errorf("%s: %s", r.ErrorType, r.Error)
	}
	switch r.Data.ResultType {
	case "vector":
		var v []sample
		require.NoError(t, json.Unmarshal(r.Data.Result, &v))
		return v, nil
	case "scalar":
		var s [2]any
		require.NoError(t, json.Unmarshal(r.Data.Result, &s))
		return []sample{{Value: s}}, nil
	default:
		return nil, fmt.Errorf("unexpected result type %s", r.Data.ResultType)
	}
}

func mustQuery(t *testing.T, promURL, expr string) []sample {
	t.Helper()
	v, err := query(t, promURL, expr)
	require.NoError(t, err, expr)
	return v
}

func runPromtool(t *testing.T, promtool string, stdin []byte, args ...string) {
	t.Helper()
	cmd := exec.Command(promtool, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "promtool %s:\n%s", strings.Join(args, " "), out)
	t.Logf("promtool %s: %s", strings.Join(args, " "), bytes.TrimSpace(out))
}

func TestPrometheus(t *testing.T) {
	prometheus := testsupport.PrometheusTool(t, "prometheus")
	promtool := testsupport.PrometheusTool(t, "promtool")

	// Static checks of the files Prometheus loads.
	root, err := testsupport.ModuleRoot()
	require.NoError(t, err)
	inRoot := func(path string) string { return filepath.Join(root, path) }
	runPromtool(t, promtool, nil, "check", "rules", inRoot(dashboards.RulesFile))
	runPromtool(t, promtool, nil, "test", "rules", inRoot(dashboards.RulesTestFile))
	runPromtool(t, promtool, nil, "check", "config", inRoot("deploy/prometheus/prometheus.yml"))

	dir := t.TempDir()

	// The exporter, against the api.video fake.
	fake := fakeapi.NewServer(fakeapi.Options{Tokens: tokens, WithoutExpiry: noExpiry, Seed: 1})
	t.Cleanup(fake.Close)
	exporter := testsupport.StartExporter(t, []string{"APIVIDEO_API_KEY=" + fake.APIKey()}, "--apivideo.url="+fake.URL, "--log.level=debug")
	exporterAddr := strings.TrimPrefix(exporter.URL, "http://")
	exporterURL := exporter.URL
	waitReady(t, exporterURL+"/-/healthy", time.Second)

	// promtool check metrics on what the exporter serves.
	resp, err := http.Get(exporterURL + "/metrics")
	require.NoError(t, err)
	metrics, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(metrics))
	runPromtool(t, promtool, metrics, "check", "metrics")

	// The real Prometheus, scraping every second and evaluating the rules.
	rules := inRoot(dashboards.RulesFile)
	config := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - %q
scrape_configs:
  - job_name: %q
    static_configs:
      - targets: [%q]
`, rules, job, exporterAddr)
	configFile := filepath.Join(dir, "prometheus.yml")
	require.NoError(t, os.WriteFile(configFile, []byte(config), 0o600))
	runPromtool(t, promtool, nil, "check", "config", configFile)

	promURL := startPrometheus(t, prometheus, dir, configFile)

	// Wait for a few scrapes, enough for rate() over $__rate_interval.
	awaitQuery(t, promURL, fmt.Sprintf(`count_over_time(apivideo_up{job=%q}[1m])`, job), 30*time.Second,
		func(v []sample) bool { return len(v) == 1 && v[0].float(t) >= 6 },
		"Prometheus did not scrape the exporter")

	// The account mints tokens after the exporter's first listing (the
	// request above) and while Prometheus scrapes it, so that the counter
	// of created tokens moves and every query over the new tokens has data.
	mintedStanding := 0
	for _, ttl := range mintTTLs {
		fake.AddTokens(1, ttl)
		if ttl == 0 {
			mintedStanding++
		}
		time.Sleep(mintEvery)
	}
	minted := len(mintTTLs)
	awaitQuery(t, promURL, fmt.Sprintf(`max(apivideo_upload_tokens_created_total{job=%q})`, job), 10*time.Second,
		func(v []sample) bool { return len(v) == 1 && v[0].float(t) == float64(minted) },
		fmt.Sprintf("Prometheus did not see the %d tokens minted", minted))
	truth := fake.Tokens()
	require.Len(t, truth, tokens+minted)
	livingOverADay := 0
	for _, tk := range truth {
		if tk.TTL == 0 || tk.TTL > 86400 {
			livingOverADay++
		}
	}

	// The numbers went through the whole chain.
	v := mustQuery(t, promURL, `apivideo_up`)
	require.Len(t, v, 1)
	assert.Equal(t, 1.0, v[0].float(t))
	assert.Equal(t, exporterAddr, v[0].Metric["instance"])
	assert.Equal(t, job, v[0].Metric["job"])

	t.Run("dashboard", func(t *testing.T) {
		d, err := dashboards.Load()
		require.NoError(t, err)
		values := map[string][]sample{}
		n := 0
		for _, p := range d.AllPanels() {
			for _, tg := range p.Targets {
				n++
				expr := dashboards.Substitute(tg.Expr, job, exporterAddr, rateInterval)
				name := fmt.Sprintf("%s/%s", p.Title, tg.RefID)
				checkExpr(t, promURL, name, expr)
				values[name] = mustQuery(t, promURL, expr)
			}
		}
		require.Greater(t, n, 10)

		// Spot checks of the values behind the main panels.
		one := func(name string) float64 {
			v := values[name]
			require.Len(t, v, 1, name)
			return v[0].float(t)
		}
		assert.Equal(t, 1.0, one("api.video read/A"))
		assert.Equal(t, float64(tokens+minted), one("Active upload tokens/A"))
		assert.Equal(t, float64(noExpiry+mintedStanding), one("Tokens without expiry/A"))
		assert.Equal(t, 1.0, one("Replicas reading api.video/A"))
		assert.Equal(t, 1.0, one("Replicas reading api.video/B"))
		assert.Positive(t, one("Rate-limit headroom/A"))
		assert.LessOrEqual(t, one("Rate-limit headroom/A"), 1.0)
		// The le matchers match whatever exposition format was scraped.
		assert.GreaterOrEqual(t, one("Expiring within 24 hours/A"), one("Expiring within 1 hour/A"))
		closest := values["Tokens closest to expiry/A"]
		assert.Len(t, closest, 25)
		for _, s := range closest {
			assert.Regexp(t, `^to.+\.\.\.$`, s.Metric["token"], "redacted token label")
		}
		// Expiry distribution: one series per bucket, +Inf included.
		assert.Len(t, values["Expiry distribution/A"], 13)
		// Standing credentials and token lifecycle.
		for _, ref := range []string{"A", "B"} {
			standing := values["Standing credentials/"+ref]
			assert.Len(t, standing, noExpiry+mintedStanding, "one row per token without expiry")
			for _, s := range standing {
				assert.Regexp(t, `^to.+\.\.\.$`, s.Metric["token"], "redacted token label")
			}
		}
		// The fake's tokens were created within the minute before it started.
		assert.Greater(t, one("Oldest standing credential/A"), 0.0)
		assert.Less(t, one("Oldest standing credential/A"), 300.0)
		assert.Positive(t, one("Tokens minted a minute/A"), "tokens minted within the rate interval")
		assert.InDelta(t, float64(livingOverADay)/float64(tokens+minted), one("Tokens living over a day/A"), 1e-9)
		assert.Len(t, values["Lifetime (ttl) distribution/A"], 13)
		codes := values["API requests by status code/A"]
		require.NotEmpty(t, codes)
		for _, s := range codes {
			assert.NotEmpty(t, s.Metric["code"])
		}
	})

	t.Run("docs", func(t *testing.T) {
		docs, err := filepath.Glob(inRoot("docs/*.md"))
		require.NoError(t, err)
		files := append([]string{"README.md", "CONTRIBUTING.md"}, relative(t, root, docs)...)
		// Queries at least this many in the files that hold them today, so
		// that a block losing its promql tag, or a file moving, fails here.
		want := map[string]int{"README.md": 9, "docs/dashboards-and-alerts.md": 11}
		total := 0
		for _, name := range files {
			text, err := os.ReadFile(inRoot(name))
			require.NoError(t, err)
			queries := promqlQueries(string(text))
			assert.GreaterOrEqual(t, len(queries), want[name], "queries found in the promql blocks of %s", name)
			total += len(queries)
			for _, q := range queries {
				checkExpr(t, promURL, name, q)
			}
		}
		assert.GreaterOrEqual(t, total, 20, "queries found in the promql blocks of %s", strings.Join(files, ", "))
	})

	t.Run("alert rules", func(t *testing.T) {
		rs, err := dashboards.Rules()
		require.NoError(t, err)
		// Alert conditions that are not met in a healthy run; their
		// selectors are checked to return data instead.
		notFiring := map[string]string{
			"ApivideoScrapeFailing":        "api.video (the fake) is readable: apivideo_up is 1",
			"ApivideoExporterAbsent":       "the exporter is scraped",
			"ApivideoRateLimitHeadroomLow": "one scrape a second reads a few pages of the 500 a minute the fake allows",
			"ApivideoAPIThrottled":         "the fake does not enforce its rate limit: the 429 counter stays at 0",
			"ApivideoActiveTokensJump":     "a fresh Prometheus has no data 30 minutes back",
			"ApivideoStandingTokenTooOld":  "the fake's tokens were created within the minute before it started",
			"ApivideoTokenMintingSpike":    "a fresh Prometheus has no minting rate from before the last 10 minutes to compare with, and a few tokens in seconds are under 5 a minute over 10 minutes",
		}
		// Alerts on series a single-account exporter does not publish;
		// the accounts test (e2e/accounts_test.go) checks their selectors.
		accountsOnly := map[string]string{
			"ApivideoExporterConfigReloadFailed": "no --config.file, so no reload status",
		}
		exprs := map[string]string{}
		for _, r := range rs {
			exprs[r.Alert] = r.Expr
			if _, ok := accountsOnly[r.Alert]; ok {
				assert.Empty(t, mustQuery(t, promURL, r.Expr), r.Alert)
				continue
			}
			if reason, ok := notFiring[r.Alert]; ok {
				v := mustQuery(t, promURL, r.Expr)
				assert.Empty(t, v, "%s should not fire in a healthy run (%s)", r.Alert, reason)
				checkSelectors(t, promURL, r.Alert, r.Expr)
				continue
			}
			checkExpr(t, promURL, r.Alert, r.Expr)
		}
		for name := range notFiring {
			assert.Contains(t, exprs, name)
		}

		// Prometheus loaded the rules and evaluates them: tokens without
		// expiry are pending (for: 15m), nothing else is active.
		deadline := time.Now().Add(10 * time.Second)
		for {
			active := activeAlerts(t, promURL)
			if _, ok := active["ApivideoTokensWithoutExpiry"]; ok || time.Now().After(deadline) {
				assert.Equal(t, map[string]string{"ApivideoTokensWithoutExpiry": "pending"}, active)
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		ruleHealth(t, promURL, len(rs))
	})
}

// promqlQueries returns the PromQL of a Markdown file's promql code
// blocks: one query a line, # lines being comments.
func promqlQueries(markdown string) []string {
	var out []string
	in := false
	for _, line := range strings.Split(markdown, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "```"):
			in = !in && line == "```promql"
		case in && line != "" && !strings.HasPrefix(line, "#"):
			out = append(out, line)
		}
	}
	return out
}

// relative returns paths relative to root, with forward slashes.
func relative(t *testing.T, root string, paths []string) []string {
	t.Helper()
	out := make([]string, len(paths))
	for i, p := range paths {
		rel, err := filepath.Rel(root, p)
		require.NoError(t, err)
		out[i] = filepath.ToSlash(rel)
	}
	return out
}

// checkExpr asserts that expr parses and that it and each of its selectors
// return data.
func checkExpr(t *testing.T, promURL, name, expr string) {
	t.Helper()
	v, err := query(t, promURL, expr)
	if !assert.NoError(t, err, "%s: %s", name, expr) {
		return
	}
	assert.NotEmpty(t, v, "%s returned no data: %s", name, expr)
	checkSelectors(t, promURL, name, expr)
}

func checkSelectors(t *testing.T, promURL, name, expr string) {
	t.Helper()
	sels := dashboards.Selectors(expr)
	assert.NotEmpty(t, sels, "%s: no selector found in %s", name, expr)
	for _, s := range sels {
		v, err := query(t, promURL, s)
		if assert.NoError(t, err, "%s: selector %s", name, s) {
			assert.NotEmpty(t, v, "%s: selector %s matches no series", name, s)
		}
	}
}

// activeAlerts returns the state of each pending or firing alert.
func activeAlerts(t *testing.T, promURL string) map[string]string {
	t.Helper()
	resp, err := http.Get(promURL + "/api/v1/alerts")
	require.NoError(t, err)
	defer resp.Body.Close()
	var r struct {
		Data struct {
			Alerts []struct {
				Labels map[string]string `json:"labels"`
				State  string            `json:"state"`
			} `json:"alerts"`
		} `json:"data"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&r))
	out := map[string]string{}
	for _, a := range r.Data.Alerts {
		out[a.Labels["alertname"]] = a.State
	}
	return out
}

// ruleHealth asserts that Prometheus loaded every rule and evaluates it
// without error.
func ruleHealth(t *testing.T, promURL string, want int) {
	t.Helper()
	resp, err := http.Get(promURL + "/api/v1/rules")
	require.NoError(t, err)
	defer resp.Body.Close()
	var r struct {
		Data struct {
			Groups []struct {
				Rules []struct {
					Name      string `json:"name"`
					Health    string `json:"health"`
					LastError string `json:"lastError"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&r))
	n := 0
	for _, g := range r.Data.Groups {
		for _, rule := range g.Rules {
			n++
			assert.Equal(t, "ok", rule.Health, "%s: %s", rule.Name, rule.LastError)
		}
	}
	assert.Equal(t, want, n, "rules loaded by Prometheus")
}
