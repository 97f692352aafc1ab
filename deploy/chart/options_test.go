package chart_test

import (
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/apivideo-exporter/apivideo_exporter/dashboards"
	"github.com/apivideo-exporter/apivideo_exporter/deploy/internal/manifest"
)

const (
	conventionalValues = "testdata/conventional.yaml"
	webConfigValues    = "testdata/webconfig.yaml"
	placementValues    = "testdata/placement.yaml"
)

// releaseVersion is the VERSION file at the repository's root.
func releaseVersion(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("../../VERSION")
	require.NoError(t, err)
	return strings.TrimSpace(string(data))
}

// TestVersionsAgree fails when the VERSION file, the chart's appVersion,
// the image tag the chart defaults to and the image tags the README and
// the Kubernetes examples name disagree.
func TestVersionsAgree(t *testing.T) {
	version := releaseVersion(t)
	data, err := os.ReadFile(chartDir + "/Chart.yaml")
	require.NoError(t, err)
	var chart struct {
		Version    string `json:"version"`
		AppVersion string `json:"appVersion"`
	}
	require.NoError(t, yaml.Unmarshal(data, &chart))
	assert.Equal(t, version, chart.AppVersion, "Chart.yaml appVersion")
	assert.Equal(t, version, chart.Version, "Chart.yaml version: the chart is released with the exporter")

	image := template(t, nil).deployment.Spec.Template.Spec.Containers[0].Image
	assert.True(t, strings.HasSuffix(image, ":"+version), "the default image %s", image)

	tag := regexp.MustCompile(`apivideo_exporter:(\d+\.\d+\.\d+\S*?)\b`)
	files := []string{"../../README.md", chartDir + "/README.md"}
	require.NoError(t, filepath.WalkDir("../kubernetes", func(path string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(path, ".yaml") {
			files = append(files, path)
		}
		return err
	}))
	seen := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, m := range tag.FindAllStringSubmatch(string(data), -1) {
			seen++
			assert.Equal(t, version, m[1], "%s names %s", f, m[0])
		}
	}
	assert.Positive(t, seen, "no image tag found in the README and the examples")
}

// hasLabels reports whether l holds every label of want.
func hasLabels(l, want map[string]string) bool {
	for k, v := range want {
		if l[k] != v {
			return false
		}
	}
	return true
}

func TestTemplateConventionalValues(t *testing.T) {
	r := template(t, []string{conventionalValues})
	checkWorkload(t, r)
	pod := r.deployment.Spec.Template
	c := pod.Spec.Containers[0]

	assert.Equal(t, []corev1.EnvVar{
		{Name: "HTTPS_PROXY", Value: "http://proxy.example.com:3128"},
		{Name: "NO_PROXY", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: "proxy-settings"}, Key: "no-proxy"}}},
	}, c.Env)
	assert.Equal(t, []corev1.EnvFromSource{
		{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "proxy-settings"}}},
		{Prefix: "PROXY_", SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "proxy-credentials"}}},
	}, c.EnvFrom)

	// The extra volume, mounted where asked, beside the chart's own.
	var volume *corev1.Volume
	for i, v := range pod.Spec.Volumes {
		if v.Name == "proxy-ca" {
			volume = &pod.Spec.Volumes[i]
		}
	}
	require.NotNil(t, volume)
	require.NotNil(t, volume.ConfigMap)
	assert.Equal(t, "proxy-ca-bundle", volume.ConfigMap.Name)
	assert.Contains(t, c.VolumeMounts, corev1.VolumeMount{Name: "proxy-ca", MountPath: "/etc/ssl/proxy", ReadOnly: true})
	assert.Len(t, c.VolumeMounts, 2, "the key and the extra volume")

	// The extra flags after the chart's own, exporter.extraArgs first.
	require.GreaterOrEqual(t, len(c.Args), 3)
	assert.Equal(t, []string{"--collector.max-token-series=50", "--apivideo.concurrency=4"}, c.Args[len(c.Args)-2:])

	// The chart's ServiceAccount, with no token mounted.
	require.Len(t, r.serviceAccounts, 1)
	sa := r.serviceAccounts[0]
	assert.Equal(t, "video-apivideo-exporter", sa.Name)
	assert.Equal(t, namespace, sa.Namespace)
	assert.Equal(t, "arn:aws:iam::123456789012:role/none", sa.Annotations["eks.amazonaws.com/role-arn"])
	require.NotNil(t, sa.AutomountServiceAccountToken)
	assert.False(t, *sa.AutomountServiceAccountToken)
	assert.Equal(t, sa.Name, pod.Spec.ServiceAccountName)

	// commonLabels on every object and the pod, podLabels on the pod only;
	// neither in the selectors, which must not change after install.
	common := map[string]string{"team": "video", "cost-center": "media"}
	assert.GreaterOrEqual(t, len(r.objects), 8)
	for _, o := range r.objects {
		assert.True(t, hasLabels(o.Labels, common), "%s has no commonLabels: %v", o.Name, o.Labels)
		assert.NotContains(t, o.Labels, "tier", o.Name)
	}
	assert.True(t, hasLabels(pod.Labels, common))
	assert.Equal(t, "monitoring", pod.Labels["tier"])
	for _, sel := range []map[string]string{r.deployment.Spec.Selector.MatchLabels, r.service.Spec.Selector, r.podMonitors[0].Spec.Selector.MatchLabels} {
		assert.NotContains(t, sel, "team")
		assert.NotContains(t, sel, "tier")
	}

	t.Run("existing service account", func(t *testing.T) {
		r := template(t, nil, "serviceAccount.name=video-reader")
		assert.Empty(t, r.serviceAccounts)
		assert.Equal(t, "video-reader", r.deployment.Spec.Template.Spec.ServiceAccountName)
	})
	t.Run("defaults", func(t *testing.T) {
		r := template(t, nil)
		assert.Empty(t, r.serviceAccounts)
		c := r.deployment.Spec.Template.Spec.Containers[0]
		assert.Empty(t, r.deployment.Spec.Template.Spec.ServiceAccountName)
		assert.Empty(t, c.Env)
		assert.Empty(t, c.EnvFrom)
		assert.Len(t, c.VolumeMounts, 1, "the key alone")
	})
}

