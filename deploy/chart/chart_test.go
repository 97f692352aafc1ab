// Package chart_test lints and renders the Helm chart in
// charts/apivideo-exporter with the helm binary, and decodes what it renders
// strictly into the Kubernetes API types.
package chart_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/apivideo-exporter/apivideo_exporter/dashboards"
	"github.com/apivideo-exporter/apivideo_exporter/deploy/internal/manifest"
)

const (
	chartDir  = "../../charts/apivideo-exporter"
	release   = "video"
	namespace = "media"
)

// The values files that turn every toggle on. PodMonitor and ServiceMonitor
// exclude each other (two discovery paths would double the api.video
// reads), so there is one file for each.
var everyToggle = []string{"testdata/every-toggle-podmonitor.yaml", "testdata/every-toggle-servicemonitor.yaml"}

// The mixin's default selector, which the scrape jobs the chart sets up
// must match for the alerts to see them.
var exporterSelector = regexp.MustCompile(`^(?:.*apivideo.*)$`)

// helmBinary finds helm (built by .ci/run with `go install
// helm.sh/helm/v3/cmd/helm@v3.21.4`) or fails: the test is never skipped.
func helmBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("HELM"); p != "" {
		return p
	}
	if p, err := exec.LookPath("helm"); err == nil {
		return p
	}
	out, err := exec.Command("go", "env", "GOPATH").Output()
	require.NoError(t, err)
	p := filepath.Join(strings.TrimSpace(string(out)), "bin", "helm")
	_, err = os.Stat(p)
	require.NoError(t, err, "helm not found: go install helm.sh/helm/v3/cmd/helm@v3.21.4 (.ci/run does)")
	return p
}

// runHelm runs helm and returns its standard output, or its error with the
// standard error.
func runHelm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(helmBinary(t), args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// Keep helm's caches and configuration out of the user's home.
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home, "HELM_CONFIG_HOME="+home, "HELM_DATA_HOME="+home)
	if err := cmd.Run(); err != nil {
		return stdout.String(), &helmError{err: err, stderr: stderr.String()}
	}
	return stdout.String(), nil
}

type helmError struct {
	err    error
	stderr string
}

func (e *helmError) Error() string { return e.err.Error() + ": " + e.stderr }

func valuesArgs(files []string, set []string) []string {
	var args []string
	for _, f := range files {
		args = append(args, "--values", f)
	}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	return args
}

// rendered is what `helm template` produced, by kind.
type rendered struct {
	deployment      *appsv1.Deployment
	service         *corev1.Service
	secrets         []*corev1.Secret
	configMaps      []*corev1.ConfigMap
	networkPolicies []*networkingv1.NetworkPolicy
	podMonitors     []*manifest.PodMonitor
	serviceMonitors []*manifest.ServiceMonitor
	rules           []*manifest.PrometheusRule
	scrapeConfigs   []*manifest.ScrapeConfig
	serviceAccounts []*corev1.ServiceAccount
	// objects are the metadata of every object, in order.
	objects []metav1.ObjectMeta
}

func template(t *testing.T, files []string, set ...string) rendered {
	t.Helper()
	out, err := runHelm(t, append([]string{"template", release, chartDir, "--namespace", namespace}, valuesArgs(files, set)...)...)
	require.NoError(t, err)
	objs, err := manifest.DecodeAll([]byte(out))
	require.NoError(t, err, out)
	var r rendered
	for _, obj := range objs {
		switch o := obj.(type) {
		case *appsv1.Deployment:
			require.Nil(t, r.deployment, "one Deployment")
			r.deployment = o
		case *corev1.Service:
			require.Nil(t, r.service, "one Service")
			r.service = o
		case *corev1.Secret:
			r.secrets = append(r.secrets, o)
		case *corev1.ConfigMap:
			r.configMaps = append(r.configMaps, o)
		case *networkingv1.NetworkPolicy:
			r.networkPolicies = append(r.networkPolicies, o)
		case *manifest.PodMonitor:
			r.podMonitors = append(r.podMonitors, o)
		case *manifest.ServiceMonitor:
			r.serviceMonitors = append(r.serviceMonitors, o)
		case *manifest.PrometheusRule:
			r.rules = append(r.rules, o)
		case *manifest.ScrapeConfig:
			r.scrapeConfigs = append(r.scrapeConfigs, o)
		case *corev1.ServiceAccount:
			r.serviceAccounts = append(r.serviceAccounts, o)
		}
		r.objects = append(r.objects, objectMeta(t, obj))
	}
	require.NotNil(t, r.deployment)
	require.NotNil(t, r.service)
	return r
}

