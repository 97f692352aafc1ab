package chart_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/apivideo-exporter/apivideo_exporter/apiclient"
	"github.com/apivideo-exporter/apivideo_exporter/deploy/internal/manifest"
	"github.com/apivideo-exporter/apivideo_exporter/internal/accounts"
)

// The values of the accounts mode: three accounts (two keys from existing
// Secrets, one from the values), probed by a ScrapeConfig.
const accountsValues = "testdata/accounts.yaml"

// The exporter's --apivideo.concurrency default, which the chart does not
// pass.
const defaultConcurrency = 8

// flagValue returns the value of --name=value in args.
func flagValue(args []string, name string) (string, bool) {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// defaultsFromArgs returns the settings the exporter gives the accounts
// that leave them out: its flags, as the Deployment passes them.
func defaultsFromArgs(t *testing.T, args []string) accounts.Defaults {
	t.Helper()
	d := accounts.Defaults{Concurrency: defaultConcurrency}
	var err error
	if v, ok := flagValue(args, "apivideo.concurrency"); ok {
		d.Concurrency, err = strconv.Atoi(v)
		require.NoError(t, err)
	}
	v, ok := flagValue(args, "apivideo.cache-ttl")
	require.True(t, ok)
	d.CacheTTL, err = time.ParseDuration(v)
	require.NoError(t, err)
	v, ok = flagValue(args, "apivideo.timeout")
	require.True(t, ok)
	d.Timeout, err = time.ParseDuration(v)
	require.NoError(t, err)
	d.Listing, ok = flagValue(args, "apivideo.listing")
	require.True(t, ok)
	return d
}

// accountsOf returns the accounts file the Deployment's exporter reads,
// parsed by the exporter's own parser (strict: an unknown field fails), and
// the files the container sees.
func accountsOf(t *testing.T, r rendered) ([]accounts.Settings, map[string]manifest.MountedFile) {
	t.Helper()
	pod := r.deployment.Spec.Template.Spec
	c := pod.Containers[0]
	files := manifest.MountedFiles(t, pod, c, r.configMaps)
	configFile, ok := flagValue(c.Args, "config.file")
	require.True(t, ok, "--config.file")
	src, ok := files[configFile]
	require.True(t, ok, "%s is not mounted", configFile)
	require.Equal(t, "ConfigMap", src.Kind)
	var data string
	for _, cm := range r.configMaps {
		if cm.Name == src.Name {
			data = cm.Data[src.Key]
		}
	}
	settings, err := accounts.Parse([]byte(data), defaultsFromArgs(t, c.Args))
	require.NoError(t, err, data)
	return settings, files
}

func TestTemplateAccounts(t *testing.T) {
	r := template(t, []string{accountsValues})
	key := checkWorkload(t, r)
	assert.Zero(t, key, "no single-account key unless apiKey.withAccounts")
	c := r.deployment.Spec.Template.Spec.Containers[0]
	assert.Subset(t, c.Args, []string{"--apivideo.listing=incremental", "--apivideo.ratelimit-share=0.25"})

	settings, files := accountsOf(t, r)
	var names []string
	for _, s := range settings {
		names = append(names, s.Name)
	}
	require.Equal(t, []string{"eu_shop", "production", "sandbox"}, names)

	// Unset settings come from the flags; the chart passes the account's own.
	d := defaultsFromArgs(t, c.Args)
	assert.Equal(t, accounts.Defaults{Concurrency: defaultConcurrency, CacheTTL: 30 * time.Second, Timeout: 10 * time.Second, Listing: "incremental"}, d)
	for _, s := range settings[:2] {
		assert.Equal(t, apiclient.DefaultURL, s.URL, s.Name)
		assert.Equal(t, d, accounts.Defaults{Concurrency: s.Concurrency, CacheTTL: s.CacheTTL, Timeout: s.Timeout, Listing: s.Listing}, s.Name)
	}
	sandbox := settings[2]
	assert.Equal(t, "https://sandbox.api.video", sandbox.URL)
	assert.Equal(t, accounts.Defaults{Concurrency: 4, CacheTTL: 0, Timeout: 12 * time.Second, Listing: "full"},
		accounts.Defaults{Concurrency: sandbox.Concurrency, CacheTTL: sandbox.CacheTTL, Timeout: sandbox.Timeout, Listing: sandbox.Listing})

	// Each account's key is a file of a Secret of its own, not readable by
	// others; the chart creates the Secret of a key given in the values.
	secrets := map[string]*corev1.Secret{}
	for _, s := range r.secrets {
		secrets[s.Name] = s
	}
	wantSources := map[string]manifest.MountedFile{
		"eu_shop":    {Kind: "Secret", Name: "video-apivideo-exporter-account-eu-shop", Key: "api-key"},
		"production": {Kind: "Secret", Name: "apivideo-api-key-production", Key: "api-key"},
		"sandbox":    {Kind: "Secret", Name: "video-keys", Key: "sandbox"},
	}
	used := map[string]string{}
	for _, s := range settings {
		assert.Empty(t, s.KeyEnv, "keys are files")
		src, ok := files[s.KeyFile]
		require.True(t, ok, "account %s: %s is not mounted", s.Name, s.KeyFile)
		require.NotNil(t, src.Mode, s.Name)
		assert.Zero(t, *src.Mode&0o007, "account %s: the key file must not be world-readable", s.Name)
		src.Mode = nil
		assert.Equal(t, wantSources[s.Name], src, s.Name)
		assert.Empty(t, used[src.Name], "accounts %s and %s share a Secret", used[src.Name], s.Name)
		used[src.Name] = s.Name
	}
	require.Len(t, r.secrets, 1, "only the key given in the values")
	require.Contains(t, secrets, "video-apivideo-exporter-account-eu-shop")
	assert.Equal(t, "test-eu-shop-key", string(secrets["video-apivideo-exporter-account-eu-shop"].Data["api-key"]))

	// The ScrapeConfig probes each account through the Service, the account
	// label set by relabelling, under a job of its own that the alerts see.
	require.Len(t, r.scrapeConfigs, 1)
	sc := r.scrapeConfigs[0]
	assert.Equal(t, namespace, sc.Metadata.Namespace)
	assert.Equal(t, "prometheus", sc.Metadata.Labels["release"])
	assert.Equal(t, "/probe", sc.Spec.MetricsPath)
	require.Len(t, sc.Spec.StaticConfigs, 1)
	assert.Equal(t, names, sc.Spec.StaticConfigs[0].Targets)
	assert.Equal(t, []manifest.Relabelling{
		{SourceLabels: []string{"__address__"}, TargetLabel: "__param_account"},
		{SourceLabels: []string{"__param_account"}, TargetLabel: "account"},
		{TargetLabel: "__address__", Replacement: r.service.Name + "." + namespace + ".svc:" + strconv.Itoa(int(r.service.Spec.Ports[0].Port))},
	}, sc.Spec.Relabelings)
	assert.Regexp(t, exporterSelector, sc.Spec.JobName)
	require.Len(t, r.podMonitors, 1)
	pm := r.podMonitors[0]
	assert.NotEqual(t, pm.Metadata.Namespace+"/"+pm.Metadata.Name, sc.Spec.JobName,
		"the probes and /metrics are two jobs: the alerts tell them apart by job")
	assert.Equal(t, "/metrics", pm.Spec.PodMetricsEndpoints[0].Path)
	interval, err := time.ParseDuration(sc.Spec.ScrapeInterval)
	require.NoError(t, err)
	timeout, err := time.ParseDuration(sc.Spec.ScrapeTimeout)
	require.NoError(t, err)
	assert.Less(t, timeout, interval)
	for _, s := range settings {
		assert.Greater(t, timeout, s.Timeout, "account %s: scrapeTimeout must exceed its timeout", s.Name)
	}

	require.Len(t, r.networkPolicies, 1)
	manifest.CheckNetworkPolicy(t, r.networkPolicies[0], r.deployment)
}

// With apiKey.withAccounts, /metrics also serves the single account, as
// the exporter allows.
func TestTemplateAccountsWithKey(t *testing.T) {
	r := template(t, []string{accountsValues}, "apiKey.withAccounts=true", "apiKey.existingSecret=video-keys", "apiKey.existingSecretKey=main")
	key := checkWorkload(t, r)
	assert.Equal(t, manifest.KeyFile{Secret: "video-keys", Key: "main"}, key)
	settings, files := accountsOf(t, r)
	require.Len(t, settings, 3)
	keyFile, _ := flagValue(r.deployment.Spec.Template.Spec.Containers[0].Args, "apivideo.api-key-file")
	for _, s := range settings {
		assert.NotEqual(t, keyFile, s.KeyFile)
		assert.NotEqual(t, files[keyFile], files[s.KeyFile], "account %s reads the single key", s.Name)
	}
}

// The exporter does not watch its accounts file: a change to the accounts
// changes the pod template, so the Deployment rolls, and nothing else does.
func TestAccountsChecksum(t *testing.T) {
	annotations := func(set ...string) map[string]string {
		return template(t, []string{accountsValues}, set...).deployment.Spec.Template.Annotations
	}
	base := annotations()
	require.NotEmpty(t, base["checksum/accounts"])
	require.NotEmpty(t, base["checksum/api-key"], "the chart-created account key")

	assert.Equal(t, base, annotations("scrapeConfig.interval=2m", "podMonitor.interval=2m"), "the accounts did not change")
	changes := map[string][]string{
		"a setting":        {"accounts.production.cacheTTL=1m"},
		"an account":       {"accounts.staging.apiKey.existingSecret=apivideo-api-key-staging"},
		"an account's URL": {"accounts.eu_shop.url=https://sandbox.api.video"},
	}
	for name, set := range changes {
		got := annotations(set...)
		assert.NotEqual(t, base["checksum/accounts"], got["checksum/accounts"], name)
		assert.Equal(t, base["checksum/api-key"], got["checksum/api-key"], name)
	}
	got := annotations("accounts.eu_shop.apiKey.value=rotated")
	assert.NotEqual(t, base["checksum/api-key"], got["checksum/api-key"], "a chart-created key changed")
}