// webConfigFile is exporter-toolkit's --web.config.file, the part the
// chart writes; decoded strictly.
type webConfigFile struct {
	TLSServerConfig *struct {
		CertFile string `json:"cert_file"`
		KeyFile  string `json:"key_file"`
	} `json:"tls_server_config,omitempty"`
	BasicAuthUsers map[string]string `json:"basic_auth_users,omitempty"`
}

func TestTemplateWebConfig(t *testing.T) {
	const (
		hash        = "$2y$10$2b2cU8CPhOTaGrs1HRQuAueS7JTT5ZHsHSzYiFPm1leZck7Mc8T4W"
		tlsSecret   = "apivideo-exporter-tls"
		webSecret   = "video-apivideo-exporter-web-config"
		scrapeCreds = "apivideo-exporter-scrape-password"
	)
	wantTLS := &manifest.TLSConfig{
		CA:         &manifest.SecretOrConfigMap{Secret: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "apivideo-exporter-ca"}, Key: "ca.crt"}},
		ServerName: "video-apivideo-exporter.media.svc",
	}
	wantAuth := &manifest.BasicAuth{
		Username: corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: webSecret}, Key: "username"},
		Password: corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: scrapeCreds}, Key: "password"},
	}
	for _, tc := range []struct {
		name       string
		files      []string
		set        []string
		tls, basic bool
	}{
		{"TLS and basic auth, PodMonitor", []string{webConfigValues}, []string{"podMonitor.enabled=true"}, true, true},
		{"TLS and basic auth, ServiceMonitor", []string{webConfigValues}, []string{"serviceMonitor.enabled=true"}, true, true},
		{"TLS and basic auth, accounts", []string{accountsValues, webConfigValues}, nil, true, true},
		{"TLS only", []string{webConfigValues}, []string{"podMonitor.enabled=true", "webConfig.basicAuth.enabled=false"}, true, false},
		{"basic auth only", []string{webConfigValues}, []string{"serviceMonitor.enabled=true", "webConfig.tls.enabled=false"}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := template(t, tc.files, tc.set...)
			pod := r.deployment.Spec.Template
			c := pod.Spec.Containers[0]
			files := manifest.MountedFiles(t, pod.Spec, c, r.configMaps)

			// The web configuration, from the chart's Secret.
			path, ok := flagValue(c.Args, "web.config.file")
			require.True(t, ok, "--web.config.file")
			src, ok := files[path]
			require.True(t, ok, "%s is not mounted", path)
			assert.Equal(t, manifest.MountedFile{Kind: "Secret", Name: webSecret, Key: "web-config.yml", Mode: src.Mode}, src)
			var secret *corev1.Secret
			for _, s := range r.secrets {
				if s.Name == webSecret {
					secret = s
				}
			}
			require.NotNil(t, secret)
			var web webConfigFile
			require.NoError(t, yaml.UnmarshalStrict(secret.Data["web-config.yml"], &web), "%s", secret.Data["web-config.yml"])
			assert.NotEmpty(t, pod.Annotations["checksum/web-config"])

			if tc.tls {
				require.NotNil(t, web.TLSServerConfig)
				assert.Equal(t, manifest.MountedFile{Kind: "Secret", Name: tlsSecret, Key: "tls.crt", Mode: files[web.TLSServerConfig.CertFile].Mode}, files[web.TLSServerConfig.CertFile])
				assert.Equal(t, manifest.MountedFile{Kind: "Secret", Name: tlsSecret, Key: "tls.key", Mode: files[web.TLSServerConfig.KeyFile].Mode}, files[web.TLSServerConfig.KeyFile])
			} else {
				assert.Nil(t, web.TLSServerConfig)
			}
			if tc.basic {
				assert.Equal(t, map[string]string{"scraper": hash}, web.BasicAuthUsers)
				assert.Equal(t, "scraper", string(secret.Data["username"]), "the username the monitors send")
				assert.NotContains(t, string(secret.Data["web-config.yml"]), "password:", "only the hash")
			} else {
				assert.Empty(t, web.BasicAuthUsers)
				assert.NotContains(t, secret.Data, "username")
			}

			// The kubelet probes: HTTPS with TLS; a TCP connection with
			// basic auth, since they cannot send the password.
			for _, p := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe} {
				require.NotNil(t, p)
				if tc.basic {
					assert.Nil(t, p.HTTPGet)
					require.NotNil(t, p.TCPSocket)
					assert.Equal(t, manifest.MetricsPortName, p.TCPSocket.Port.String())
					continue
				}
				require.NotNil(t, p.HTTPGet)
				assert.Equal(t, corev1.URISchemeHTTPS, p.HTTPGet.Scheme)
			}

			// Prometheus scrapes as the exporter expects.
			var endpoints []manifest.Endpoint
			for _, pm := range r.podMonitors {
				endpoints = append(endpoints, pm.Spec.PodMetricsEndpoints...)
			}
			for _, sm := range r.serviceMonitors {
				endpoints = append(endpoints, sm.Spec.Endpoints...)
			}
			type scrape struct {
				scheme string
				tls    *manifest.TLSConfig
				auth   *manifest.BasicAuth
			}
			var scrapes []scrape
			for _, ep := range endpoints {
				scrapes = append(scrapes, scrape{strings.ToLower(ep.Scheme), ep.TLSConfig, ep.BasicAuth})
			}
			for _, sc := range r.scrapeConfigs {
				assert.Contains(t, []string{"", "HTTPS"}, sc.Spec.Scheme, "the ScrapeConfig's scheme is upper case")
				scrapes = append(scrapes, scrape{strings.ToLower(sc.Spec.Scheme), sc.Spec.TLSConfig, sc.Spec.BasicAuth})
			}
			require.NotEmpty(t, scrapes)
			want := scrape{}
			if tc.tls {
				want.scheme, want.tls = "https", wantTLS
			}
			if tc.basic {
				want.auth = wantAuth
			}
			for _, got := range scrapes {
				assert.Equal(t, want, got)
			}
		})
	}

	t.Run("off", func(t *testing.T) {
		r := template(t, everyToggle[:1])
		c := r.deployment.Spec.Template.Spec.Containers[0]
		_, ok := flagValue(c.Args, "web.config.file")
		assert.False(t, ok)
		for _, s := range r.secrets {
			assert.NotEqual(t, webSecret, s.Name)
		}
		ep := r.podMonitors[0].Spec.PodMetricsEndpoints[0]
		assert.Empty(t, ep.Scheme)
		assert.Nil(t, ep.TLSConfig)
		assert.Nil(t, ep.BasicAuth)
	})
}

