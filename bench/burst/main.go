// Command burst measures the exporter's peak resident memory under a burst
// of concurrent scrapes: it builds the exporter, runs it as its own process
// against a fakeapi fake served from this process, fires -scrapes scrapes
// at once (each on its own connection, as Prometheus does: OpenMetrics,
// gzip), and reports the status codes and the exporter's VmHWM.
//
//	go run ./bench/burst
//	go run ./bench/burst -flags=--web.max-requests=0   # without the in-flight limit
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/apivideo-exporter/apivideo_exporter/bench/internal/procstat"
	"github.com/apivideo-exporter/apivideo_exporter/internal/fakeapi"
	"github.com/apivideo-exporter/apivideo_exporter/internal/testsupport"
)

func main() {
	tokens := flag.Int("tokens", 10000, "tokens in the fake account")
	scrapes := flag.Int("scrapes", 500, "scrapes fired at once")
	rounds := flag.Int("rounds", 3, "bursts, one after the other")
	latency := flag.Duration("latency", 50*time.Millisecond, "fake latency per API request, so that scrapes overlap")
	extra := flag.String("flags", "", "extra exporter flags, space separated")
	flag.Parse()
	if err := run(*tokens, *scrapes, *rounds, *latency, strings.Fields(*extra)); err != nil {
		fmt.Fprintln(os.Stderr, "burst:", err)
		os.Exit(1)
	}
}

func run(tokens, scrapes, rounds int, latency time.Duration, extra []string) error {
	dir, err := os.MkdirTemp("", "burst")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin, err := testsupport.BuildExporter(dir)
	if err != nil {
		return err
	}
	fake := fakeapi.NewServer(fakeapi.Options{Tokens: tokens, WithoutExpiry: tokens / 10, Seed: 1, Latency: latency})
	defer fake.Close()

	addr, err := testsupport.FreeAddress()
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, append([]string{"--web.listen-address=" + addr, "--apivideo.url=" + fake.URL, "--log.level=error"}, extra...)...)
	cmd.Env = []string{"APIVIDEO_API_KEY=" + fake.APIKey()}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
		}
	}()
	url := "http://" + addr + "/metrics"
	ready, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := testsupport.WaitReady(ready, http.DefaultClient, "http://"+addr+"/-/ready"); err != nil {
		return err
	}
	// One scrape first: the login and the first listing.
	if code, err := scrape(http.DefaultClient, url); err != nil || code != http.StatusOK {
		return fmt.Errorf("first scrape: %d %v", code, err)
	}
	time.Sleep(time.Second)
	_, restHWM, err := procstat.Memory(cmd.Process.Pid)
	if err != nil {
		return err
	}

	codes := map[int]int{}
	var walls []time.Duration
	for range rounds {
		var mu sync.Mutex
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range scrapes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// A client of its own: one connection per scrape.
				c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}
				<-start
				t0 := time.Now()
				code, err := scrape(c, url)
				if err != nil {
					code = -1
				}
				mu.Lock()
				codes[code]++
				walls = append(walls, time.Since(t0))
				mu.Unlock()
			}()
		}
		close(start)
		wg.Wait()
	}
	rss, hwm, err := procstat.Memory(cmd.Process.Pid)
	if err != nil {
		return err
	}
	sort.Slice(walls, func(a, b int) bool { return walls[a] < walls[b] })
	var keys []int
	for k := range codes {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	fmt.Printf("exporter flags: %q; %d tokens, %v per API request\n", extra, tokens, latency)
	fmt.Printf("%d bursts of %d concurrent scrapes\n", rounds, scrapes)
	for _, k := range keys {
		fmt.Printf("  HTTP %d: %d\n", k, codes[k])
	}
	fmt.Printf("  scrape wall time: median %v, max %v\n", walls[len(walls)/2].Round(time.Millisecond), walls[len(walls)-1].Round(time.Millisecond))
	fmt.Printf("peak RSS (VmHWM) before the bursts: %.1f MiB; after: %.1f MiB (RSS now %.1f MiB)\n",
		float64(restHWM)/(1<<20), float64(hwm)/(1<<20), float64(rss)/(1<<20))
	return nil
}

func scrape(c *http.Client, url string) (int, error) {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", testsupport.PrometheusAccept)
	req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", "10")
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, err
}
