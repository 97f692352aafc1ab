// Command measure builds the exporter, runs it as its own process against
// an fakeapi fake served from this process, and reports the
// exporter's resident memory and CPU time per scrape, its API cost and its
// scrape wall time against a fake with latency, as a Markdown table.
//
//	go run ./bench/measure
//	go run ./bench/measure -tokens 10000 -big 100000 -scrapes 20
//
// One exporter process is used throughout, against one fake: memory at
// rest, then -tokens tokens (CPU per scrape, requests, logins, RSS), then
// the same listing with -latency per request (wall time against the
// floor), then the fake's tokens are replaced with SetTokens by an account
// of -big tokens (CPU, RSS). With -stalled N, N clients that ask for
// /metrics and never read are held after the -tokens scrapes, while a
// scrape a second checks that Prometheus is still served (RSS, sockets).
// Both accounts are generated with
// Options{Tokens: N, WithoutExpiry: N/10}, created over the last 30 days.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/apivideo-exporter/apivideo_exporter/apiclient"
	"github.com/apivideo-exporter/apivideo_exporter/bench/internal/procstat"
	"github.com/apivideo-exporter/apivideo_exporter/internal/fakeapi"
	"github.com/apivideo-exporter/apivideo_exporter/internal/testsupport"
)

type config struct {
	tokens, big     int
	scrapes, warmup int
	bigScrapes      int
	latency         time.Duration
	latencyScrapes  int
	concurrency     int
	pad             int
	settle          time.Duration
	exporter        string
	extraFlags      string
	extraEnv        string
	stalled         int
	stalledFor      time.Duration
	clkTck          float64
}

func main() {
	var cfg config
	flag.IntVar(&cfg.tokens, "tokens", 10000, "tokens in the account for the CPU and latency measurements")
	flag.IntVar(&cfg.big, "big", 100000, "tokens in the account for the large-scrape memory measurement (0: skip)")
	flag.IntVar(&cfg.scrapes, "scrapes", 20, "measured scrapes of -tokens tokens")
	flag.IntVar(&cfg.warmup, "warmup", 2, "unmeasured scrapes after the first one (which logs in)")
	flag.IntVar(&cfg.bigScrapes, "big-scrapes", 3, "scrapes of -big tokens")
	flag.DurationVar(&cfg.latency, "latency", 50*time.Millisecond, "fake latency per request for the wall-time measurement (0: skip)")
	flag.IntVar(&cfg.latencyScrapes, "latency-scrapes", 5, "scrapes with -latency")
	flag.IntVar(&cfg.concurrency, "concurrency", 0, "--apivideo.concurrency to pass (0: the exporter's default)")
	flag.IntVar(&cfg.pad, "pad", 0, "pad every page of the -tokens account to this many bytes (0: no padding), to measure replies near the body cap")
	flag.DurationVar(&cfg.settle, "settle", 2*time.Second, "wait after start and after each phase before reading RSS")
	flag.StringVar(&cfg.exporter, "exporter", "", "prebuilt exporter binary (default: go build the repository's)")
	flag.StringVar(&cfg.extraFlags, "flags", "", "extra exporter flags, space separated")
	flag.IntVar(&cfg.stalled, "stalled", 0, "clients that ask for /metrics and never read the answer, held after the -tokens scrapes while a scrape a second is made (0: skip)")
	flag.DurationVar(&cfg.stalledFor, "stalled-for", 45*time.Second, "how long the -stalled clients are held")
	flag.StringVar(&cfg.extraEnv, "env", "", "extra exporter environment, space-separated KEY=VALUE (e.g. GOMEMLIMIT=24MiB)")
	flag.Parse()
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "measure:", err)
		os.Exit(1)
	}
}

// scrapeResult is one scrape as the client and the fake saw it.
type scrapeResult struct {
	wall     time.Duration
	cpuMs    float64
	requests int
	logins   int
	bytes    int
}

type scraper struct {
	cfg    config
	url    string
	client *http.Client
	fake   *fakeapi.Server
	pid    int // the exporter's
}

