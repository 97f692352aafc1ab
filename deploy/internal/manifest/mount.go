package manifest

import (
	"path"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
)

// MountedFile is what backs a file a container sees: a key of a Secret or
// of a ConfigMap.
type MountedFile struct {
	Kind, Name, Key string
	Mode            *int32
}

// MountedFiles returns the files of the container's Secret, ConfigMap and
// projected volumes, by path. A volume without items shows every key of its
// object, so the ConfigMaps rendered beside it are needed.
func MountedFiles(t *testing.T, pod corev1.PodSpec, c corev1.Container, configMaps []*corev1.ConfigMap) map[string]MountedFile {
	t.Helper()
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
	}
	files := map[string]MountedFile{}
	add := func(dir string, items []corev1.KeyToPath, src MountedFile, keys []string) {
		if len(items) == 0 {
			for _, k := range keys {
				src.Key = k
				files[path.Join(dir, k)] = src
			}
			return
		}
		for _, it := range items {
			s := src
			s.Key = it.Key
			if it.Mode != nil {
				s.Mode = it.Mode
			}
			files[path.Join(dir, it.Path)] = s
		}
	}
	cmKeys := func(name string) []string {
		for _, cm := range configMaps {
			if cm.Name == name {
				var keys []string
				for k := range cm.Data {
					keys = append(keys, k)
				}
				return keys
			}
		}
		t.Fatalf("ConfigMap %s is mounted but not rendered", name)
		return nil
	}
	for _, m := range c.VolumeMounts {
		v, ok := volumes[m.Name]
		require.True(t, ok, "mount of unknown volume %s", m.Name)
		assert.True(t, m.ReadOnly, "volume %s mounted writable", m.Name)
		switch {
		case v.Secret != nil:
			require.NotEmpty(t, v.Secret.Items, "volume %s: name the key files", m.Name)
			add(m.MountPath, v.Secret.Items, MountedFile{Kind: "Secret", Name: v.Secret.SecretName, Mode: v.Secret.DefaultMode}, nil)
		case v.ConfigMap != nil:
			add(m.MountPath, v.ConfigMap.Items, MountedFile{Kind: "ConfigMap", Name: v.ConfigMap.Name}, cmKeys(v.ConfigMap.Name))
		case v.Projected != nil:
			for _, p := range v.Projected.Sources {
				require.NotNil(t, p.Secret, "volume %s: projected sources are Secrets", m.Name)
				require.NotEmpty(t, p.Secret.Items, "volume %s: name the key files", m.Name)
				add(m.MountPath, p.Secret.Items, MountedFile{Kind: "Secret", Name: p.Secret.Name, Mode: v.Projected.DefaultMode}, nil)
			}
		default:
			t.Fatalf("unexpected volume %s", m.Name)
		}
	}
	return files
}
