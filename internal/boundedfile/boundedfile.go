// Package boundedfile reads small files that the operator points the
// exporter at (an API key, the accounts file) with bounds: a size limit,
// regular files only, and within the caller's deadline, so that a FIFO, a
// device or a hung network mount fails one call instead of holding it.
package boundedfile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
)

var (
	// ErrTooLarge is a file larger than the limit.
	ErrTooLarge = errors.New("file too large")
	// ErrNotRegular is a path that names a FIFO, a device, a socket or a
	// directory.
	ErrNotRegular = errors.New("not a regular file")
)

// Reader reads one path. Concurrent calls share the read in flight, so a
// file whose read blocks holds one goroutine, however many callers give
// up on it.
type Reader struct {
	path  string
	limit int64

	mu       sync.Mutex
	inFlight *result
}

type result struct {
	done chan struct{}
	data []byte
	err  error
}

// New returns a Reader of path that refuses files over limit bytes.
func New(path string, limit int64) *Reader {
	return &Reader{path: path, limit: limit}
}

// Read reads the file, or returns ctx's error once ctx is done, whatever
// the read is blocked on. The errors do not carry the file's content.
func (r *Reader) Read(ctx context.Context) ([]byte, error) {
	r.mu.Lock()
	res := r.inFlight
	if res == nil {
		res = &result{done: make(chan struct{})}
		r.inFlight = res
		go func() {
			res.data, res.err = readFile(r.path, r.limit)
			r.mu.Lock()
			r.inFlight = nil
			r.mu.Unlock()
			close(res.done)
		}()
	}
	r.mu.Unlock()
	select {
	case <-res.done:
		return res.data, res.err
	case <-ctx.Done():
		return nil, fmt.Errorf("reading %s: %w", r.path, ctx.Err())
	}
}

// Read reads path once, with the bounds of a Reader.
func Read(ctx context.Context, path string, limit int64) ([]byte, error) {
	return New(path, limit).Read(ctx)
}

// readFile is read, but for tests of reads that never return.
var readFile = read

func read(path string, limit int64) ([]byte, error) {
	// Checked before opening: opening a FIFO for reading waits for a writer.
	if fi, err := os.Stat(path); err != nil {
		return nil, err
	} else if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: %w (%s)", path, ErrNotRegular, fi.Mode().Type())
	}
	// Non-blocking, in case it was replaced by a FIFO in between.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: %w (%s)", path, ErrNotRegular, fi.Mode().Type())
	}
	if fi.Size() > limit {
		return nil, fmt.Errorf("%s: %w: %d bytes, more than %d", path, ErrTooLarge, fi.Size(), limit)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: %w: more than %d bytes", path, ErrTooLarge, limit)
	}
	return data, nil
}
