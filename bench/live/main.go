// Command live runs the exporter binary as a user would, with its default
// flags, against a live fake account: tokens created every second and in
// bursts of hundreds within one second, expiring, deleted at random, a
// rate limit of 500 requests a minute enforced, and a page past the end
// answered each documented way in turn (an empty page, 404, 400, the last
// page). It scrapes /metrics as Prometheus does, announcing a 10 s scrape
// timeout, and prints for each answer past the end the share of scrapes
// up and the scrapes whose published count breaks the window rule: fewer
// than the tokens listed both before and after the scrape, or more than
// those listed before or after it.
//
//	go run ./bench/live -tokens 10000 -duration 2m
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/apivideo-exporter/apivideo_exporter/internal/apimodel"
	"github.com/apivideo-exporter/apivideo_exporter/internal/fakeapi"
	"github.com/apivideo-exporter/apivideo_exporter/internal/testsupport"
)

func main() {
	tokens := flag.Int("tokens", 10000, "tokens in the account at the start")
	duration := flag.Duration("duration", 2*time.Minute, "scraping time for each answer past the end")
	deletes := flag.Float64("deletes", 0.6, "deletions a second")
	burstMax := flag.Int("burst", 500, "most tokens of a burst, created within one second about every minute")
	verbose = flag.Bool("v", false, "print every scrape")
	logLevel = flag.String("log.level", "warn", "the exporter's --log.level")
	only = flag.String("past-end", "", "run only this answer past the end: empty, 404, 400 or last")
	flag.Parse()
	dir, err := os.MkdirTemp("", "live")
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(dir)
	bin, err := testsupport.BuildExporter(dir)
	if err != nil {
		fail(err)
	}
	fmt.Println("| page past the end | scrapes | up | published count outside the window rule |")
	fmt.Println("| --- | --- | --- | --- |")
	for _, pastEnd := range []struct {
		name string
		kind apimodel.PastEnd
		flag string
	}{{"empty page", apimodel.PastEndEmpty, "empty"}, {"404", apimodel.PastEnd404, "404"}, {"400", apimodel.PastEnd400, "400"}, {"last page", apimodel.PastEndLast, "last"}} {
		if *only != "" && *only != pastEnd.flag {
			continue
		}
		scrapes, up, outside, err := run(bin, *tokens, *deletes, *burstMax, pastEnd.kind, *duration)
		if err != nil {
			fail(err)
		}
		fmt.Printf("| %s | %d | %d (%.0f %%) | %d |\n", pastEnd.name, scrapes, up, 100*float64(up)/float64(max(scrapes, 1)), outside)
	}
}

var (
	verbose  *bool
	logLevel *string
	only     *string
)

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

func run(bin string, tokens int, deletes float64, burstMax int, pastEnd apimodel.PastEnd, duration time.Duration) (scrapes, up, outside int, err error) {
	fake := fakeapi.NewServer(fakeapi.Options{
		Tokens: tokens, WithoutExpiry: tokens / 10, Seed: 1, Spread: time.Hour, TTLs: []int{60, 300, 3600, 86400},
		Churn:   apimodel.Churn{CreatePerSecond: 3, TTLs: []int{60, 300, 3600, 86400, 0}, DeletePerSecond: deletes},
		PastEnd: pastEnd, Latency: 100 * time.Millisecond, RateLimit: 500, EnforceRateLimit: true,
	})
	defer fake.Close()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		// Bursts: hundreds of tokens created within one second.
		rng := rand.New(rand.NewPCG(2, 3))
		for {
			select {
			case <-stop:
				return
			case <-time.After(30*time.Second + time.Duration(rng.Int64N(int64(60*time.Second)))):
				fake.AddTokens(1+rng.IntN(burstMax), []int{300, 3600, 0}[rng.IntN(3)])
			}
		}
	}()

	addr, err := testsupport.FreeAddress()
	if err != nil {
		return 0, 0, 0, err
	}
	cmd := exec.Command(bin, "--web.listen-address="+addr, "--apivideo.url="+fake.URL, "--log.level="+*logLevel)
	cmd.Env = []string{"APIVIDEO_API_KEY=" + fake.APIKey()}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return 0, 0, 0, err
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	ready, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := testsupport.WaitReady(ready, http.DefaultClient, "http://"+addr+"/-/ready"); err != nil {
		return 0, 0, 0, err
	}
	rng := rand.New(rand.NewPCG(4, 5))
	for end := time.Now().Add(duration); time.Now().Before(end); {
		before := tokenSet(fake)
		start := time.Now()
		active, ok, err := scrape("http://" + addr + "/metrics")
		wall := time.Since(start)
		after := tokenSet(fake)
		if err != nil {
			return 0, 0, 0, err
		}
		// The window rule in counts: at least the tokens listed both
		// before and after the scrape (active throughout), at most those
		// listed before or after (active at some instant of it, but for
		// tokens both created and deleted during the scrape).
		throughout, some := 0, len(after)
		for token := range before {
			if after[token] {
				throughout++
			} else {
				some++
			}
		}
		scrapes++
		if *verbose {
			fmt.Fprintf(os.Stderr, "scrape %d (%s): up=%t published %d, active throughout %d, at some instant %d\n", scrapes, wall.Round(time.Millisecond), ok, active, throughout, some)
		}
		if ok {
			up++
			if active < throughout || active > some {
				outside++
			}
		}
		time.Sleep(5*time.Second + time.Duration(rng.Int64N(int64(10*time.Second))))
	}
	return scrapes, up, outside, nil
}

// tokenSet is the tokens the fake lists now.
func tokenSet(fake *fakeapi.Server) map[string]bool {
	set := map[string]bool{}
	for _, t := range fake.Tokens() {
		set[t.Token] = true
	}
	return set
}

// scrape reads apivideo_up and apivideo_upload_tokens_active.
func scrape(url string) (active int, up bool, err error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, false, err
	}
	req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", "10")
	resp, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
	if err != nil {
		return 0, false, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		switch {
		case !ok:
		case name == "apivideo_up":
			up = value == "1"
		case name == "apivideo_upload_tokens_active":
			f, _ := strconv.ParseFloat(value, 64)
			active = int(f)
		}
	}
	return active, up, sc.Err()
}
