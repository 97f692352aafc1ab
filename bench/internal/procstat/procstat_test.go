package procstat

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseStatus(t *testing.T) {
	for _, tc := range []struct {
		name     string
		status   string
		rss, hwm int64
		wantErr  bool
	}{
		{name: "both", status: "Name:\tapivideo\nVmHWM:\t   52840 kB\nVmRSS:\t   51200 kB\nThreads:\t9\n", rss: 51200 << 10, hwm: 52840 << 10},
		{name: "no VmHWM", status: "Name:\tx\nVmRSS:\t 10 kB\n", wantErr: true},
		{name: "not a number", status: "VmRSS:\tlots kB\nVmHWM:\t1 kB\n", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rss, hwm, err := parseStatus([]byte(tc.status))
			if tc.wantErr {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.rss, rss)
			assert.Equal(t, tc.hwm, hwm)
		})
	}
}

func TestParseStat(t *testing.T) {
	for _, tc := range []struct {
		name    string
		stat    string
		want    int64
		wantErr bool
	}{
		{name: "plain", stat: "42 (apivideo_expo) S 1 42 42 0 -1 4194560 100 0 0 0 17 5 0 0 20 0 9 0", want: 22},
		{name: "name with spaces and parentheses", stat: "42 (a) b (c) R 1 42 42 0 -1 0 0 0 0 0 300 12 0 0 20 0 1 0", want: 312},
		{name: "truncated", stat: "42 (x) S 1 42", wantErr: true},
		{name: "no name", stat: "garbage", wantErr: true},
		{name: "utime not a number", stat: "42 (x) S 1 42 42 0 -1 0 0 0 0 0 x 1 0 0 20 0 1 0", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStat(tc.stat)
			if tc.wantErr {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestOwnProcess(t *testing.T) {
	rss, hwm, err := Memory(os.Getpid())
	require.NoError(t, err)
	assert.Positive(t, rss)
	assert.GreaterOrEqual(t, hwm, rss)
	_, err = CPUTicks(os.Getpid())
	require.NoError(t, err)
	assert.Positive(t, ClockTicks())
}
