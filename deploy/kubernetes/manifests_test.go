package kubernetes_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/apivideo-exporter/apivideo_exporter/dashboards"
)

const (
	exporterContainer = "apivideo-exporter"
	metricsPortName   = "apivideo"
	metricsPort       = 9856
	apiKeySecret      = "apivideo-api-key"
)

// podMonitor is the part of monitoring.coreos.com/v1 PodMonitor the
// examples use. Decoded strictly: a field that is not here fails the test,
// so extend the struct (with the operator's field names) to use more.
type podMonitor struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        metav1.ObjectMeta `json:"metadata"`
	Spec            struct {
		JobLabel          string               `json:"jobLabel,omitempty"`
		PodTargetLabels   []string             `json:"podTargetLabels,omitempty"`
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector *struct {
			Any        bool     `json:"any,omitempty"`
			MatchNames []string `json:"matchNames,omitempty"`
		} `json:"namespaceSelector,omitempty"`
		PodMetricsEndpoints []struct {
			Port          string        `json:"port,omitempty"`
			Path          string        `json:"path,omitempty"`
			Scheme        string        `json:"scheme,omitempty"`
			Interval      string        `json:"interval,omitempty"`
			ScrapeTimeout string        `json:"scrapeTimeout,omitempty"`
			HonorLabels   bool          `json:"honorLabels,omitempty"`
			Relabelings   []relabelling `json:"relabelings,omitempty"`
			MetricRelabel []relabelling `json:"metricRelabelings,omitempty"`
		} `json:"podMetricsEndpoints"`
	} `json:"spec"`
}

// prometheusRule is a monitoring.coreos.com/v1 PrometheusRule, decoded
// strictly.
type prometheusRule struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        metav1.ObjectMeta     `json:"metadata"`
	Spec            dashboards.RuleGroups `json:"spec"`
}

type relabelling struct {
	SourceLabels []string `json:"sourceLabels,omitempty"`
	Separator    string   `json:"separator,omitempty"`
	TargetLabel  string   `json:"targetLabel,omitempty"`
	Regex        string   `json:"regex,omitempty"`
	Replacement  string   `json:"replacement,omitempty"`
	Action       string   `json:"action,omitempty"`
}

type manifests struct {
	deployments map[string]*appsv1.Deployment // by file name
	secrets     map[string]*corev1.Secret     // by object name
	podMonitors []*podMonitor
	rules       []*prometheusRule
}

// splitDocuments returns the non-empty YAML documents of a file.
func splitDocuments(t *testing.T, data []byte) [][]byte {
	t.Helper()
	r := k8syaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs
		}
		require.NoError(t, err)
		if len(bytes.TrimSpace(stripComments(doc))) > 0 {
			docs = append(docs, doc)
		}
	}
}

func stripComments(doc []byte) []byte {
	var out []byte
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(line), []byte("#")) {
			out = append(out, line...)
			out = append(out, '\n')
		}
	}
	return out
}

// decodeStrict decodes a YAML document into the API type for its kind,
// rejecting unknown and duplicate fields.
func decodeStrict(doc []byte) (any, error) {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return nil, err
	}
	var obj any
	switch tm.APIVersion + "/" + tm.Kind {
	case "apps/v1/Deployment":
		obj = &appsv1.Deployment{}
	case "v1/Secret":
		obj = &corev1.Secret{}
	case "monitoring.coreos.com/v1/PodMonitor":
		obj = &podMonitor{}
	case "monitoring.coreos.com/v1/PrometheusRule":
		obj = &prometheusRule{}
	default:
		return nil, errors.New("unexpected apiVersion/kind " + tm.APIVersion + "/" + tm.Kind)
	}
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		return nil, err
	}
	return obj, nil
}

func loadManifests(t *testing.T) manifests {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	require.NoError(t, err)
	yml, err := filepath.Glob("*.yml")
	require.NoError(t, err)
	files = append(files, yml...)
	require.NotEmpty(t, files)

	m := manifests{deployments: map[string]*appsv1.Deployment{}, secrets: map[string]*corev1.Secret{}}
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		docs := splitDocuments(t, data)
		require.NotEmpty(t, docs, f)
		for i, doc := range docs {
			obj, err := decodeStrict(doc)
			require.NoError(t, err, "%s document %d", f, i)
			switch o := obj.(type) {
			case *appsv1.Deployment:
				m.deployments[f] = o
			case *corev1.Secret:
				m.secrets[o.Name] = o
			case *podMonitor:
				m.podMonitors = append(m.podMonitors, o)
			case *prometheusRule:
				m.rules = append(m.rules, o)
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
			_, err := decodeStrict([]byte(bad))
			assert.Error(t, err)
		})
	}

	pm, err := os.ReadFile("podmonitor.yaml")
	require.NoError(t, err)
	_, err = decodeStrict(bytes.Replace(pm, []byte("scrapeTimeout:"), []byte("scrapeTimout:"), 1))
	assert.Error(t, err, "PodMonitor typo")
}

