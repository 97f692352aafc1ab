package kubernetes_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
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
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/apivideo-exporter/apivideo_exporter/dashboards"
	"github.com/apivideo-exporter/apivideo_exporter/deploy/internal/manifest"
)

const apiKeySecret = "apivideo-api-key"

type manifests struct {
	deployments     map[string]*appsv1.Deployment // by file name
	secrets         map[string]*corev1.Secret     // by object name
	networkPolicies map[string]*networkingv1.NetworkPolicy
	podMonitors     []*manifest.PodMonitor
	rules           []*manifest.PrometheusRule
}

func loadManifests(t *testing.T) manifests {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	require.NoError(t, err)
	yml, err := filepath.Glob("*.yml")
	require.NoError(t, err)
	files = append(files, yml...)
	require.NotEmpty(t, files)

	m := manifests{
		deployments:     map[string]*appsv1.Deployment{},
		secrets:         map[string]*corev1.Secret{},
		networkPolicies: map[string]*networkingv1.NetworkPolicy{},
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		objs, err := manifest.DecodeAll(data)
		require.NoError(t, err, f)
		require.NotEmpty(t, objs, f)
		for _, obj := range objs {
			switch o := obj.(type) {
			case *appsv1.Deployment:
				m.deployments[f] = o
			case *corev1.Secret:
				m.secrets[o.Name] = o
			case *networkingv1.NetworkPolicy:
				m.networkPolicies[f] = o
			case *manifest.PodMonitor:
				m.podMonitors = append(m.podMonitors, o)
			case *manifest.PrometheusRule:
				m.rules = append(m.rules, o)
			default:
				t.Fatalf("%s: unexpected %T", f, obj)
			}
		}
	}
	return m
}

func TestManifestsDecodeStrictly(t *testing.T) {
	m := loadManifests(t)
	assert.Len(t, m.deployments, 3, "sidecar-native, sidecar-classic and standalone")
	assert.Contains(t, m.secrets, apiKeySecret)
	assert.Len(t, m.podMonitors, 1)
	assert.Len(t, m.rules, 1)
	assert.Len(t, m.networkPolicies, 1)

	for f, d := range m.deployments {
		assert.Empty(t, validation.IsDNS1123Subdomain(d.Name), f)
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		require.NoError(t, err, f)
		assert.True(t, sel.Matches(labels.Set(d.Spec.Template.Labels)), "%s: selector must match the pod template", f)
		for _, c := range append(slices.Clone(d.Spec.Template.Spec.InitContainers), d.Spec.Template.Spec.Containers...) {
			assert.Empty(t, validation.IsDNS1123Label(c.Name), "%s: container %q", f, c.Name)
			for _, p := range c.Ports {
				assert.Empty(t, validation.IsValidPortName(p.Name), "%s: port %q", f, p.Name)
			}
		}
	}
}

// TestStrictDecodingRejectsTypos makes sure the decoding above would catch
// a misspelt field instead of silently dropping it.
func TestStrictDecodingRejectsTypos(t *testing.T) {
	data, err := os.ReadFile("sidecar-native.yaml")
	require.NoError(t, err)
	tests := []struct{ name, from, to string }{
		{"container field", "readOnlyRootFilesystem:", "readOnlyRootFilesytem:"},
		{"pod field", "automountServiceAccountToken:", "automountServiceAcountToken:"},
		{"probe field", "periodSeconds:", "periodSecond:"},
		{"duplicate field", "imagePullPolicy: IfNotPresent", "imagePullPolicy: IfNotPresent\n          imagePullPolicy: Always"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := strings.Replace(string(data), tt.from, tt.to, 1)
			require.NotEqual(t, string(data), bad)
			_, err := manifest.Decode([]byte(bad))
			assert.Error(t, err)
		})
	}

	pm, err := os.ReadFile("podmonitor.yaml")
	require.NoError(t, err)
	_, err = manifest.Decode(bytes.Replace(pm, []byte("scrapeTimeout:"), []byte("scrapeTimout:"), 1))
	assert.Error(t, err, "PodMonitor typo")
}

