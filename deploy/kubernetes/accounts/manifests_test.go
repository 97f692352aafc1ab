package accounts_test

import (
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/apivideo-exporter/apivideo_exporter/deploy/internal/manifest"
)

// accountsFile is the exporter's accounts file; the exporter's own tests
// check the example against its parser.
type accountsFile struct {
	Accounts map[string]struct {
		URL        string `json:"url,omitempty"`
		APIKeyFile string `json:"api_key_file,omitempty"`
		CacheTTL   string `json:"cache_ttl,omitempty"`
		Listing    string `json:"listing,omitempty"`
	} `json:"accounts"`
}

type example struct {
	configMaps  map[string]*corev1.ConfigMap
	secrets     map[string]*corev1.Secret
	deployment  *appsv1.Deployment
	service     *corev1.Service
	scrape      *manifest.ScrapeConfig
	accountFile accountsFile
}

func load(t *testing.T) example {
	t.Helper()
	ex := example{configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{}}
	for _, f := range []string{"accounts.yaml", "scrapeconfig.yaml"} {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		objs, err := manifest.DecodeAll(data)
		require.NoError(t, err, f)
		for _, obj := range objs {
			switch o := obj.(type) {
			case *corev1.ConfigMap:
				ex.configMaps[o.Name] = o
			case *corev1.Secret:
				ex.secrets[o.Name] = o
			case *appsv1.Deployment:
				ex.deployment = o
			case *corev1.Service:
				ex.service = o
			case *manifest.ScrapeConfig:
				ex.scrape = o
			default:
				t.Fatalf("%s: unexpected %T", f, obj)
			}
		}
	}
	require.NotNil(t, ex.deployment)
	require.NotNil(t, ex.service)
	require.NotNil(t, ex.scrape)
	require.Len(t, ex.configMaps, 1)
	for _, cm := range ex.configMaps {
		require.NoError(t, yaml.UnmarshalStrict([]byte(cm.Data["accounts.yml"]), &ex.accountFile))
	}
	return ex
}

func TestAccountsExample(t *testing.T) {
	ex := load(t)
	d := ex.deployment
	require.Len(t, d.Spec.Template.Spec.Containers, 1)
	c := d.Spec.Template.Spec.Containers[0]
	files := manifest.MountedFiles(t, d.Spec.Template.Spec, c, slices.Collect(maps.Values(ex.configMaps)))

	var configFile string
	for _, a := range c.Args {
		if v, ok := strings.CutPrefix(a, "--config.file="); ok {
			configFile = v
		}
	}
	require.NotEmpty(t, configFile, "the exporter reads an accounts file")
	assert.Equal(t, "ConfigMap", files[configFile].Kind, "%s is the mounted ConfigMap", configFile)

	// Each account's key file is its own Secret, mounted.
	var names []string
	used := map[string]bool{}
	for name, a := range ex.accountFile.Accounts {
		names = append(names, name)
		src, ok := files[a.APIKeyFile]
		require.True(t, ok, "account %s: %s is not mounted", name, a.APIKeyFile)
		require.Equal(t, "Secret", src.Kind, "account %s: %s comes from a Secret", name, a.APIKeyFile)
		secret, key := src.Name, src.Key
		s, ok := ex.secrets[secret]
		require.True(t, ok, "account %s: no Secret %s", name, secret)
		assert.Contains(t, s.StringData, key)
		assert.False(t, used[secret], "one Secret per account")
		used[secret] = true
	}
	assert.Len(t, ex.secrets, len(names), "a Secret for each account and no other")
	slices.Sort(names)
	assert.Equal(t, []string{"production", "sandbox"}, names)

	// Security settings as in the single-account examples.
	sc := c.SecurityContext
	require.NotNil(t, sc)
	assert.True(t, *sc.ReadOnlyRootFilesystem)
	assert.False(t, *sc.AllowPrivilegeEscalation)
	assert.Equal(t, []corev1.Capability{"ALL"}, sc.Capabilities.Drop)
	assert.False(t, *d.Spec.Template.Spec.AutomountServiceAccountToken)

	// One process answers every probe through the Service, even during a
	// rollout: counters and incremental state are per process.
	require.NotNil(t, d.Spec.Replicas)
	assert.Equal(t, int32(1), *d.Spec.Replicas, "one replica behind the Service")
	assert.Equal(t, appsv1.RecreateDeploymentStrategyType, d.Spec.Strategy.Type, "no two pods at once during a rollout")

	// The Service reaches the pods on the exporter's port.
	sel := labels.SelectorFromSet(ex.service.Spec.Selector)
	assert.True(t, sel.Matches(labels.Set(d.Spec.Template.Labels)))
	require.Len(t, ex.service.Spec.Ports, 1)
	require.Len(t, c.Ports, 1)
	assert.Equal(t, c.Ports[0].Name, ex.service.Spec.Ports[0].TargetPort.String())

	// The ScrapeConfig probes every account through the Service.
	s := ex.scrape.Spec
	assert.Equal(t, "/probe", s.MetricsPath)
	require.Len(t, s.StaticConfigs, 1)
	targets := slices.Clone(s.StaticConfigs[0].Targets)
	slices.Sort(targets)
	assert.Equal(t, names, targets)
	require.Len(t, s.Relabelings, 3)
	assert.Equal(t, []string{"__address__"}, s.Relabelings[0].SourceLabels)
	assert.Equal(t, "__param_account", s.Relabelings[0].TargetLabel)
	assert.Equal(t, []string{"__param_account"}, s.Relabelings[1].SourceLabels)
	assert.Equal(t, "account", s.Relabelings[1].TargetLabel)
	assert.Equal(t, "__address__", s.Relabelings[2].TargetLabel)
	assert.Equal(t, ex.service.Name+":"+strconv.Itoa(int(ex.service.Spec.Ports[0].Port)), s.Relabelings[2].Replacement)
}
