package listing

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// upUnder scrapes a simulated account of the schedule in mode, steady
// times after the first scrape up, checking the window rule at each, and
// returns how many were up.
func upUnder(t *testing.T, mode Mode, s schedule, seed uint64, steady int) (up int) {
	t.Helper()
	synctest.Test(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(seed, 29))
		acc := newAccount(s, rng)
		l := New(acc, Options{Mode: mode, Concurrency: s.concurrency, Now: acc.clock, Sleep: acc.sleep})
		firstUp := false
		for i := 0; i < steady+maxScrapesToFirstUp; i++ {
			t0 := acc.clock()
			ctx, cancel := context.WithDeadline(context.Background(), t0.Add(s.timeout))
			list, err := l.ListUploadTokens(ctx, s.keep)
			cancel()
			if err == nil {
				require.NoError(t, acc.checkWindow(list, t0, acc.clock(), s.keep), "%s scrape %d", mode, i)
			}
			switch {
			case !firstUp && err == nil:
				firstUp, steady = true, steady+i+1
			case firstUp && err == nil:
				up++
			}
			if firstUp && i+1 == steady {
				break
			}
			_ = acc.sleep(context.Background(), s.interval(rng))
		}
		require.True(t, firstUp, "%s: no scrape up", mode)
	})
	return up
}

// Under steady deletions of many a second, the incremental listing is up
// as often as the full one: the reading of the whole list it falls back
// on is published.
func TestIncrementalKeepsUpWithSteadyDeletions(t *testing.T) {
	const steady = 30
	for _, rate := range []float64{5, 10, 20} {
		t.Run(fmt.Sprint(rate), func(t *testing.T) {
			s := liveSchedule(5000)
			s.deleteRate = rate
			full := upUnder(t, ModeFull, s, 1, steady)
			inc := upUnder(t, ModeIncremental, s, 1, steady)
			auto := upUnder(t, ModeAuto, s, 1, steady)
			t.Logf("%v deletions/s: full %d, incremental %d, auto %d of %d", rate, full, inc, auto, steady)
			assert.GreaterOrEqual(t, inc, full-steady/10, "incremental against full")
			assert.GreaterOrEqual(t, auto, full-steady/10, "auto against full")
		})
	}
}
