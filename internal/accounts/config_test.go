package accounts

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/apivideo-exporter/apivideo_exporter/apiclient"
)

var testDefaults = Defaults{Concurrency: 8, CacheTTL: 0, Timeout: 10 * time.Second}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name    string
		yaml    string
		want    []Settings
		wantErr string
		invalid bool // the error is ErrInvalid
	}{
		{
			name: "good",
			yaml: `accounts:
  sandbox:
    url: https://sandbox.api.video
    api_key_file: /etc/apivideo/sandbox/api-key
    concurrency: 2
    cache_ttl: 30s
    timeout: 5s
    listing: incremental
  production:
    api_key_env: PRODUCTION_KEY
  no-cache_2:
    api_key_env: K
    cache_ttl: 0s
`,
			want: []Settings{
				{Name: "no-cache_2", URL: apiclient.DefaultURL, KeyEnv: "K", Concurrency: 8, Timeout: 10 * time.Second, Listing: "auto"},
				{Name: "production", URL: apiclient.DefaultURL, KeyEnv: "PRODUCTION_KEY", Concurrency: 8, Timeout: 10 * time.Second, Listing: "auto"},
				{Name: "sandbox", URL: "https://sandbox.api.video", KeyFile: "/etc/apivideo/sandbox/api-key", Concurrency: 2, CacheTTL: 30 * time.Second, Timeout: 5 * time.Second, Listing: "incremental"},
			},
		},
		{
			name:    "unknown field names its line",
			yaml:    "accounts:\n  a:\n    api_key_env: K\n    api_key: secret\n",
			wantErr: "line 4: field api_key not found",
		},
		{
			name:    "unknown top-level field",
			yaml:    "accounts:\n  a:\n    api_key_env: K\nmodules: {}\n",
			wantErr: "line 4: field modules not found",
		},
		{
			name:    "duplicate name",
			yaml:    "accounts:\n  a:\n    api_key_env: K\n  a:\n    api_key_env: L\n",
			wantErr: `line 4: mapping key "a" already defined at line 2`,
		},
		{
			name:    "bad name",
			yaml:    "accounts:\n  ok:\n    api_key_env: K\n  Prod:\n    api_key_env: K\n",
			wantErr: `line 4: account "Prod": the name must match [a-z0-9_-]+`,
			invalid: true,
		},
		{
			name:    "name with a dot",
			yaml:    "accounts:\n  a.b:\n    api_key_env: K\n",
			wantErr: `account "a.b": the name must match`,
			invalid: true,
		},
		{
			name:    "both key sources",
			yaml:    "accounts:\n  a:\n    api_key_env: K\n    api_key_file: /k\n",
			wantErr: `line 2: account "a": set only one of api_key_file and api_key_env`,
			invalid: true,
		},
		{
			name:    "neither key source",
			yaml:    "accounts:\n  a:\n    url: https://sandbox.api.video\n",
			wantErr: `line 2: account "a": set api_key_file or api_key_env`,
			invalid: true,
		},
		{
			name:    "bad url",
			yaml:    "accounts:\n  a:\n    api_key_env: K\n    url: sandbox.api.video\n",
			wantErr: `account "a": url: invalid base URL: "sandbox.api.video" is not an http or https URL`,
			invalid: true,
		},
		{
			name:    "url with the key in it",
			yaml:    "accounts:\n  a:\n    api_key_env: K\n    url: https://key:secret@ws.api.video\n",
			wantErr: "user info is not allowed",
			invalid: true,
		},
		{
			name:    "concurrency out of range",
			yaml:    "accounts:\n  a:\n    api_key_env: K\n    concurrency: 0\n",
			wantErr: "concurrency must be between 1 and 32",
			invalid: true,
		},
		{
			name:    "negative cache_ttl",
			yaml:    "accounts:\n  a:\n    api_key_env: K\n    cache_ttl: -1s\n",
			wantErr: "cache_ttl must not be negative",
			invalid: true,
		},
		{
			name:    "timeout too long",
			yaml:    "accounts:\n  a:\n    api_key_env: K\n    timeout: 6m\n",
			wantErr: "timeout must be between 0 and 5m0s",
			invalid: true,
		},
		{
			name:    "unknown listing",
			yaml:    "accounts:\n  a:\n    api_key_env: K\n    listing: partial\n",
			wantErr: `line 2: account "a": listing must be one of auto, full, incremental, got "partial"`,
			invalid: true,
		},
		{
			name:    "timeout not a duration",
			yaml:    "accounts:\n  a:\n    api_key_env: K\n    timeout: soon\n",
			wantErr: "line 4: cannot unmarshal !!str `soon` into time.Duration",
		},
		{
			name:    "no accounts",
			yaml:    "accounts: {}\n",
			wantErr: "no accounts",
			invalid: true,
		},
		{
			name:    "empty file",
			yaml:    "",
			wantErr: "the file is empty",
			invalid: true,
		},
		{
			name:    "two documents",
			yaml:    "accounts:\n  a:\n    api_key_env: K\n---\naccounts: {}\n",
			wantErr: "more than one YAML document",
			invalid: true,
		},
		{
			name:    "not YAML",
			yaml:    "accounts: [\n",
			wantErr: "yaml:",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse([]byte(tc.yaml), testDefaults)
			if tc.wantErr == "" {
				require.NoError(t, err)
				assert.Equal(t, tc.want, got)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.wantErr)
			assert.NotContains(t, err.Error(), "secret")
			assert.Equal(t, tc.invalid, errors.Is(err, ErrInvalid))
			assert.Nil(t, got)
		})
	}
}

func TestLoadNamesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "accounts.yml")
	require.NoError(t, os.WriteFile(path, []byte("accounts:\n  a:\n    bogus: 1\n"), 0o600))
	_, err := Load(context.Background(), path, testDefaults)
	require.Error(t, err)
	assert.Contains(t, err.Error(), path+": yaml: unmarshal errors:\n  line 3: field bogus not found")

	_, err = Load(context.Background(), filepath.Join(t.TempDir(), "missing.yml"), testDefaults)
	assert.ErrorIs(t, err, os.ErrNotExist)
}

// The Kubernetes example's accounts file is one the exporter accepts.
func TestKubernetesExampleParses(t *testing.T) {
	data, err := os.ReadFile("../../deploy/kubernetes/accounts/accounts.yaml")
	require.NoError(t, err)
	dec := yaml.NewDecoder(bytes.NewReader(data))
	found := false
	for {
		var doc struct {
			Kind string            `yaml:"kind"`
			Data map[string]string `yaml:"data"`
		}
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		if doc.Kind != "ConfigMap" {
			continue
		}
		got, err := Parse([]byte(doc.Data["accounts.yml"]), testDefaults)
		require.NoError(t, err)
		require.Len(t, got, 2)
		assert.Equal(t, "/etc/apivideo/production/api-key", got[0].KeyFile)
		assert.Equal(t, "https://sandbox.api.video", got[1].URL)
		assert.Equal(t, "incremental", got[1].Listing)
		found = true
	}
	assert.True(t, found, "no ConfigMap in the example")
}

// Settings an account leaves out come from the flags' values.
func TestParseDefaults(t *testing.T) {
	defaults := Defaults{Concurrency: 3, CacheTTL: time.Minute, Timeout: 20 * time.Second, Listing: "incremental"}
	got, err := Parse([]byte("accounts:\n  a:\n    api_key_env: K\n  b:\n    api_key_env: K\n    listing: full\n    cache_ttl: 0s\n"), defaults)
	require.NoError(t, err)
	assert.Equal(t, []Settings{
		{Name: "a", URL: apiclient.DefaultURL, KeyEnv: "K", Concurrency: 3, CacheTTL: time.Minute, Timeout: 20 * time.Second, Listing: "incremental"},
		{Name: "b", URL: apiclient.DefaultURL, KeyEnv: "K", Concurrency: 3, Timeout: 20 * time.Second, Listing: "full"},
	}, got)
}
