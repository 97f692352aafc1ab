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
	"testing/synctest"
	"time"

	"github.com/go-kit/log"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	liveTokens  = flag.Int("live.tokens", 10_000, "tokens of the account of TestLiveAccount")
	liveScrapes = flag.Int("live.scrapes", 30, "steady scrapes of TestLiveAccount and TestFirstReading after the first up")
	liveDeletes = flag.Float64("live.deletes", 0.2, "deletions a second in TestLiveAccount")
	liveWantUp  = flag.Float64("live.want-up", 95, "per cent of steady scrapes TestLiveAccount and TestFirstReading want up; 0 to report only")
	liveVerbose = flag.Bool("live.v", false, "log every scrape of the live tests")
	firstTokens = flag.Int("first.tokens", 100_000, "tokens of the account of TestFirstReading")
	firstDelete = flag.Float64("first.deletes", 0, "deletions a second in TestFirstReading")
)

// maxScrapesToFirstUp bounds the scrapes a first reading may take.
const maxScrapesToFirstUp = 400

// TestLiveAccount scrapes the simulated live account of the harness
// (model_test.go), as api.video would answer: bursts of up to 500 tokens
// created in one second, tokens created at random between them, a ttl mix
// from a minute to a day plus 10 % that never expire, -live.deletes
// deletions a second anywhere in the list, 50 to 150 ms a request, each
// answer to a page past the end, a scrape every 5 to 15 s with a 10 s
// timeout, and a rate limit of 500 requests a minute of which the listing
// may spend half. In auto and incremental mode it checks the window rule
// at every scrape and the share of steady scrapes up, and logs the
// figures of docs/listing.md: the scrapes and requests to the first up,
// the share up, the mean and most list requests a scrape against the
// bound, and the mean and longest scrape.
//
//	go test ./listing -run TestLiveAccount -v -timeout 60m -args -live.tokens=100000 -live.scrapes=120 -live.want-up=0
func TestLiveAccount(t *testing.T) {
	for _, mode := range []Mode{ModeIncremental, ModeAuto} {
		t.Run(mode.String(), func(t *testing.T) {
			s := liveSchedule(*liveTokens)
			s.deleteRate = *liveDeletes
			r := runLive(t, mode, s, 1, *liveScrapes)
			t.Logf("tokens=%d deletes=%v mode=%s: %s", *liveTokens, *liveDeletes, mode, r)
			assert.GreaterOrEqual(t, r.upShare(), *liveWantUp, "per cent of steady scrapes up")
		})
	}
}

// TestFirstReading lists an account of -first.tokens tokens, 20 created a
// second, no bursts and -first.deletes deletions a second, in auto mode
// under the default rate-limit share: the first reading must end, and the
// steady scrapes after it be up. It logs how many scrapes and requests the
// first reading took, then the share up and the cost of the steady ones.
//
//	go test ./listing -run TestFirstReading -v -timeout 60m -args -first.tokens=1000000 -live.scrapes=30
func TestFirstReading(t *testing.T) {
	s := liveSchedule(*firstTokens)
	s.burstEvery, s.initialBursts, s.createRate, s.deleteRate = 0, 0, 20, *firstDelete
	s.neverShare, s.ttls = 0.5, []uint32{86400, 7 * 86400}
	r := runLive(t, ModeAuto, s, 2, *liveScrapes)
	t.Logf("tokens=%d deletes=%v: %s", *firstTokens, *firstDelete, r)
	assert.GreaterOrEqual(t, r.upShare(), *liveWantUp, "per cent of steady scrapes up")
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

// runLive scrapes, in a bubble of its own, until the first scrape up, then
// steady more; a violation of the window rule fails the test.
func runLive(t *testing.T, mode Mode, s schedule, seed uint64, steady int) (r liveResult) {
	synctest.Test(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(seed, 17))
		acc := newAccount(s, rng)
		opts := Options{Mode: mode, Concurrency: s.concurrency, Now: acc.clock, Sleep: acc.sleep}
		if *liveVerbose {
			opts.Logger = log.NewLogfmtLogger(os.Stderr)
		}
		l := New(acc, opts)
		spent := 0
		lastCreated, lastDeleted := 0, 0
		for i := 0; r.scrapes < steady; i++ {
			if r.firstUp == 0 && i == maxScrapesToFirstUp {
				t.Fatalf("no scrape up in %d scrapes", i)
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
				require.NoError(t, acc.checkWindow(list, t0, t1, s.keep), "scrape %d: window rule", i)
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
				created, deleted, pages := acc.created-lastCreated, acc.deleted-lastDeleted, (len(acc.listed)+pageSize-1)/pageSize
				r.bounds = append(r.bounds, math.Ceil(float64(created)/pageSize)+1+float64(deleted)*math.Log2(float64(max(pages, 2))))
				r.walls = append(r.walls, t1.Sub(t0))
				if err == nil {
					r.up++
				}
			}
			lastCreated, lastDeleted = acc.created, acc.deleted
			_ = acc.sleep(context.Background(), s.interval(rng))
		}
		r.keptBytes = cap(l.inc.known.entries) * 40
	})
	return r
}

func (r liveResult) upShare() float64 { return 100 * float64(r.up) / float64(max(r.scrapes, 1)) }

// String gives the figures of docs/listing.md.
func (r liveResult) String() string {
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
	bound := 0.0
	for _, x := range r.bounds {
		bound += x / float64(max(len(r.bounds), 1))
	}
	return fmt.Sprintf("%d scrapes and %d requests to the first up; then %d of %d up (%.1f %%), %.1f requests a scrape (bound %.1f, most %d), %.2f s a scrape (longest %.2f s), %.1f MiB kept",
		r.firstUp, r.firstUpRequests, r.up, r.scrapes, r.upShare(), mean(r.requests), bound, slices.Max(r.requests),
		wallMean.Seconds(), slices.Max(r.walls).Seconds(), float64(r.keptBytes)/(1<<20))
}