// objectMeta returns the metadata of a decoded object.
func objectMeta(t *testing.T, obj any) metav1.ObjectMeta {
	t.Helper()
	switch o := obj.(type) {
	case metav1.Object:
		return metav1.ObjectMeta{Name: o.GetName(), Namespace: o.GetNamespace(), Labels: o.GetLabels()}
	case *manifest.PodMonitor:
		return o.Metadata
	case *manifest.ServiceMonitor:
		return o.Metadata
	case *manifest.PrometheusRule:
		return o.Metadata
	case *manifest.ScrapeConfig:
		return o.Metadata
	}
	t.Fatalf("no metadata for %T", obj)
	return metav1.ObjectMeta{}
}

func selects(t *testing.T, selector *metav1.LabelSelector, l map[string]string) bool {
	t.Helper()
	sel, err := metav1.LabelSelectorAsSelector(selector)
	require.NoError(t, err)
	return !sel.Empty() && sel.Matches(labels.Set(l))
}

func TestLint(t *testing.T) {
	for _, files := range [][]string{nil, everyToggle[:1], everyToggle[1:], {accountsValues}, {conventionalValues},
		{webConfigValues}, {accountsValues, webConfigValues}, {placementValues}} {
		t.Run(strings.Join(append([]string{"defaults"}, files...), "+"), func(t *testing.T) {
			out, err := runHelm(t, append([]string{"lint", "--strict", chartDir}, valuesArgs(files, nil)...)...)
			require.NoError(t, err, out)
			assert.Contains(t, out, "0 chart(s) failed")
		})
	}
}

// checkWorkload checks the Deployment and Service every rendering has, and
// returns where the single-account API key comes from, if there is one.
func checkWorkload(t *testing.T, r rendered) manifest.KeyFile {
	t.Helper()
	d := r.deployment
	assert.Equal(t, namespace, d.Namespace)
	require.NotNil(t, d.Spec.Replicas)
	assert.EqualValues(t, 1, *d.Spec.Replicas, "a second replica doubles the api.video reads")
	assert.Equal(t, appsv1.RecreateDeploymentStrategyType, d.Spec.Strategy.Type)
	assert.True(t, selects(t, d.Spec.Selector, d.Spec.Template.Labels), "selector must match the pod template")
	pod := d.Spec.Template.Spec
	assert.Empty(t, pod.InitContainers)
	require.Len(t, pod.Containers, 1)
	c, _ := manifest.Exporter(t, d)
	var key manifest.KeyFile
	if _, ok := flagValue(c.Args, "apivideo.api-key-file"); ok {
		key = manifest.CheckExporter(t, pod, c)
	} else {
		manifest.CheckContainer(t, pod, c)
		_, ok := flagValue(c.Args, "config.file")
		assert.True(t, ok, "neither a key nor an accounts file")
	}
	// One discovery path: no prometheus.io annotations beside the monitors.
	for k := range d.Spec.Template.Annotations {
		assert.False(t, strings.HasPrefix(k, "prometheus.io/"), k)
	}

	s := r.service
	assert.True(t, selects(t, &metav1.LabelSelector{MatchLabels: s.Spec.Selector}, d.Spec.Template.Labels), "the Service does not select the pod")
	require.Len(t, s.Spec.Ports, 1)
	assert.Equal(t, manifest.MetricsPortName, s.Spec.Ports[0].Name)
	assert.Equal(t, manifest.MetricsPortName, s.Spec.Ports[0].TargetPort.String())
	return key
}

func TestTemplateDefaults(t *testing.T) {
	r := template(t, nil)
	key := checkWorkload(t, r)
	assert.Equal(t, manifest.KeyFile{Secret: "apivideo-api-key", Key: "api-key"}, key, "the Secret of deploy/kubernetes/secret.yaml")
	assert.Empty(t, r.secrets, "no key in the values, no Secret")
	assert.Empty(t, r.configMaps)
	assert.Empty(t, r.networkPolicies)
	assert.Empty(t, r.podMonitors)
	assert.Empty(t, r.serviceMonitors)
	assert.Empty(t, r.rules)
	assert.Empty(t, r.scrapeConfigs)
	c := r.deployment.Spec.Template.Spec.Containers[0]
	assert.Equal(t, "registry.example.com/apivideo_exporter:"+releaseVersion(t), c.Image, "tag from appVersion, the VERSION file")
	// The exporter's own defaults, spelt out.
	assert.Subset(t, c.Args, []string{"--apivideo.listing=auto", "--apivideo.ratelimit-share=0.5"})
	_, ok := flagValue(c.Args, "config.file")
	assert.False(t, ok, "no accounts file without accounts")
	assert.Empty(t, r.deployment.Spec.Template.Annotations, "nothing to roll on")
}

