package apiclient_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apivideo-exporter/apivideo_exporter/apiclient"
)

func TestLoadKey(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
		return path
	}
	for _, tc := range []struct {
		name      string
		file      string
		env       string
		want      string
		wantErr   string
		wantNoKey bool
	}{
		{name: "env", env: "key-1", want: "key-1"},
		{name: "env with a byte-order mark and a newline", env: "\uFEFFkey-1\n", want: "key-1"},
		{name: "env with spaces", env: "  key-1\t", want: "key-1"},
		{name: "env unset", wantErr: "environment variable TEST_API_KEY is unset or empty", wantNoKey: true},
		{name: "env only a byte-order mark", env: "\uFEFF \n", wantErr: "environment variable TEST_API_KEY is unset or empty", wantNoKey: true},
		{name: "file", file: file("plain", "key-2\n"), want: "key-2"},
		{name: "file with a byte-order mark", file: file("bom", "\uFEFFkey-2\r\n"), want: "key-2"},
		{name: "file wins over env", file: file("wins", "key-2"), env: "key-1", want: "key-2"},
		{name: "empty file", file: file("empty", "\n"), wantErr: "is empty", wantNoKey: true},
		{name: "missing file", file: filepath.Join(dir, "missing"), wantErr: "reading API key file"},
		{name: "file over 4 KiB", file: file("big", strings.Repeat("k", 4097)), wantErr: "file too large"},
		{name: "a device", file: "/dev/zero", wantErr: "not a regular file"},
		{name: "a directory", file: dir, wantErr: "not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("TEST_API_KEY", tc.env)
			if tc.env == "" {
				require.NoError(t, os.Unsetenv("TEST_API_KEY"))
			}
			src, err := apiclient.LoadKey(context.Background(), tc.file, "TEST_API_KEY")
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				assert.Equal(t, tc.wantNoKey, errors.Is(err, apiclient.ErrNoAPIKey))
				return
			}
			require.NoError(t, err)
			key, err := src(context.Background())
			require.NoError(t, err)
			assert.Equal(t, tc.want, key)
		})
	}
}

// A key put where the file's path or the variable's name belongs is not
// repeated in the error, which reaches logs and /-/reload.
func TestKeyInPlaceOfAPathIsNotEchoed(t *testing.T) {
	const key = "x8Hk2LmQ9pZr4TvW7yBn3CdF6gJs1aUe"
	for _, tc := range []struct{ file, env string }{{file: key}, {env: key}} {
		_, err := apiclient.LoadKey(context.Background(), tc.file, tc.env)
		require.Error(t, err)
		assert.NotContains(t, err.Error(), key)
		assert.Contains(t, err.Error(), "looks like a key")
	}
}