// TestTemplatePlacement renders every monitor and the PrometheusRule into
// another namespace with additional labels, and retunes the alerts.
func TestTemplatePlacement(t *testing.T) {
	r := template(t, []string{placementValues})
	require.Len(t, r.podMonitors, 1)
	require.Len(t, r.scrapeConfigs, 1)
	require.Len(t, r.rules, 1)
	pm, sc, rule := r.podMonitors[0], r.scrapeConfigs[0], r.rules[0]
	for _, m := range []struct {
		kind   string
		labels map[string]string
		ns     string
	}{
		{"PodMonitor", pm.Metadata.Labels, pm.Metadata.Namespace},
		{"ScrapeConfig", sc.Metadata.Labels, sc.Metadata.Namespace},
		{"PrometheusRule", rule.Metadata.Labels, rule.Metadata.Namespace},
	} {
		assert.Equal(t, "monitoring", m.ns, m.kind)
		assert.Equal(t, "prometheus", m.labels["release"], m.kind)
		assert.Equal(t, "video", m.labels["app.kubernetes.io/instance"], m.kind)
	}
	assert.Equal(t, "true", pm.Metadata.Labels["legacy"], "labels, kept from chart 0.1, still apply")
	assert.Equal(t, "alert-rules", rule.Metadata.Labels["role"])
	// From its own namespace, the PodMonitor still finds the pod.
	require.NotNil(t, pm.Spec.NamespaceSelector)
	assert.Equal(t, []string{namespace}, pm.Spec.NamespaceSelector.MatchNames)
	assert.True(t, selects(t, &pm.Spec.Selector, r.deployment.Spec.Template.Labels))
	assert.Contains(t, sc.Spec.Relabelings[len(sc.Spec.Relabelings)-1].Replacement, "."+namespace+".svc:", "the probes go to the Service in the release's namespace")

	// The alerts: two disabled, one retuned, two rules added.
	want, err := dashboards.ParseRules(dashboards.AlertRulesYAML)
	require.NoError(t, err)
	require.Len(t, rule.Spec.Groups, len(want.Groups))
	got := rule.Spec.Groups[0]
	var names []string
	for _, r := range got.Rules {
		names = append(names, r.Alert+r.Record)
	}
	var wantNames []string
	for _, r := range want.Groups[0].Rules {
		if r.Alert != "ApivideoActiveTokensJump" && r.Alert != "ApivideoTokenMintingSpike" {
			wantNames = append(wantNames, r.Alert)
		}
	}
	wantNames = append(wantNames, "ApivideoSandboxTokensWithoutExpiry", "account:apivideo_upload_tokens_active:max")
	assert.Equal(t, wantNames, names)
	for i, r := range got.Rules {
		switch r.Alert {
		case "ApivideoTokensWithoutExpiry":
			assert.Equal(t, "critical", r.Labels["severity"])
		case "ApivideoSandboxTokensWithoutExpiry":
			assert.Equal(t, "info", r.Labels["severity"])
			assert.Equal(t, "1h", r.For)
		case "":
			assert.Equal(t, "max by (account) (apivideo_upload_tokens_active)", r.Expr)
		default:
			j := slices.IndexFunc(want.Groups[0].Rules, func(w dashboards.Rule) bool { return w.Alert == r.Alert })
			require.GreaterOrEqual(t, j, 0)
			assert.Equal(t, want.Groups[0].Rules[j], got.Rules[i], "%s is unchanged", r.Alert)
		}
	}
	promtoolCheckRules(t, got)
}

