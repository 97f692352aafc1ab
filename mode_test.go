package main

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apivideo-exporter/apivideo_exporter/apiclient"
)

func TestMode(t *testing.T) {
	noKey := fmt.Errorf("%w: environment variable APIVIDEO_API_KEY is unset or empty", apiclient.ErrNoAPIKey)
	badFile := errors.New("reading API key file \"/run/key\": open: no such file or directory")
	for _, tc := range []struct {
		name       string
		keyErr     error
		demo       bool
		configFile string
		keyFile    string
		single     bool
		wantErr    string
	}{
		{name: "a key", single: true},
		{name: "a key and an accounts file", configFile: "a.yml", single: true},
		{name: "demo without a key", keyErr: noKey, demo: true, single: true},
		{name: "demo with a broken key file", keyErr: badFile, keyFile: "/run/key", demo: true, single: true},
		{name: "an accounts file alone", keyErr: noKey, configFile: "a.yml"},
		{name: "no key at all", keyErr: noKey, wantErr: "no api.video API key: set the APIVIDEO_API_KEY environment variable"},
		{name: "a key file that fails", keyErr: badFile, keyFile: "/run/key", wantErr: "reading API key file"},
		{name: "a key file that fails beside an accounts file", keyErr: badFile, keyFile: "/run/key", configFile: "a.yml", wantErr: "reading API key file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			single, err := mode(tc.keyErr, tc.demo, tc.configFile, tc.keyFile)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.single, single)
		})
	}
}
