package testsupport

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildPath string
	buildErr  error
)

// ExporterBinary builds the exporter once per test binary and returns its
// path. Main removes it when the tests end.
func ExporterBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "apivideo_exporter-test-")
		if buildErr == nil {
			buildPath, buildErr = BuildExporter(buildDir)
		}
	})
	if buildErr != nil {
		t.Fatalf("building the exporter: %v", buildErr)
	}
	return buildPath
}

// Main runs the tests and then removes what ExporterBinary built. Call it
// from TestMain: os.Exit(testsupport.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	return code
}

// Exporter is an exporter process started by StartExporter.
type Exporter struct {
	// URL is the exporter's base URL, http://127.0.0.1:port.
	URL string
	// Cmd is the running process.
	Cmd *exec.Cmd

	stderr  *SyncBuffer
	exited  chan struct{}
	exitErr error
}

// StartExporter runs the exporter with args and only the environment env,
// listening on a loopback port of the kernel's choosing (read back from its
// "Listening on" line, so that no other process can take the port in
// between), and waits until it answers /-/ready (a 401 counts: basic auth
// may be on). It is stopped when the test ends, and its log is shown if the
// test failed.
func StartExporter(t testing.TB, env []string, args ...string) *Exporter {
	t.Helper()
	cmd := exec.Command(ExporterBinary(t), append([]string{"--web.listen-address=127.0.0.1:0"}, args...)...)
	cmd.Env = env
	e := &Exporter{Cmd: cmd, stderr: &SyncBuffer{}, exited: make(chan struct{})}
	cmd.Stderr = e.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		e.exitErr = cmd.Wait()
		close(e.exited)
	}()
	t.Cleanup(func() {
		e.Stop()
		if t.Failed() {
			t.Logf("exporter log:\n%s", e.Log())
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go func() {
		select {
		case <-e.exited:
			cancel()
		case <-ctx.Done():
		}
	}()
	fail := func(err error) {
		t.Helper()
		select {
		case <-e.exited:
			t.Fatalf("exporter exited: %v\n%s", e.exitErr, e.Log())
		default:
			t.Fatalf("%v\n%s", err, e.Log())
		}
	}
	addr, err := e.listenAddress(ctx)
	if err != nil {
		fail(err)
	}
	e.URL = "http://" + addr
	if err := WaitReady(ctx, http.DefaultClient, e.URL+"/-/ready", http.StatusOK, http.StatusUnauthorized); err != nil {
		fail(err)
	}
	return e
}

var listeningOn = regexp.MustCompile(`msg="Listening on" address=(\S+)`)

// listenAddress waits for the exporter's "Listening on" line and returns
// its address.
func (e *Exporter) listenAddress(ctx context.Context) (string, error) {
	for {
		if m := listeningOn.FindStringSubmatch(e.Log()); m != nil {
			return m[1], nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("no \"Listening on\" line in the exporter's log: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Stop sends SIGTERM, waits for the exit (killing the process after 10 s)
// and returns how it exited. Once it returns, Log holds the whole log.
func (e *Exporter) Stop() error {
	select {
	case <-e.exited:
		return e.exitErr
	default:
	}
	e.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.exited:
	case <-time.After(10 * time.Second):
		e.Cmd.Process.Kill()
		<-e.exited
	}
	return e.exitErr
}

// Log returns what the exporter wrote to stderr. While it runs, lines it
// wrote may still be on their way through the pipe: Stop it first to read
// all of them.
func (e *Exporter) Log() string { return e.stderr.String() }

// PrometheusTool finds prometheus or promtool, which CI installs with
// Debian's prometheus package, or fails the test: it is never skipped.
func PrometheusTool(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, p := range []string{"/usr/bin/" + name, "/usr/local/bin/" + name} {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	t.Fatalf("%s not found in PATH nor /usr/bin: install it with `apt-get install -y prometheus` (Debian)", name)
	return ""
}
