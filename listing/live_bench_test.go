package listing

import (
	"context"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/go-kit/log"
)

var (
	liveScrapes  = flag.Int("live.scrapes", 120, "steady scrapes of BenchmarkLiveAccount after the first up")
	liveDeletes  = flag.Float64("live.deletes", 0.6, "deletions a second in BenchmarkLiveAccount")
	liveVerbose  = flag.Bool("live.v", false, "log every scrape of the live benchmarks")
	firstDeletes = flag.Float64("first.deletes", 0, "deletions a second in BenchmarkFirstReading")
)

// maxScrapesToFirstUp bounds the scrapes a first reading may take.
const maxScrapesToFirstUp = 400

// BenchmarkLiveAccount scrapes the simulated live account of the harness
// (model_test.go) on its simulated clock, as api.video would answer:
// bursts of up to 500 tokens created in one second, tokens created at
// random between them, a ttl mix from a minute to a day plus 10 % that
// never expire, 0.2 to 1 deletions a second anywhere in the list, 50 to
// 150 ms a request, each answer to a page past the end, a scrape every 5
// to 15 s with a 10 s timeout, and a rate limit of 500 requests a minute
// of which the listing may spend half. It reports, per mode and size, the
// share of scrapes up, the window-rule violations (which fail the run),
// the mean and most list requests a scrape, and the mean and longest
// scrape in simulated time, over the scrapes after the first reading.
//
//	go test -run '^$' -bench LiveAccount -benchtime 1x ./listing
func BenchmarkLiveAccount(b *testing.B) {
	for _, tokens := range []int{10_000, 100_000} {
		for _, mode := range []Mode{ModeFull, ModeIncremental, ModeAuto} {
			b.Run(fmt.Sprintf("tokens=%d/mode=%s", tokens, mode), func(b *testing.B) {
				for b.Loop() {
					s := liveSchedule(tokens)
					s.deleteRate = *liveDeletes
					r := runLive(b, mode, s, 1, *liveScrapes)
					r.report(b)
				}
			})
		}
	}
}

// BenchmarkFirstReading lists an account of a million tokens, 20 created a
// second, no bursts and -live.deletes deletions a second (none by default),
// in auto mode under the default rate-limit share:
// how many scrapes and requests the first reading takes, then the share
// of scrapes up and their cost once it is done.
//
//	go test -run '^$' -bench FirstReading -benchtime 1x -timeout 30m ./listing
func BenchmarkFirstReading(b *testing.B) {
	for b.Loop() {
		s := liveSchedule(1_000_000)
		s.burstEvery, s.initialBursts, s.createRate, s.deleteRate = 0, 0, 20, *firstDeletes
		s.neverShare, s.ttls = 0.5, []uint32{86400, 7 * 86400}
		r := runLive(b, ModeAuto, s, 2, *liveScrapes)
		r.report(b)
	}
}

func liveSchedule(tokens int) schedule {
	return schedule{
		initial:        tokens,
		initialBursts:  tokens / 10,
		createRate:     3,
		burstEvery:     60 * time.Second,
		burstMax:       500,
		deleteRate:     0.6,
		neverShare:     0.1,
		latencyMin:     50 * time.Millisecond,
		latencyMax:     150 * time.Millisecond,
		concurrency:    8,
		clockOffset:    50 * time.Millisecond,
		keep:           1000,
		intervalMin:    5 * time.Second,
		intervalMax:    15 * time.Second,
		timeout:        10 * time.Second,
		rateLimitLimit: 500,
	}
}

type liveResult struct {
	firstUp, firstUpRequests int
	up, scrapes              int
	requests                 []int
	walls                    []time.Duration
	// bounds are each steady scrape's ceil(new/100) + 1 + deleted ×
	// log2(pages), from what the account did since the scrape before.
	bounds    []float64
	keptBytes int
}

// runLive scrapes until the first scrape up, then steady more; a
// violation of the window rule fails the benchmark.
func runLive(b *testing.B, mode Mode, s schedule, seed uint64, steady int) liveResult {
	rng := rand.New(rand.NewPCG(seed, 17))
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	acc := newAccount(s, rng, start)
	opts := Options{Mode: mode, Concurrency: s.concurrency, Now: acc.clock, Sleep: acc.sleep}
	if *liveVerbose {
		opts.Logger = log.NewLogfmtLogger(os.Stderr)
	}
	l := New(acc, opts)
	var r liveResult
	spent := 0
	lastCreated, lastDeleted := 0, 0
	for i := 0; r.scrapes < steady; i++ {
		if r.firstUp == 0 && i == maxScrapesToFirstUp {
			b.Fatalf("no scrape up in %d scrapes", i)
		}
		t0 := acc.clock()
		before := len(acc.requests)
		ctx, cancel := context.WithDeadline(context.Background(), t0.Add(s.timeout))
		list, err := l.ListUploadTokens(ctx, s.keep)
		cancel()
		t1 := acc.clock()
		n := len(acc.requests) - before
		spent += n
		if err == nil {
			if werr := acc.checkWindow(list, t0, t1, s.keep); werr != nil {
				b.Fatalf("scrape %d: window rule broken: %v", i, werr)
			}
		}
		if *liveVerbose {
			fmt.Fprintf(os.Stderr, "scrape %d: %d requests, %s, err=%v\n", i, n, t1.Sub(t0), err)
		}
		switch {
		case r.firstUp == 0 && err != nil:
		case r.firstUp == 0:
			r.firstUp, r.firstUpRequests = i+1, spent
		default:
			r.scrapes++
			r.requests = append(r.requests, n)
			acc.mu.Lock()
			created, deleted, pages := acc.created-lastCreated, acc.deleted-lastDeleted, (len(acc.listed)+pageSize-1)/pageSize
			acc.mu.Unlock()
			r.bounds = append(r.bounds, math.Ceil(float64(created)/pageSize)+1+float64(deleted)*math.Log2(float64(max(pages, 2))))
			r.walls = append(r.walls, t1.Sub(t0))
			if err == nil {
				r.up++
			}
		}
		acc.mu.Lock()
		lastCreated, lastDeleted = acc.created, acc.deleted
		acc.mu.Unlock()
		_ = acc.sleep(ctx, s.intervalMin+time.Duration(rng.Int64N(int64(s.intervalMax-s.intervalMin))))
	}
	r.keptBytes = cap(l.inc.known.entries) * 40
	return r
}

func (r liveResult) report(b *testing.B) {
	mean := func(xs []int) float64 {
		t := 0
		for _, x := range xs {
			t += x
		}
		return float64(t) / float64(max(len(xs), 1))
	}
	var wallMean time.Duration
	for _, w := range r.walls {
		wallMean += w / time.Duration(len(r.walls))
	}
	b.ReportMetric(float64(r.firstUp), "scrapes-to-first-up")
	b.ReportMetric(float64(r.firstUpRequests), "requests-to-first-up")
	b.ReportMetric(100*float64(r.up)/float64(max(r.scrapes, 1)), "%up")
	b.ReportMetric(mean(r.requests), "req/scrape")
	bound := 0.0
	for _, x := range r.bounds {
		bound += x / float64(max(len(r.bounds), 1))
	}
	b.ReportMetric(bound, "bound-req/scrape")
	b.ReportMetric(float64(slices.Max(r.requests)), "max-req/scrape")
	b.ReportMetric(wallMean.Seconds(), "s/scrape")
	b.ReportMetric(slices.Max(r.walls).Seconds(), "max-s/scrape")
	b.ReportMetric(float64(r.keptBytes)/(1<<20), "kept-MiB")
}