// promtoolCheckRules loads a rendered group with promtool: the retuned
// rules are rules Prometheus accepts.
func promtoolCheckRules(t *testing.T, group dashboards.RuleGroup) {
	t.Helper()
	promtool, err := exec.LookPath("promtool")
	require.NoError(t, err, "promtool (Debian's prometheus package) is needed")
	data, err := json.Marshal(map[string]any{"groups": []any{group}})
	require.NoError(t, err)
	file := t.TempDir() + "/rules.json"
	require.NoError(t, os.WriteFile(file, data, 0o600))
	out, err := exec.Command(promtool, "check", "rules", file).CombinedOutput()
	require.NoError(t, err, "%s", out)
}

// TestSchemaKnowsEveryAlert keeps prometheusRule.alerts in step with the
// rules: each alert can be tuned, and a misspelt name fails.
func TestSchemaKnowsEveryAlert(t *testing.T) {
	data, err := os.ReadFile(chartDir + "/values.schema.json")
	require.NoError(t, err)
	var schema struct {
		Properties struct {
			PrometheusRule struct {
				Properties struct {
					Alerts struct {
						PropertyNames struct {
							Enum []string `json:"enum"`
						} `json:"propertyNames"`
					} `json:"alerts"`
				} `json:"properties"`
			} `json:"prometheusRule"`
		} `json:"properties"`
	}
	require.NoError(t, json.Unmarshal(data, &schema))
	rules, err := dashboards.Rules()
	require.NoError(t, err)
	var names []string
	for _, r := range rules {
		names = append(names, r.Alert)
	}
	assert.ElementsMatch(t, names, schema.Properties.PrometheusRule.Properties.Alerts.PropertyNames.Enum)
}
