//go:build prometheus

package e2e_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apivideo-exporter/apivideo_exporter/dashboards"
	"github.com/apivideo-exporter/apivideo_exporter/internal/fakeapi"
	"github.com/apivideo-exporter/apivideo_exporter/internal/testsupport"
)

// TestAccounts runs one exporter serving two accounts from its accounts
// file, and the real Prometheus probing both through /probe with the
// relabelling of deploy/prometheus/accounts.yml: each account gets its own
// series, told apart by the account label Prometheus sets, and every
// dashboard query returns data for each. One account is listed in full,
// the other incrementally.
func TestAccounts(t *testing.T) {
	prometheus := testsupport.PrometheusTool(t, "prometheus")
	promtool := testsupport.PrometheusTool(t, "promtool")
	root, err := testsupport.ModuleRoot()
	require.NoError(t, err)
	exampleConfig := filepath.Join(root, "deploy/prometheus/accounts.yml")
	runPromtool(t, promtool, nil, "check", "config", exampleConfig)

	dir := t.TempDir()
	type account struct {
		fake                  *fakeapi.Server
		active, withoutExpiry int
	}
	accounts := map[string]account{}
	for i, name := range []string{"production", "sandbox"} {
		active, withoutExpiry := 120+i*37, 11+i*5
		fake := fakeapi.NewServer(fakeapi.Options{APIKey: "key-" + name, Tokens: active, WithoutExpiry: withoutExpiry, Seed: uint64(40 + i)})
		t.Cleanup(fake.Close)
		accounts[name] = account{fake, active, withoutExpiry}
	}
	keyFile := filepath.Join(dir, "production.key")
	require.NoError(t, os.WriteFile(keyFile, []byte("key-production\n"), 0o600))
	accountsFile := filepath.Join(dir, "accounts.yml")
	require.NoError(t, os.WriteFile(accountsFile, []byte(fmt.Sprintf(`accounts:
  production:
    url: %s
    api_key_file: %s
  sandbox:
    url: %s
    api_key_env: SANDBOX_KEY
    listing: incremental
`, accounts["production"].fake.URL, keyFile, accounts["sandbox"].fake.URL)), 0o600))
	exporter := testsupport.StartExporter(t, []string{"SANDBOX_KEY=key-sandbox"}, "--config.file="+accountsFile, "--log.level=debug")
	exporterAddr := strings.TrimPrefix(exporter.URL, "http://")

	// The example configuration, pointed at this exporter and scraping
	// every second.
	example, err := os.ReadFile(exampleConfig)
	require.NoError(t, err)
	rules := filepath.Join(root, dashboards.RulesFile)
	config := string(example)
	for from, to := range map[string]string{
		"scrape_interval: 60s":              "scrape_interval: 1s",
		"scrape_timeout: 15s":               "scrape_timeout: 1s",
		"evaluation_interval: 60s":          "evaluation_interval: 1s",
		"/etc/prometheus/rules/*.rules.yml": rules,
		"apivideo-exporter-accounts:9856":   exporterAddr,
	} {
		require.Contains(t, config, from, "%s no longer holds %q", exampleConfig, from)
		config = strings.ReplaceAll(config, from, to)
	}
	require.Contains(t, config, "- production\n          - sandbox", "the example's targets are the accounts' names")
	configFile := filepath.Join(dir, "prometheus.yml")
	require.NoError(t, os.WriteFile(configFile, []byte(config), 0o600))
	runPromtool(t, promtool, nil, "check", "config", configFile)

	promURL := startPrometheus(t, prometheus, dir, configFile)

	awaitQuery(t, promURL, `count_over_time(apivideo_up{job="apivideo"}[1m]) >= 6`, 30*time.Second,
		func(v []sample) bool { return len(v) == 2 },
		"Prometheus did not probe both accounts")

	// Each account's numbers, under its own account label.
	for name, a := range accounts {
		for expr, want := range map[string]float64{
			`apivideo_up{job="apivideo", account=%q}`:                           1,
			`up{job="apivideo", account=%q}`:                                    1,
			`apivideo_upload_tokens_active{job="apivideo", account=%q}`:         float64(a.active),
			`apivideo_upload_tokens_without_expiry{job="apivideo", account=%q}`: float64(a.withoutExpiry),
		} {
			v := mustQuery(t, promURL, fmt.Sprintf(expr, name))
			require.Len(t, v, 1, expr)
			assert.Equal(t, want, v[0].float(t), fmt.Sprintf(expr, name))
			assert.Equal(t, exporterAddr, v[0].Metric["instance"])
		}
		assert.Equal(t, 1, a.fake.Stats().Logins, "%s logged in once, with its own key", name)
		assert.Zero(t, a.fake.Stats().Rejected, name)
	}
	// The probes' request counters reach Prometheus under the probe job
	// alone: /metrics does not repeat them, so the selector of the alerts,
	// which matches both jobs, counts each account once.
	v := mustQuery(t, promURL, `sum by (job, account) (apivideo_api_requests_total{job=~".*apivideo.*", code="200"})`)
	var series []string
	for _, s := range v {
		series = append(series, s.Metric["job"]+"/"+s.Metric["account"])
		assert.Positive(t, s.float(t))
	}
	slices.Sort(series)
	assert.Equal(t, []string{"apivideo/production", "apivideo/sandbox"}, series)
	v = mustQuery(t, promURL, `apivideo_exporter_config_last_reload_successful{job="apivideo-exporter"}`)
	require.Len(t, v, 1)
	assert.Equal(t, 1.0, v[0].float(t))

	t.Run("dashboard per account", func(t *testing.T) {
		d, err := dashboards.Load()
		require.NoError(t, err)
		n, labelled := 0, 0
		for name := range accounts {
			for _, p := range d.AllPanels() {
				for _, tg := range p.Targets {
					n++
					// The account first: Substitute sets the others to "All".
					expr := strings.NewReplacer("${account}", name, "$account", name).Replace(tg.Expr)
					expr = dashboards.Substitute(expr, ".+", ".+", rateInterval)
					label := fmt.Sprintf("%s/%s/%s", name, p.Title, tg.RefID)
					checkExpr(t, promURL, label, expr)
					for _, s := range mustQuery(t, promURL, expr) {
						if got, ok := s.Metric["account"]; ok {
							assert.Equal(t, name, got, "%s returned another account's data", label)
							labelled++
						}
					}
				}
			}
		}
		require.Greater(t, n, 20)
		assert.Greater(t, labelled, n/2, "the panels keep accounts apart")
	})

	t.Run("alert rules per account", func(t *testing.T) {
		rs, err := dashboards.Rules()
		require.NoError(t, err)
		ruleHealth(t, promURL, len(rs))
		// The accounts file loaded: the reload alert's selector finds the
		// exporter's status, and the alert does not fire.
		for _, r := range rs {
			if r.Alert == "ApivideoExporterConfigReloadFailed" {
				assert.Empty(t, mustQuery(t, promURL, r.Expr), r.Alert)
				checkSelectors(t, promURL, r.Alert, r.Expr)
			}
		}
		// Tokens without expiry: one pending alert per account.
		deadline := time.Now().Add(10 * time.Second)
		for {
			v := mustQuery(t, promURL, `ALERTS{alertname="ApivideoTokensWithoutExpiry", job="apivideo"}`)
			var names []string
			for _, s := range v {
				names = append(names, s.Metric["account"])
			}
			slices.Sort(names)
			if len(names) == 2 || time.Now().After(deadline) {
				assert.Equal(t, []string{"production", "sandbox"}, names)
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
	})
}
