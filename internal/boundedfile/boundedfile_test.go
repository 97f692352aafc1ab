//go:build !windows

package boundedfile

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, size int) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, make([]byte, size), 0o600))
		return p
	}
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	for _, tc := range []struct {
		name    string
		path    string
		wantLen int
		wantErr error
	}{
		{"small file", write("key", 44), 44, nil},
		{"at the limit", write("full", 4096), 4096, nil},
		{"over the limit", write("big", 4097), 0, ErrTooLarge},
		{"directory", dir, 0, ErrNotRegular},
		{"device", os.DevNull, 0, ErrNotRegular},
		{"fifo without a writer", fifo, 0, ErrNotRegular},
		{"missing", filepath.Join(dir, "none"), 0, os.ErrNotExist},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			data, err := Read(ctx, tc.path, 4096)
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Len(t, data, tc.wantLen)
		})
	}
}

func TestDevZeroIsRefusedWithoutReading(t *testing.T) {
	_, err := Read(context.Background(), "/dev/zero", 4096)
	require.ErrorIs(t, err, ErrNotRegular)
}

// A read that never returns (a hung network mount) fails each call at its
// deadline, and the calls share the one read in flight.
func TestBlockedReadFailsAtTheDeadlineAndIsShared(t *testing.T) {
	release := make(chan struct{})
	var reads atomic.Int32
	readFile = func(string, int64) ([]byte, error) {
		reads.Add(1)
		<-release
		return []byte("key"), nil
	}
	t.Cleanup(func() { readFile = read })
	r := New("/mnt/hung/key", 4096)
	for range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		_, err := r.Read(ctx)
		cancel()
		require.ErrorIs(t, err, context.DeadlineExceeded)
	}
	assert.Equal(t, int32(1), reads.Load(), "one read in flight, however many calls gave up on it")
	close(release)
	require.Eventually(t, func() bool {
		data, err := r.Read(context.Background())
		return err == nil && string(data) == "key"
	}, 10*time.Second, time.Millisecond, "the file is read again once the mount answers")
}