func TestTemplateEveryToggle(t *testing.T) {
	wantRules, err := dashboards.ParseRules(dashboards.AlertRulesYAML)
	require.NoError(t, err)

	for _, file := range everyToggle {
		t.Run(file, func(t *testing.T) {
			r := template(t, []string{file})
			key := checkWorkload(t, r)
			pod := r.deployment.Spec.Template

			// The key from the values, in a Secret of the chart; the pod
			// rolls when it changes.
			require.Len(t, r.secrets, 1)
			assert.Equal(t, r.secrets[0].Name, key.Secret)
			assert.Equal(t, "test-api-key", string(r.secrets[0].Data[key.Key]))
			assert.NotEmpty(t, pod.Annotations["checksum/api-key"])

			// Exactly one way for Prometheus to find the exporter, whose
			// job the alerts' selector matches.
			require.Len(t, r.podMonitors, 1-len(r.serviceMonitors))
			var endpoints []manifest.Endpoint
			for _, pm := range r.podMonitors {
				assert.True(t, selects(t, &pm.Spec.Selector, pod.Labels), "the PodMonitor does not select the pod")
				assert.Equal(t, "prometheus", pm.Metadata.Labels["release"])
				assert.Empty(t, pm.Spec.JobLabel)
				assert.Regexp(t, exporterSelector, pm.Metadata.Namespace+"/"+pm.Metadata.Name, "job label")
				endpoints = pm.Spec.PodMetricsEndpoints
			}
			for _, sm := range r.serviceMonitors {
				assert.True(t, selects(t, &sm.Spec.Selector, r.service.Labels), "the ServiceMonitor does not select the Service")
				assert.Equal(t, "prometheus", sm.Metadata.Labels["release"])
				assert.Empty(t, sm.Spec.JobLabel)
				assert.Regexp(t, exporterSelector, r.service.Name, "job label")
				endpoints = sm.Spec.Endpoints
			}
			require.Len(t, endpoints, 1)
			ep := endpoints[0]
			assert.Equal(t, manifest.MetricsPortName, ep.Port)
			assert.Equal(t, "/metrics", ep.Path)
			interval, err := time.ParseDuration(ep.Interval)
			require.NoError(t, err)
			timeout, err := time.ParseDuration(ep.ScrapeTimeout)
			require.NoError(t, err)
			assert.Less(t, timeout, interval)
			assert.Contains(t, r.deployment.Spec.Template.Spec.Containers[0].Args, "--apivideo.timeout=10s")
			assert.Greater(t, timeout, 10*time.Second, "scrapeTimeout must exceed --apivideo.timeout")

			// The rules generated from the mixin, unchanged.
			require.Len(t, r.rules, 1)
			assert.Equal(t, "prometheus", r.rules[0].Metadata.Labels["release"])
			assert.Equal(t, wantRules, r.rules[0].Spec, "the PrometheusRule differs from dashboards/apivideo-alerts.rules.yml")

			// The dashboard for the Grafana sidecar, unchanged.
			require.Len(t, r.configMaps, 1)
			cm := r.configMaps[0]
			assert.Equal(t, "1", cm.Labels["grafana_dashboard"])
			assert.Equal(t, strings.TrimSpace(string(dashboards.DashboardJSON)), cm.Data["apivideo-exporter.json"])

			// Scrapes in, DNS and HTTPS out.
			require.Len(t, r.networkPolicies, 1)
			manifest.CheckNetworkPolicy(t, r.networkPolicies[0], r.deployment)
		})
	}

	r := template(t, everyToggle[:1])
	assert.Equal(t, "api.video", r.configMaps[0].Annotations["grafana_folder"])
	assert.Equal(t, namespace, r.configMaps[0].Namespace)
	require.Len(t, r.networkPolicies[0].Spec.Ingress[0].From, 1)
	assert.Equal(t, "monitoring", r.networkPolicies[0].Spec.Ingress[0].From[0].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"])
	r = template(t, everyToggle[1:])
	assert.Equal(t, "monitoring", r.configMaps[0].Namespace)
	assert.Empty(t, r.networkPolicies[0].Spec.Ingress[0].From, "every pod may scrape by default")
}

func TestTemplateOptions(t *testing.T) {
	digest := "sha256:" + strings.Repeat("ab", 32)
	r := template(t, nil,
		"image.repository=ghcr.io/example/apivideo_exporter",
		"image.digest="+digest,
		"apiKey.existingSecret=video-keys",
		"apiKey.existingSecretKey=production",
		"exporter.url=https://sandbox.api.video",
		"exporter.extraArgs={--apivideo.concurrency=4}",
		"fullnameOverride=apivideo",
	)
	c := r.deployment.Spec.Template.Spec.Containers[0]
	assert.Equal(t, "ghcr.io/example/apivideo_exporter@"+digest, c.Image)
	assert.Contains(t, c.Args, "--apivideo.url=https://sandbox.api.video")
	assert.Contains(t, c.Args, "--apivideo.concurrency=4")
	assert.Equal(t, "apivideo", r.deployment.Name)
	key := checkWorkload(t, r)
	assert.Equal(t, manifest.KeyFile{Secret: "video-keys", Key: "production"}, key)
}

// TestValuesRejected checks that values.schema.json and the templates turn
// mistakes into errors at install time instead of ignoring them.
func TestValuesRejected(t *testing.T) {
	tests := []struct {
		name string
		set  []string
		want string
	}{
		{"unknown top-level key", []string{"replicaCount=2"}, "additional properties 'replicaCount' not allowed"},
		{"misspelt toggle", []string{"podMonitor.enabeld=true"}, "additional properties 'enabeld' not allowed"},
		{"misspelt nested key", []string{"exporter.cacheTtl=1m"}, "additional properties 'cacheTtl' not allowed"},
		{"duration without unit", []string{"exporter.timeout=10"}, "/exporter/timeout"},
		{"unknown log level", []string{"exporter.logLevel=verbose"}, "/exporter/logLevel"},
		{"argument that is not a flag", []string{"exporter.extraArgs={apivideo.concurrency=4}"}, "/exporter/extraArgs/0"},
		{"bad digest", []string{"image.digest=latest"}, "/image/digest"},
		{"no key", []string{"apiKey.existingSecret="}, "apiKey.existingSecret or apiKey.value is required"},
		{"two discovery paths", []string{"podMonitor.enabled=true", "serviceMonitor.enabled=true"}, "scrape the exporter twice"},
		{"Go duration with a day", []string{"exporter.timeout=1d"}, "/exporter/timeout"},
		{"unknown listing", []string{"exporter.listing=incremetal"}, "/exporter/listing"},
		{"removed resync interval", []string{"exporter.resyncInterval=10m"}, "additional properties 'resyncInterval' not allowed"},
		{"rate-limit share of zero", []string{"exporter.ratelimitShare=0"}, "/exporter/ratelimitShare"},
		{"rate-limit share above one", []string{"exporter.ratelimitShare=1.5"}, "/exporter/ratelimitShare"},
		{"rate-limit share as a percentage", []string{"exporter.ratelimitShare=50%"}, "/exporter/ratelimitShare"},
		{"misspelt listing key", []string{"exporter.listng=incremental"}, "additional properties 'listng' not allowed"},
		{"account name in capitals", []string{"accounts.Production.apiKey.existingSecret=k"}, "'Production' does not match pattern '^[a-z0-9]([a-z0-9_-]*[a-z0-9])?$'"},
		{"account name with a dot", []string{`accounts.eu\.shop.apiKey.existingSecret=k`}, "'eu.shop' does not match pattern '^[a-z0-9]([a-z0-9_-]*[a-z0-9])?$'"},
		{"account name ending in an underscore", []string{"accounts.shop_.apiKey.value=k"}, "'shop_' does not match pattern '^[a-z0-9]([a-z0-9_-]*[a-z0-9])?$'"},
		{"account name starting with a dash", []string{"accounts.-shop.apiKey.existingSecret=k"}, "'-shop' does not match pattern '^[a-z0-9]([a-z0-9_-]*[a-z0-9])?$'"},
		{"misspelt account setting", []string{"accounts.prod.apiKey.existingSecret=k", "accounts.prod.cacheTtl=1m"}, "additional properties 'cacheTtl' not allowed"},
		{"account setting in the file's spelling", []string{"accounts.prod.apiKey.existingSecret=k", "accounts.prod.cache_ttl=1m"}, "additional properties 'cache_ttl' not allowed"},
		{"misspelt account key", []string{"accounts.prod.apiKey.existingSecrets=k"}, "additional properties 'existingSecrets' not allowed"},
		{"unknown account listing", []string{"accounts.prod.apiKey.existingSecret=k", "accounts.prod.listing=partial"}, "/accounts/prod/listing"},
		{"account concurrency too high", []string{"accounts.prod.apiKey.existingSecret=k", "accounts.prod.concurrency=33"}, "/accounts/prod/concurrency"},
		{"account concurrency zero", []string{"accounts.prod.apiKey.existingSecret=k", "accounts.prod.concurrency=0"}, "/accounts/prod/concurrency"},
		{"account timeout without unit", []string{"accounts.prod.apiKey.existingSecret=k", "accounts.prod.timeout=10"}, "/accounts/prod/timeout"},
		{"account URL without scheme", []string{"accounts.prod.apiKey.existingSecret=k", "accounts.prod.url=sandbox.api.video"}, "/accounts/prod/url"},
		{"account without a key", []string{"accounts.prod.url=https://sandbox.api.video"}, "/accounts/prod"},
		{"account with an empty key", []string{"accounts.prod.apiKey.existingSecretKey=api-key"}, "accounts.prod: apiKey.existingSecret or apiKey.value is required"},
		{"account with two keys", []string{"accounts.prod.apiKey.existingSecret=k", "accounts.prod.apiKey.value=v"}, "accounts.prod: set one of apiKey.existingSecret and apiKey.value, not both"},
		{"two accounts, one Secret name", []string{"accounts.eu_shop.apiKey.value=a", "accounts.eu-shop.apiKey.value=b"}, "would share the Secret video-apivideo-exporter-account-eu-shop"},
		{"single key left unused", []string{"accounts.prod.apiKey.existingSecret=k", "apiKey.value=v"}, "apiKey.value is set but not used with accounts"},
		{"probes without accounts", []string{"scrapeConfig.enabled=true"}, "scrapeConfig.enabled probes the accounts, and there are none"},
		{"misspelt scrapeConfig key", []string{"scrapeConfig.jobname=apivideo"}, "additional properties 'jobname' not allowed"},
		{"unknown alert", []string{"prometheusRule.alerts.ApivideoTokensWithoutExpire.disabled=true"}, "invalid propertyName 'ApivideoTokensWithoutExpire'"},
		{"misspelt alert setting", []string{"prometheusRule.alerts.ApivideoAPIThrottled.disable=true"}, "additional properties 'disable' not allowed"},
		{"severity in capitals", []string{"prometheusRule.alerts.ApivideoAPIThrottled.severity=Critical"}, "/prometheusRule/alerts/ApivideoAPIThrottled/severity"},
		{"additional rule without expr", []string{"prometheusRule.additionalRules[0].alert=X"}, "/prometheusRule/additionalRules/0"},
		{"monitor namespace not a name", []string{"podMonitor.namespace=Monitoring"}, "/podMonitor/namespace"},
		{"TLS without a Secret", []string{"webConfig.tls.enabled=true"}, "webConfig.tls.enabled needs webConfig.tls.secretName"},
		{"basic auth without a hash", []string{"webConfig.basicAuth.enabled=true"}, "webConfig.basicAuth.enabled needs webConfig.basicAuth.passwordHash"},
		{"basic auth with a password for a hash", []string{"webConfig.basicAuth.enabled=true", "webConfig.basicAuth.passwordHash=secret"}, "/webConfig/basicAuth/passwordHash"},
		{"basic auth, a monitor and no password", []string{"webConfig.basicAuth.enabled=true", "webConfig.basicAuth.passwordHash=$2y$10$2b2cU8CPhOTaGrs1HRQuAueS7JTT5ZHsHSzYiFPm1leZck7Mc8T4W", "podMonitor.enabled=true"}, "needs webConfig.basicAuth.passwordSecret.name"},
		{"environment variable without a name", []string{"env[0].value=x"}, "/env/0"},
		{"extra argument that is not a flag", []string{"extraArgs={apivideo.concurrency=4}"}, "/extraArgs/0"},
		{"extra mount without a path", []string{"extraVolumeMounts[0].name=x"}, "/extraVolumeMounts/0"},
		{"misspelt serviceAccount key", []string{"serviceAccount.crate=true"}, "additional properties 'crate' not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runHelm(t, append([]string{"template", release, chartDir}, valuesArgs(nil, tt.set)...)...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}
