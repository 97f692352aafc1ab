// Package testsupport holds what the exporter's tests, benchmarks and
// bench/measure share: building and running the exporter binary, free
// ports, readiness polling, and a scrape as Prometheus sends it.
package testsupport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// PrometheusAccept is the Accept header Prometheus 3 sends with a scrape;
// Go's transport adds gzip.
const PrometheusAccept = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5," +
	"application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3," +
	"text/plain;version=0.0.4;q=0.2,*/*;q=0.1"

// Discard is a ResponseWriter that counts the body and drops it.
type Discard struct {
	Head   http.Header
	Status int
	Bytes  int64
}

// NewDiscard returns an empty Discard.
func NewDiscard() *Discard { return &Discard{Head: http.Header{}} }

func (d *Discard) Header() http.Header  { return d.Head }
func (d *Discard) WriteHeader(code int) { d.Status = code }
func (d *Discard) Write(p []byte) (int, error) {
	d.Bytes += int64(len(p))
	return len(p), nil
}

// FreeAddress returns a loopback address that was free a moment ago. Bind
// it soon: another process may take it.
func FreeAddress() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// RefusingAddress returns a loopback address where connections are refused,
// and a function to release it. The port stays bound, without listening, so
// that no other process can start listening there in the meantime.
func RefusingAddress() (addr string, release func(), err error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		return "", nil, err
	}
	syscall.CloseOnExec(fd)
	release = func() { syscall.Close(fd) }
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		release()
		return "", nil, err
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		release()
		return "", nil, err
	}
	return fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port), release, nil
}

// WaitReady polls url until it answers with one of statuses (200 when none
// is given) or ctx ends.
func WaitReady(ctx context.Context, client *http.Client, url string, statuses ...int) error {
	if len(statuses) == 0 {
		statuses = []int{http.StatusOK}
	}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			for _, s := range statuses {
				if resp.StatusCode == s {
					return nil
				}
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w (last answer: %v)", url, ctx.Err(), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// ModuleRoot is the directory of the exporter's go.mod.
func ModuleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside the exporter's module")
	}
	return filepath.Dir(mod), nil
}

// BuildExporter builds the exporter into dir and returns the binary's path.
func BuildExporter(dir string) (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "apivideo_exporter")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %w\n%s", err, out)
	}
	return bin, nil
}

// SyncBuffer collects a process's output while it runs.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// SmallSendBuffers gives the connections l accepts a 16 KiB send buffer, so
// that an answer stalls on a client that does not read within a few of its
// writes, not after the several MB the kernel would otherwise buffer.
func SmallSendBuffers(l net.Listener) net.Listener { return smallSendBuffers{l} }

type smallSendBuffers struct{ net.Listener }

func (l smallSendBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(16 << 10)
	}
	return c, err
}

// GetStatuses GETs url n times at once and sends each answer's status on
// the returned channel, 0 for a request that failed.
func GetStatuses(url string, n int) <-chan int {
	codes := make(chan int, n)
	for range n {
		go func() {
			resp, err := http.Get(url)
			if err != nil {
				codes <- 0
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	return codes
}