// exporter returns the exporter container of a Deployment and whether it is
// an init container.
func exporter(t *testing.T, d *appsv1.Deployment) (corev1.Container, bool) {
	t.Helper()
	for _, c := range d.Spec.Template.Spec.InitContainers {
		if c.Name == exporterContainer {
			return c, true
		}
	}
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name == exporterContainer {
			return c, false
		}
	}
	t.Fatalf("deployment %s has no %s container", d.Name, exporterContainer)
	return corev1.Container{}, false
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
			c, isInit := exporter(t, d)

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

			// Image pinned.
			assert.NotEmpty(t, c.Image)
			assert.NotContains(t, c.Image, ":latest")
			assert.Contains(t, c.Image, ":")

			// Port and probes.
			require.Len(t, c.Ports, 1)
			assert.Equal(t, metricsPortName, c.Ports[0].Name)
			assert.EqualValues(t, metricsPort, c.Ports[0].ContainerPort)
			assert.Contains(t, c.Args, "--web.listen-address=:9856")
			probes := []struct {
				name  string
				probe *corev1.Probe
				path  string
			}{
				{"liveness", c.LivenessProbe, "/-/healthy"},
				{"readiness", c.ReadinessProbe, "/-/ready"},
			}
			for _, p := range probes {
				require.NotNil(t, p.probe, p.name)
				require.NotNil(t, p.probe.HTTPGet, p.name)
				assert.Equal(t, p.path, p.probe.HTTPGet.Path, p.name)
				assert.Equal(t, metricsPortName, p.probe.HTTPGet.Port.String(), p.name)
				assert.Positive(t, p.probe.PeriodSeconds, p.name)
				assert.Positive(t, p.probe.TimeoutSeconds, p.name)
			}

			// Resources.
			for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				req, ok := c.Resources.Requests[res]
				require.True(t, ok, "request %s", res)
				lim, ok := c.Resources.Limits[res]
				require.True(t, ok, "limit %s", res)
				assert.True(t, req.Sign() > 0, "request %s", res)
				assert.True(t, lim.Cmp(req) >= 0, "limit %s below request", res)
			}

			// Security context.
			sc := c.SecurityContext
			require.NotNil(t, sc)
			psc := pod.SecurityContext
			require.NotNil(t, psc)
			for _, nonRoot := range []*bool{sc.RunAsNonRoot, psc.RunAsNonRoot} {
				require.NotNil(t, nonRoot)
				assert.True(t, *nonRoot)
			}
			if sc.RunAsUser != nil {
				assert.NotZero(t, *sc.RunAsUser)
			}
			require.NotNil(t, sc.ReadOnlyRootFilesystem)
			assert.True(t, *sc.ReadOnlyRootFilesystem)
			require.NotNil(t, sc.AllowPrivilegeEscalation)
			assert.False(t, *sc.AllowPrivilegeEscalation)
			if sc.Privileged != nil {
				assert.False(t, *sc.Privileged)
			}
			require.NotNil(t, sc.Capabilities)
			assert.Equal(t, []corev1.Capability{"ALL"}, sc.Capabilities.Drop)
			assert.Empty(t, sc.Capabilities.Add)
			for _, sp := range []*corev1.SeccompProfile{sc.SeccompProfile, psc.SeccompProfile} {
				require.NotNil(t, sp)
				assert.Equal(t, corev1.SeccompProfileTypeRuntimeDefault, sp.Type)
			}
			require.NotNil(t, pod.AutomountServiceAccountToken)
			assert.False(t, *pod.AutomountServiceAccountToken, "the exporter does not talk to the Kubernetes API")
			assert.False(t, pod.HostNetwork)

			// API key from the Secret, mounted read-only as a file.
			for _, e := range c.Env {
				assert.NotEqual(t, "APIVIDEO_API_KEY", e.Name, "the key belongs in a file, not the environment")
			}
			var keyFile string
			for _, a := range c.Args {
				if v, ok := strings.CutPrefix(a, "--apivideo.api-key-file="); ok {
					keyFile = v
				}
			}
			require.NotEmpty(t, keyFile, "--apivideo.api-key-file")
			var mount *corev1.VolumeMount
			for i, vm := range c.VolumeMounts {
				if strings.HasPrefix(keyFile, strings.TrimSuffix(vm.MountPath, "/")+"/") {
					mount = &c.VolumeMounts[i]
				}
			}
			require.NotNil(t, mount, "no volume mounted at %s", keyFile)
			assert.True(t, mount.ReadOnly)
			var vol *corev1.Volume
			for i, v := range pod.Volumes {
				if v.Name == mount.Name {
					vol = &pod.Volumes[i]
				}
			}
			require.NotNil(t, vol)
			require.NotNil(t, vol.Secret, "the key volume must be a Secret")
			assert.Equal(t, apiKeySecret, vol.Secret.SecretName)
			secret, ok := m.secrets[vol.Secret.SecretName]
			require.True(t, ok, "secret %s not in the examples", vol.Secret.SecretName)
			rel := strings.TrimPrefix(keyFile, strings.TrimSuffix(mount.MountPath, "/")+"/")
			found := false
			for _, item := range vol.Secret.Items {
				if item.Path == rel {
					found = true
					_, inData := secret.Data[item.Key]
					_, inString := secret.StringData[item.Key]
					assert.True(t, inData || inString, "secret has no key %s", item.Key)
				}
			}
			if len(vol.Secret.Items) == 0 {
				_, inString := secret.StringData[rel]
				found = inString
			}
			assert.True(t, found, "%s is not a file of the secret volume", keyFile)
			if vol.Secret.DefaultMode != nil {
				assert.Zero(t, *vol.Secret.DefaultMode&0o007, "the key file must not be world-readable")
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
		assert.Equal(t, metricsPortName, ep.Port)
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
	assert.Equal(t, metricsPortName, keep["regex"])
}

// TestPrometheusRuleMatchesRulesFile keeps the PrometheusRule in step with
// dashboards/apivideo-alerts.rules.yml, which promtool tests.
func TestPrometheusRuleMatchesRulesFile(t *testing.T) {
	m := loadManifests(t)
	require.Len(t, m.rules, 1)
	var want dashboards.RuleGroups
	require.NoError(t, yaml.UnmarshalStrict(dashboards.AlertRulesYAML, &want))
	assert.Equal(t, want, m.rules[0].Spec,
		"prometheusrule.yaml differs from dashboards/apivideo-alerts.rules.yml: regenerate it (see its header)")
}
