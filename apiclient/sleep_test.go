package apiclient_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apivideo-exporter/apivideo_exporter/apiclient"
)

func TestSleepEndsWithTheContext(t *testing.T) {
	require.NoError(t, apiclient.Sleep(context.Background(), time.Nanosecond))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.ErrorIs(t, apiclient.Sleep(ctx, time.Hour), context.Canceled)
}