// scrape runs one scrape and checks that it read every token.
func (s *scraper) scrape(wantTokens int) (scrapeResult, error) {
	before := s.fake.Stats()
	t0, err := procstat.CPUTicks(s.pid)
	if err != nil {
		return scrapeResult{}, err
	}
	req, _ := http.NewRequest(http.MethodGet, s.url+"/metrics", nil)
	req.Header.Set("Accept", testsupport.PrometheusAccept)
	req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", "10")
	start := time.Now()
	resp, err := s.client.Do(req)
	if err != nil {
		return scrapeResult{}, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	wall := time.Since(start)
	if err != nil {
		return scrapeResult{}, err
	}
	t1, err := procstat.CPUTicks(s.pid)
	if err != nil {
		return scrapeResult{}, err
	}
	after := s.fake.Stats()
	// OpenMetrics writes 1.0 where the text format writes 1.
	if !regexp.MustCompile(`(?m)^apivideo_up 1(\.0)?$`).Match(body) {
		return scrapeResult{}, errors.New("scrape did not publish apivideo_up 1")
	}
	m := regexp.MustCompile(`(?m)^apivideo_upload_tokens_active (\S+)$`).FindSubmatch(body)
	if active, err := strconv.ParseFloat(string(m[min(len(m)-1, 1)]), 64); len(m) < 2 || err != nil || active != float64(wantTokens) {
		return scrapeResult{}, fmt.Errorf("scrape did not publish apivideo_upload_tokens_active %d: %q", wantTokens, m)
	}
	return scrapeResult{
		wall:     wall,
		cpuMs:    float64(t1-t0) * 1000 / s.cfg.clkTck,
		requests: after.ListRequests - before.ListRequests,
		logins:   after.Logins + after.Refreshes - before.Logins - before.Refreshes,
		bytes:    len(body),
	}, nil
}

// series runs n scrapes and sums them; CPU is read once around the whole
// series (after a short pause for the GC to finish), so that sub-tick
// scrapes still add up.
func (s *scraper) series(n, wantTokens int) (sum scrapeResult, walls []time.Duration, err error) {
	t0, err := procstat.CPUTicks(s.pid)
	if err != nil {
		return sum, nil, err
	}
	for i := 0; i < n; i++ {
		r, err := s.scrape(wantTokens)
		if err != nil {
			return sum, nil, fmt.Errorf("scrape %d of %d: %w", i+1, n, err)
		}
		sum.wall += r.wall
		sum.requests += r.requests
		sum.logins += r.logins
		sum.bytes += r.bytes
		walls = append(walls, r.wall)
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	t1, err := procstat.CPUTicks(s.pid)
	if err != nil {
		return sum, nil, err
	}
	sum.cpuMs = float64(t1-t0) * 1000 / s.cfg.clkTck
	return sum, walls, nil
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func passMiss(ok bool) string {
	if ok {
		return "pass"
	}
	return "**miss**"
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/1e6) }

// The accounts' tokens were created over the last 30 days and live 60 to
// 90 days: none expires during a measurement, so every scrape must count
// them all.
var (
	spread = 30 * 24 * time.Hour
	ttls   = []int{60 * 86400, 75 * 86400, 90 * 86400}
)

func run(cfg config) error {
	cfg.clkTck = procstat.ClockTicks()
	tmp, err := os.MkdirTemp("", "apivideo-measure-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	bin := cfg.exporter
	if bin == "" {
		fmt.Fprintln(os.Stderr, "building the exporter")
		if bin, err = testsupport.BuildExporter(tmp); err != nil {
			return err
		}
	}

	// No rate limit to speak of: the figures are the exporter's own.
	fake := fakeapi.NewServer(fakeapi.Options{Tokens: cfg.tokens, WithoutExpiry: cfg.tokens / 10, Seed: 1, RateLimit: 1 << 30,
		Spread: spread, TTLs: ttls, PadPagesTo: cfg.pad})
	defer fake.Close()
	var bigTokens []fakeapi.TokenInfo
	if cfg.big > 0 {
		gen := fakeapi.NewServer(fakeapi.Options{Tokens: cfg.big, WithoutExpiry: cfg.big / 10, Seed: 2, Spread: spread, TTLs: ttls})
		bigTokens = gen.Tokens()
		gen.Close()
	}

	addr, err := testsupport.FreeAddress()
	if err != nil {
		return err
	}
	args := []string{"--apivideo.url=" + fake.URL, "--web.listen-address=" + addr}
	if cfg.concurrency > 0 {
		args = append(args, "--apivideo.concurrency="+strconv.Itoa(cfg.concurrency))
	}
	args = append(args, strings.Fields(cfg.extraFlags)...)
	logPath := filepath.Join(tmp, "exporter.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "APIVIDEO_API_KEY="+fake.APIKey())
	cmd.Env = append(cmd.Env, strings.Fields(cfg.extraEnv)...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}()
	fail := func(err error) error {
		b, _ := os.ReadFile(logPath)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		return fmt.Errorf("%w\nexporter log (tail):\n%s", err, strings.Join(lines[max(len(lines)-10, 0):], "\n"))
	}

	base := "http://" + addr
	hc := &http.Client{Timeout: time.Minute}
	ready, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := testsupport.WaitReady(ready, hc, base+"/-/ready"); err != nil {
		return fail(err)
	}
	pid := cmd.Process.Pid
	time.Sleep(cfg.settle)
	restRSS, restHWM, err := procstat.Memory(pid)
	if err != nil {
		return fail(err)
	}

	s := &scraper{cfg: cfg, url: base, client: hc, fake: fake, pid: pid}
	conc := cfg.concurrency
	if conc == 0 {
		conc = apiclient.DefaultConcurrency
	}
	pages := max((cfg.tokens+apiclient.MaxPageSize-1)/apiclient.MaxPageSize, 1)

	first, err := s.scrape(cfg.tokens)
	if err != nil {
		return fail(fmt.Errorf("first scrape: %w", err))
	}
	if _, _, err := s.series(cfg.warmup, cfg.tokens); err != nil {
		return fail(err)
	}
	sum, walls, err := s.series(cfg.scrapes, cfg.tokens)
	if err != nil {
		return fail(err)
	}
	time.Sleep(cfg.settle)
	midRSS, midHWM, _ := procstat.Memory(pid)

	var st stalledResult
	if cfg.stalled > 0 {
		if st, err = s.stalledReaders(addr); err != nil {
			return fail(fmt.Errorf("stalled readers: %w", err))
		}
	}

	var latSum scrapeResult
	var latWalls []time.Duration
	floor := cfg.latency * time.Duration(1+int(math.Ceil(float64(pages-1)/float64(conc))))
	if cfg.latency > 0 && cfg.latencyScrapes > 0 {
		fake.SetLatency(cfg.latency)
		latSum, latWalls, err = s.series(cfg.latencyScrapes, cfg.tokens)
		fake.SetLatency(0)
		if err != nil {
			return fail(fmt.Errorf("with latency: %w", err))
		}
	}

	var bigSum scrapeResult
	var bigWalls []time.Duration
	var bigRSS, bigHWM int64
	var bigWarmup int
	bigPages := max((cfg.big+apiclient.MaxPageSize-1)/apiclient.MaxPageSize, 1)
	if cfg.big > 0 && cfg.bigScrapes > 0 {
		fake.SetTokens(bigTokens)
		bigTokens = nil
		// --apivideo.listing=incremental reads a new account of this size
		// over a few scrapes, with apivideo_up 0 until it is done.
		for bigWarmup = 1; bigWarmup <= 20; bigWarmup++ {
			if _, err = s.scrape(cfg.big); err == nil {
				break
			}
		}
		if err != nil {
			return fail(fmt.Errorf("big scrapes: %d scrapes did not read the account: %w", bigWarmup, err))
		}
		bigSum, bigWalls, err = s.series(cfg.bigScrapes, cfg.big)
		if err != nil {
			return fail(fmt.Errorf("big scrapes: %w", err))
		}
		time.Sleep(cfg.settle)
		bigRSS, bigHWM, _ = procstat.Memory(pid)
	}

	// Report.
	fmt.Printf("## Exporter process measurements\n\n")
	fmt.Printf("Machine: %d CPUs (`nproc` %s), %s, %s, %s/%s, CLK_TCK %g.\n",
		runtime.NumCPU(), nproc(), cpuModel(), goVersion(), runtime.GOOS, runtime.GOARCH, cfg.clkTck)
	shown := strings.Join(append(strings.Fields(cfg.extraEnv), args[2:]...), " ")
	if shown == "" {
		shown = "defaults"
	}
	fmt.Printf("Exporter settings: %s (besides --apivideo.url, --web.listen-address and APIVIDEO_API_KEY); the fake runs in the measuring process.\n", shown)
	fmt.Printf("Scrapes as Prometheus makes them (OpenMetrics Accept header, gzip, 10 s scrape timeout).\n")
	fmt.Printf("One exporter process throughout: at rest, then %d tokens, then %s of latency, then %d tokens (fake.SetTokens).\n\n",
		cfg.tokens, cfg.latency, cfg.big)

	n := float64(cfg.scrapes)
	cpuPer := sum.cpuMs / n
	reqPer := float64(sum.requests) / n
	fmt.Printf("| Measurement | Value | Target | Result |\n|---|---|---|---|\n")
	fmt.Printf("| RSS at rest (VmRSS; VmHWM %s) | %s | ≤ 15 MiB | %s |\n", mib(restHWM), mib(restRSS), passMiss(restRSS <= 15<<20))
	fmt.Printf("| First scrape of %d tokens (includes login): wall, CPU | %s, %.0f ms | | |\n", cfg.tokens, ms(first.wall), first.cpuMs)
	fmt.Printf("| First scrape: requests (list + login) | %d + %d | ≤ 1.2 × %d + 1 | %s |\n", first.requests, first.logins, pages, passMiss(float64(first.requests) <= 1.2*float64(pages) && first.logins == 1))
	fmt.Printf("| CPU per scrape of %d tokens (mean of %d, after %d warm-up) | %.1f ms | ≤ 30 ms | %s |\n", cfg.tokens, cfg.scrapes, cfg.warmup, cpuPer, passMiss(cpuPer <= 30))
	fmt.Printf("| Wall per scrape of %d tokens, no latency (median; mean) | %s; %s | | |\n", cfg.tokens, ms(median(walls)), ms(sum.wall/time.Duration(cfg.scrapes)))
	fmt.Printf("| List requests per scrape | %.2f | ≤ 1.2 × %d = 1.2 × ceil(%d/100) | %s |\n", reqPer, pages, cfg.tokens, passMiss(reqPer <= 1.2*float64(pages)))
	fmt.Printf("| Logins during the %d measured scrapes | %d | 0 (one an hour) | %s |\n", cfg.scrapes, sum.logins, passMiss(sum.logins == 0))
	fmt.Printf("| Exposition size (gzip-decoded) | %d B | | |\n", sum.bytes/max(cfg.scrapes, 1))
	fmt.Printf("| RSS after the %d-token scrapes (VmHWM) | %s (%s) | | |\n", cfg.tokens, mib(midRSS), mib(midHWM))
	if cfg.stalled > 0 {
		fmt.Printf("| %d clients stalled on /metrics for %s (identity encoding, 4 KiB receive buffer): scrapes up, one a second | %d of %d | all | %s |\n",
			cfg.stalled, cfg.stalledFor, st.up, st.scrapes, passMiss(st.up == st.scrapes))
		fmt.Printf("| RSS while they stall: highest VmRSS seen (VmHWM after) | %s (%s) | ≤ 64 MiB | %s |\n", mib(st.maxRSS), mib(st.hwm), passMiss(st.hwm <= 64<<20))
		fmt.Printf("| Stalled connections the exporter had closed %s after they were opened (its open sockets) | %d of %d | all | %s |\n",
			cfg.stalledFor, st.closed, cfg.stalled, passMiss(st.closed == cfg.stalled))
	}
	if cfg.latency > 0 && cfg.latencyScrapes > 0 {
		med := median(latWalls)
		limit := floor*5/4 + 30*time.Millisecond
		fmt.Printf("| Wall per scrape with %s latency, %d pages, concurrency %d (median of %d; floor %s) | %s (%.2f x floor) | ≤ 1.25 x floor + 30 ms = %s | %s |\n",
			cfg.latency, pages, conc, cfg.latencyScrapes, ms(floor), ms(med), float64(med)/float64(floor), ms(limit), passMiss(med <= limit))
		fmt.Printf("| CPU per scrape with latency | %.1f ms | | |\n", latSum.cpuMs/float64(cfg.latencyScrapes))
	}
	if cfg.big > 0 && cfg.bigScrapes > 0 {
		fmt.Printf("| Scrapes until the first of %d tokens published apivideo_up 1 | %d | | |\n", cfg.big, bigWarmup)
		fmt.Printf("| Scrape of %d tokens after that: wall (median of %d), CPU, requests | %s, %.0f ms, %.0f | ≤ 1.2 × %d requests | %s |\n",
			cfg.big, cfg.bigScrapes, ms(median(bigWalls)), bigSum.cpuMs/float64(cfg.bigScrapes),
			float64(bigSum.requests)/float64(cfg.bigScrapes), bigPages, passMiss(float64(bigSum.requests) <= 1.2*float64(bigPages*cfg.bigScrapes)))
		fmt.Printf("| RSS after the %d-token scrapes: VmRSS (peak VmHWM) | %s (%s) | peak ≤ 64 MiB | %s |\n", cfg.big, mib(bigRSS), mib(bigHWM), passMiss(bigHWM <= 64<<20))
	}
	return nil
}

// stalledResult is what the scrapes saw while clients stalled.
type stalledResult struct {
	scrapes, up, closed int
	// sockets are the exporter's before the clients connect.
	sockets     int
	maxRSS, hwm int64
}

// stalledReaders opens cfg.stalled connections that ask for /metrics with
// a 4 KiB receive buffer and never read, and scrapes once a second while
// it holds them; then it counts the connections the exporter closed.
func (s *scraper) stalledReaders(addr string) (stalledResult, error) {
	var res stalledResult
	var err error
	if res.sockets, err = sockets(s.pid); err != nil {
		return res, err
	}
	open := func() (net.Conn, error) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return nil, err
		}
		if err := c.(*net.TCPConn).SetReadBuffer(4096); err != nil {
			c.Close()
			return nil, err
		}
		_, err = fmt.Fprintf(c, "GET /metrics HTTP/1.1\r\nHost: exporter\r\nX-Prometheus-Scrape-Timeout-Seconds: 10\r\n\r\n")
		return c, err
	}
	conns := make([]net.Conn, s.cfg.stalled)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	for i := range conns {
		c, err := open()
		if err != nil {
			return res, err
		}
		conns[i] = c
	}
	for end := time.Now().Add(s.cfg.stalledFor); time.Now().Before(end); time.Sleep(time.Second) {
		res.scrapes++
		if _, err := s.scrape(s.cfg.tokens); err == nil {
			res.up++
		}
		if rss, _, err := procstat.Memory(s.pid); err == nil {
			res.maxRSS = max(res.maxRSS, rss)
		}
	}
	_, res.hwm, _ = procstat.Memory(s.pid)
	// The exporter's sockets, against those it had before: the client side
	// of a connection closed with unsent data may never see its end.
	after, err := sockets(s.pid)
	if err != nil {
		return res, err
	}
	res.closed = min(max(res.sockets+s.cfg.stalled-after, 0), s.cfg.stalled)
	return res, nil
}

// sockets counts the open sockets of process pid.
func sockets(pid int) (int, error) {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	fds, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, fd := range fds {
		if target, err := os.Readlink(filepath.Join(dir, fd.Name())); err == nil && strings.HasPrefix(target, "socket:") {
			n++
		}
	}
	return n, nil
}

func nproc() string {
	out, err := exec.Command("nproc").Output()
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(out))
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func goVersion() string {
	out, err := exec.Command("go", "env", "GOVERSION").Output()
	if err != nil {
		return runtime.Version()
	}
	return strings.TrimSpace(string(out))
}
