package accounts_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// scrapeConfig is the part of monitoring.coreos.com/v1alpha1 ScrapeConfig
// the example uses, decoded strictly.
type scrapeConfig struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        metav1.ObjectMeta `json:"metadata"`
	Spec            struct {
		JobName        string `json:"jobName"`
		MetricsPath    string `json:"metricsPath"`
		ScrapeInterval string `json:"scrapeInterval"`
		ScrapeTimeout  string `json:"scrapeTimeout"`
		StaticConfigs  []struct {
			Targets []string          `json:"targets"`
			Labels  map[string]string `json:"labels,omitempty"`
		} `json:"staticConfigs"`
		Relabelings []struct {
			SourceLabels []string `json:"sourceLabels,omitempty"`
			TargetLabel  string   `json:"targetLabel,omitempty"`
			Regex        string   `json:"regex,omitempty"`
			Replacement  string   `json:"replacement,omitempty"`
			Action       string   `json:"action,omitempty"`
		} `json:"relabelings"`
	} `json:"spec"`
}

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
	scrape      *scrapeConfig
	accountFile accountsFile
}

func load(t *testing.T) example {
	t.Helper()
	ex := example{configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{}}
	for _, f := range []string{"accounts.yaml", "scrapeconfig.yaml"} {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		r := k8syaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
		for {
			doc, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err)
			var tm metav1.TypeMeta
			require.NoError(t, yaml.Unmarshal(doc, &tm))
			switch tm.APIVersion + "/" + tm.Kind {
			case "v1/ConfigMap":
				var o corev1.ConfigMap
				require.NoError(t, yaml.UnmarshalStrict(doc, &o), f)
				ex.configMaps[o.Name] = &o
			case "v1/Secret":
				var o corev1.Secret
				require.NoError(t, yaml.UnmarshalStrict(doc, &o), f)
				ex.secrets[o.Name] = &o
			case "apps/v1/Deployment":
				ex.deployment = &appsv1.Deployment{}
				require.NoError(t, yaml.UnmarshalStrict(doc, ex.deployment), f)
			case "v1/Service":
				ex.service = &corev1.Service{}
				require.NoError(t, yaml.UnmarshalStrict(doc, ex.service), f)
			case "monitoring.coreos.com/v1alpha1/ScrapeConfig":
				ex.scrape = &scrapeConfig{}
				require.NoError(t, yaml.UnmarshalStrict(doc, ex.scrape), f)
			default:
				t.Fatalf("%s: unexpected %s/%s", f, tm.APIVersion, tm.Kind)
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

// mountedFiles returns the files the container sees from Secrets and
// ConfigMaps, by path, with the object they come from.
func mountedFiles(t *testing.T, d *appsv1.Deployment, c corev1.Container) map[string]string {
	t.Helper()
	volumes := map[string]corev1.Volume{}
	for _, v := range d.Spec.Template.Spec.Volumes {
		volumes[v.Name] = v
	}
	files := map[string]string{}
	for _, m := range c.VolumeMounts {
		v, ok := volumes[m.Name]
		require.True(t, ok, "mount of unknown volume %s", m.Name)
		switch {
		case v.ConfigMap != nil:
			files[path.Join(m.MountPath, "accounts.yml")] = "configmap/" + v.ConfigMap.Name
		case v.Projected != nil:
			for _, src := range v.Projected.Sources {
				require.NotNil(t, src.Secret, "projected sources are Secrets")
				for _, it := range src.Secret.Items {
					files[path.Join(m.MountPath, it.Path)] = "secret/" + src.Secret.Name + "/" + it.Key
				}
			}
		default:
			t.Fatalf("unexpected volume %s", v.Name)
		}
	}
	return files
}

func TestAccountsExample(t *testing.T) {
	ex := load(t)
	d := ex.deployment
	require.Len(t, d.Spec.Template.Spec.Containers, 1)
	c := d.Spec.Template.Spec.Containers[0]
	files := mountedFiles(t, d, c)

	var configFile string
	for _, a := range c.Args {
		if v, ok := strings.CutPrefix(a, "--config.file="); ok {
			configFile = v
		}
	}
	require.NotEmpty(t, configFile, "the exporter reads an accounts file")
	assert.True(t, strings.HasPrefix(files[configFile], "configmap/"), "%s is the mounted ConfigMap", configFile)

	// Each account's key file is its own Secret, mounted.
	var names []string
	used := map[string]bool{}
	for name, a := range ex.accountFile.Accounts {
		names = append(names, name)
		src, ok := files[a.APIKeyFile]
		require.True(t, ok, "account %s: %s is not mounted", name, a.APIKeyFile)
		secret, key, _ := strings.Cut(strings.TrimPrefix(src, "secret/"), "/")
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
