package listing

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A reading spread over scrapes resumes from a run read scrapes ago, since
// when tokens expiring below it have moved the rest of the list down by
// thousands of positions: it must still end, and the listing then stay up.
func TestReadingResumesOnAShrinkingList(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := liveSchedule(40_000)
		s.ttls = []uint32{60, 120, 300, 86400}
		s.deleteRate = 0.2
		rng := rand.New(rand.NewPCG(3, 17))
		acc := newAccount(s, rng)
		l := New(acc, Options{Mode: ModeIncremental, Concurrency: s.concurrency, Now: acc.clock, Sleep: acc.sleep})
		firstUp, up := 0, 0
		const maxToFirstUp, steady = 25, 30
		for i := 0; firstUp == 0 && i < maxToFirstUp || firstUp > 0 && i < firstUp+steady; i++ {
			t0 := acc.clock()
			ctx, cancel := context.WithDeadline(context.Background(), t0.Add(s.timeout))
			list, err := l.ListUploadTokens(ctx, s.keep)
			cancel()
			if err == nil {
				require.NoError(t, acc.checkWindow(list, t0, acc.clock(), s.keep), "scrape %d", i)
				if firstUp == 0 {
					firstUp = i + 1
				} else {
					up++
				}
			}
			_ = acc.sleep(context.Background(), s.interval(rng))
		}
		require.NotZero(t, firstUp, "the first reading did not end in %d scrapes", maxToFirstUp)
		assert.GreaterOrEqual(t, up, steady*9/10, "scrapes up of the %d after the first reading", steady)
	})
}

// A climb towards a run the caller expects near a position reads up to it,
// not on to the end of the list.
func TestClimbStopsAtItsTarget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := liveSchedule(5_000)
		s.createRate, s.burstEvery, s.deleteRate = 0, 0, 0
		rng := rand.New(rand.NewPCG(1, 2))
		acc := newAccount(s, rng)
		l := New(acc, Options{Mode: ModeIncremental, Concurrency: 8, Now: acc.clock, Sleep: acc.sleep})
		rd := l.reader(acc.clock())
		ctx := context.Background()
		base, err := rd.readFrom(ctx, 1000)
		require.NoError(t, err)
		target, err := rd.read(ctx, 1400, 1499)
		require.NoError(t, err)
		before := rd.spent()
		chain, err := rd.climb(ctx, base, func(r *run) bool { return !r.empty() && r.last() >= target.last() }, 1400)
		require.NoError(t, err)
		assert.False(t, atListEnd(chain[len(chain)-1]))
		assert.LessOrEqual(t, rd.spent()-before, 6, "pages read to climb 500 positions, estimated at 400")
	})
}

func TestWindowFromHoldsItsPositionAndReachesAbove(t *testing.T) {
	for lo := range 100_000 {
		number, size := windowFrom(lo)
		start := (number - 1) * size
		require.LessOrEqual(t, start, lo)
		require.GreaterOrEqual(t, start+size-1, lo+pageSize/2-1, "window of position %d: page %d of %d", lo, number, size)
		require.LessOrEqual(t, size, pageSize)
	}
}

func TestWindowBelowHoldsItsPositionAndReachesBelow(t *testing.T) {
	for end := range 100_000 {
		number, size := windowBelow(end)
		start := (number - 1) * size
		require.LessOrEqual(t, start, end-min(end, pageSize/2-1), "window of position %d: page %d of %d", end, number, size)
		require.Greater(t, start+size, end, "window of position %d: page %d of %d", end, number, size)
		require.LessOrEqual(t, size, pageSize)
	}
}

// A burst of more than a page of tokens in the second a scrape starts
// keeps the end of the list from fitting in one read until that second is
// over: the incremental listing waits for it instead of giving up.
func TestBurstInTheCurrentSecond(t *testing.T) {
	for _, burst := range []int{150, 450} {
		t.Run(fmt.Sprint(burst), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				acc, l := syncedIncremental(t, 2000, 7, 5*time.Second)
				now := acc.clock()
				for range burst {
					acc.create(now, false)
				}
				acc.sortListed()
				t0 := acc.clock()
				list, err := listOnce(t, l, acc, 10*time.Second)
				require.NoError(t, err)
				require.NoError(t, acc.checkWindow(list, t0, acc.clock(), 10))
				requireExact(t, acc, list)
				// The burst's pages, a read to count and the audit: no rounds
				// spent on a count that cannot be made, no reading of the
				// whole list (59 and 113 requests when it gave up waiting).
				assert.LessOrEqual(t, list.Requests, 2*(burst/100)+10, "requests")
			})
		})
	}
}

// A list that grew far beyond the kept tokens is read anew, into room made
// for it at once, rather than page by page into the kept tokens.
func TestAListThatGrewFarIsReadAnew(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		acc, l := syncedIncremental(t, 200, 9, 10*time.Second)
		now := acc.clock()
		for i := range 3000 {
			acc.create(now.Add(-time.Duration(i)*time.Millisecond), false)
		}
		acc.sortListed()
		list, err := listOnce(t, l, acc, 10*time.Second)
		require.NoError(t, err)
		requireExact(t, acc, list)
		assert.Equal(t, 1, l.Status().Rereads[reasonMoreTokens], "one reading of the grown list")
	})
}

// syncedIncremental returns a still account of tokens and an incremental
// listing that has read it, idle seconds later.
func syncedIncremental(t *testing.T, tokens int, seed uint64, idle time.Duration) (*account, *Lister) {
	t.Helper()
	acc := newAccount(stillSchedule(tokens), rand.New(rand.NewPCG(seed, seed+1)))
	l := New(acc, Options{Mode: ModeIncremental, Concurrency: 4, Now: acc.clock, Sleep: acc.sleep})
	_, err := listOnce(t, l, acc, 10*time.Second)
	require.NoError(t, err)
	_ = acc.sleep(context.Background(), idle)
	return acc, l
}
