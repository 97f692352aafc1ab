package manifest

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// What every way of running the exporter in Kubernetes shares.
const (
	ExporterContainer = "apivideo-exporter"
	MetricsPortName   = "apivideo"
	MetricsPort       = 9856
)

// Exporter returns the exporter container of a Deployment and whether it is
// an init container.
func Exporter(t *testing.T, d *appsv1.Deployment) (corev1.Container, bool) {
	t.Helper()
	for _, c := range d.Spec.Template.Spec.InitContainers {
		if c.Name == ExporterContainer {
			return c, true
		}
	}
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name == ExporterContainer {
			return c, false
		}
	}
	t.Fatalf("deployment %s has no %s container", d.Name, ExporterContainer)
	return corev1.Container{}, false
}

// KeyFile is where the exporter reads its API key: an item of a Secret
// volume.
type KeyFile struct {
	Secret string // name of the Secret
	Key    string // key in the Secret
}

// CheckExporter asserts what every exporter container must have (see
// CheckContainer) and the API key mounted read-only from a Secret. It
// returns where the key comes from.
func CheckExporter(t *testing.T, pod corev1.PodSpec, c corev1.Container) KeyFile {
	t.Helper()
	CheckContainer(t, pod, c)
	return checkKeyFile(t, pod, c)
}

// CheckContainer asserts what every exporter container must have, whatever
// its accounts: a pinned image, the metrics port and probes, bounded
// resources, a locked-down security context, and no key in the environment.
func CheckContainer(t *testing.T, pod corev1.PodSpec, c corev1.Container) {
	t.Helper()

	// Image pinned.
	assert.NotEmpty(t, c.Image)
	assert.NotContains(t, c.Image, ":latest")
	assert.Contains(t, c.Image, ":")

	// Port and probes.
	require.Len(t, c.Ports, 1)
	assert.Equal(t, MetricsPortName, c.Ports[0].Name)
	assert.EqualValues(t, MetricsPort, c.Ports[0].ContainerPort)
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
		assert.Equal(t, MetricsPortName, p.probe.HTTPGet.Port.String(), p.name)
		assert.Positive(t, p.probe.PeriodSeconds, p.name)
		assert.Positive(t, p.probe.TimeoutSeconds, p.name)
	}

	// Resources. Container logs count against ephemeral storage.
	for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage} {
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

	for _, e := range c.Env {
		assert.NotEqual(t, "APIVIDEO_API_KEY", e.Name, "the key belongs in a file, not the environment")
	}
}

// checkKeyFile asserts that --apivideo.api-key-file is a file of a Secret
// volume mounted read-only, and returns that Secret and key.
func checkKeyFile(t *testing.T, pod corev1.PodSpec, c corev1.Container) KeyFile {
	t.Helper()
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
	if vol.Secret.DefaultMode != nil {
		assert.Zero(t, *vol.Secret.DefaultMode&0o007, "the key file must not be world-readable")
	}
	rel := strings.TrimPrefix(keyFile, strings.TrimSuffix(mount.MountPath, "/")+"/")
	key := rel
	if len(vol.Secret.Items) > 0 {
		key = ""
		for _, item := range vol.Secret.Items {
			if item.Path == rel {
				key = item.Key
			}
		}
		require.NotEmpty(t, key, "%s is not a file of the secret volume", keyFile)
	}
	return KeyFile{Secret: vol.Secret.SecretName, Key: key}
}

// SecretHasKey asserts that a Secret holds key.
func SecretHasKey(t *testing.T, s *corev1.Secret, key string) {
	t.Helper()
	_, inData := s.Data[key]
	_, inString := s.StringData[key]
	assert.True(t, inData || inString, "secret %s has no key %s", s.Name, key)
}

// CheckNetworkPolicy asserts that np selects d's pods, admits ingress only
// to the metrics port and egress only to DNS and HTTPS.
func CheckNetworkPolicy(t *testing.T, np *networkingv1.NetworkPolicy, d *appsv1.Deployment) {
	t.Helper()
	require.NotNil(t, d)
	sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
	require.NoError(t, err)
	assert.True(t, sel.Matches(labels.Set(d.Spec.Template.Labels)), "the policy does not select the exporter")
	assert.ElementsMatch(t, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}, np.Spec.PolicyTypes)

	require.Len(t, np.Spec.Ingress, 1)
	require.Len(t, np.Spec.Ingress[0].Ports, 1)
	assert.Equal(t, intstr.FromString(MetricsPortName), *np.Spec.Ingress[0].Ports[0].Port)

	ports := map[string]bool{}
	for _, rule := range np.Spec.Egress {
		require.NotEmpty(t, rule.To, "egress to anywhere")
		for _, p := range rule.Ports {
			require.NotNil(t, p.Protocol)
			require.NotNil(t, p.Port)
			ports[string(*p.Protocol)+"/"+p.Port.String()] = true
		}
	}
	assert.Equal(t, map[string]bool{"UDP/53": true, "TCP/53": true, "TCP/443": true}, ports)
}