func TestExporterContainers(t *testing.T) {
	m := loadManifests(t)
	tests := []struct {
		file       string
		native     bool // an init container with restartPolicy: Always
		withApp    bool // runs beside another container
		maxReplica int32
	}{
		{file: "sidecar-native.yaml", native: true, withApp: true},
		{file: "sidecar-classic.yaml", native: false, withApp: true},
		{file: "standalone.yaml", native: false, withApp: false, maxReplica: 1},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			d, ok := m.deployments[tt.file]
			require.True(t, ok, "missing deployment in %s", tt.file)
			pod := d.Spec.Template.Spec
			c, isInit := manifest.Exporter(t, d)

			// Sidecar form.
			assert.Equal(t, tt.native, isInit)
			if tt.native {
				require.NotNil(t, c.RestartPolicy)
				assert.Equal(t, corev1.ContainerRestartPolicyAlways, *c.RestartPolicy)
			} else {
				assert.Nil(t, c.RestartPolicy)
			}
			if tt.withApp {
				assert.Len(t, pod.Containers, map[bool]int{true: 1, false: 2}[tt.native], "application container")
			} else {
				assert.Len(t, pod.Containers, 1)
			}
			if tt.maxReplica > 0 {
				require.NotNil(t, d.Spec.Replicas)
				assert.LessOrEqual(t, *d.Spec.Replicas, tt.maxReplica)
			}

			key := manifest.CheckExporter(t, pod, c)
			assert.Equal(t, apiKeySecret, key.Secret)
			secret, ok := m.secrets[key.Secret]
			require.True(t, ok, "secret %s not in the examples", key.Secret)
			manifest.SecretHasKey(t, secret, key.Key)

			// One discovery path: the PodMonitor's label, and no
			// prometheus.io annotations that a second configuration would
			// scrape again.
			for k := range d.Spec.Template.Annotations {
				assert.False(t, strings.HasPrefix(k, "prometheus.io/"), "annotation %s: a second discovery path", k)
			}

			// Scraped by the PodMonitor.
			require.Len(t, m.podMonitors, 1)
			pm := m.podMonitors[0]
			sel, err := metav1.LabelSelectorAsSelector(&pm.Spec.Selector)
			require.NoError(t, err)
			assert.True(t, sel.Matches(labels.Set(d.Spec.Template.Labels)), "PodMonitor does not select %s", tt.file)
		})
	}
}

func TestPodMonitor(t *testing.T) {
	m := loadManifests(t)
	require.Len(t, m.podMonitors, 1)
	pm := m.podMonitors[0]
	require.NotEmpty(t, pm.Spec.PodMetricsEndpoints)
	assert.NotEmpty(t, pm.Spec.Selector.MatchLabels)
	for _, ep := range pm.Spec.PodMetricsEndpoints {
		assert.Equal(t, manifest.MetricsPortName, ep.Port)
		assert.Equal(t, "/metrics", ep.Path)
		interval, err := time.ParseDuration(ep.Interval)
		require.NoError(t, err)
		timeout, err := time.ParseDuration(ep.ScrapeTimeout)
		require.NoError(t, err)
		assert.Less(t, timeout, interval)
		assert.Greater(t, timeout, 10*time.Second, "scrapeTimeout must exceed --apivideo.timeout (10s)")
	}
	// The job label "<namespace>/<name>" must match the alert rules'
	// job=~".*apivideo.*".
	assert.Contains(t, pm.Metadata.Name, "apivideo")
	assert.Empty(t, pm.Spec.JobLabel)
}

func TestPrometheusExamples(t *testing.T) {
	// The Kubernetes scrape config keeps the container ports named like the
	// examples' metrics port.
	data, err := os.ReadFile("../prometheus/kubernetes-pods.yml")
	require.NoError(t, err)
	var cfg struct {
		ScrapeConfigs []struct {
			JobName       string           `json:"job_name"`
			RelabelConfig []map[string]any `json:"relabel_configs"`
		} `json:"scrape_configs"`
	}
	require.NoError(t, yaml.Unmarshal(data, &cfg))
	require.Len(t, cfg.ScrapeConfigs, 1)
	sc := cfg.ScrapeConfigs[0]
	assert.Contains(t, sc.JobName, "apivideo")
	require.NotEmpty(t, sc.RelabelConfig)
	keep := sc.RelabelConfig[0]
	assert.Equal(t, "keep", keep["action"])
	assert.Equal(t, []any{"__meta_kubernetes_pod_container_port_name"}, keep["source_labels"])
	assert.Equal(t, manifest.MetricsPortName, keep["regex"])
}

// TestPrometheusRuleMatchesRulesFile keeps the PrometheusRule in step with
// dashboards/apivideo-alerts.rules.yml, which promtool tests.
func TestPrometheusRuleMatchesRulesFile(t *testing.T) {
	m := loadManifests(t)
	require.Len(t, m.rules, 1)
	want, err := dashboards.ParseRules(dashboards.AlertRulesYAML)
	require.NoError(t, err)
	assert.Equal(t, want, m.rules[0].Spec,
		"prometheusrule.yaml differs from dashboards/apivideo-alerts.rules.yml: render the mixin (see its header)")
}

// TestNetworkPolicy checks that the example lets Prometheus reach the
// metrics port of the standalone exporter, and the exporter reach DNS and
// HTTPS, and nothing else.
func TestNetworkPolicy(t *testing.T) {
	m := loadManifests(t)
	np, ok := m.networkPolicies["networkpolicy.yaml"]
	require.True(t, ok)
	manifest.CheckNetworkPolicy(t, np, m.deployments["standalone.yaml"])
	for _, f := range []string{"sidecar-native.yaml", "sidecar-classic.yaml"} {
		sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
		require.NoError(t, err)
		assert.False(t, sel.Matches(labels.Set(m.deployments[f].Spec.Template.Labels)),
			"the policy would cut the application of %s off", f)
	}
}
