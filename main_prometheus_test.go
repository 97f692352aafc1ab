//go:build prometheus

package main

import (
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apivideo-exporter/apivideo_exporter/internal/fakeapi"
	"github.com/apivideo-exporter/apivideo_exporter/internal/testsupport"
)

// Prometheus' own checker accepts what the exporter serves.
func TestPromtoolChecksTheExposition(t *testing.T) {
	promtool := testsupport.PrometheusTool(t, "promtool")
	s := fakeapi.NewServer(fakeapi.Options{Tokens: 257, WithoutExpiry: 43, Seed: 21})
	defer s.Close()
	p := testsupport.StartExporter(t, keyEnv(s.APIKey()), "--apivideo.url="+s.URL)
	code, _, body := get(t, p.URL+"/metrics", nil)
	require.Equal(t, http.StatusOK, code)
	check := exec.Command(promtool, "check", "metrics")
	check.Stdin = strings.NewReader(body)
	out, err := check.CombinedOutput()
	assert.NoError(t, err, "promtool check metrics: %s", out)
}
