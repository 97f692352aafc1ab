package listing

import (
	"bytes"
	"context"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/go-kit/log"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apivideo-exporter/apivideo_exporter/apiclient"
)

func TestClockEstimate(t *testing.T) {
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	// replies returns n replies of an api.video whose clock is offset ahead
	// of ours, each taking latency, made at a random point of it, sent at
	// random phases of api.video's seconds.
	replies := func(e *clockEstimate, n int, offset, latency time.Duration, date func(time.Time) time.Time) {
		rng := rand.New(rand.NewPCG(1, 2))
		for i := range n {
			sent := start.Add(time.Duration(i)*time.Second + time.Duration(rng.Int64N(int64(time.Second))))
			made := sent.Add(time.Duration(rng.Int64N(int64(latency))))
			e.observe(sent, sent.Add(latency), date(made.Add(offset)))
		}
	}
	for _, tc := range []struct {
		name     string
		replies  int
		offset   time.Duration
		latency  time.Duration
		assumed  bool // bounds are assumedClock
		outside  bool
		maxWidth time.Duration
		rounded  bool // Date rounded to the nearest second, not truncated
	}{
		{"too few replies", minClockSamples - 1, 40 * time.Millisecond, 100 * time.Millisecond, true, false, 0, false},
		{"clocks agree", 200, 0, 100 * time.Millisecond, false, false, 170 * time.Millisecond, false},
		{"api.video ahead", 200, 180 * time.Millisecond, 100 * time.Millisecond, false, false, 170 * time.Millisecond, false},
		{"api.video behind", 200, -200 * time.Millisecond, 50 * time.Millisecond, false, false, 120 * time.Millisecond, false},
		{"slow replies", 200, 30 * time.Millisecond, 600 * time.Millisecond, false, false, assumedClock.width(), false},
		{"near the assumed offset", 200, 230 * time.Millisecond, 100 * time.Millisecond, true, false, 0, false},
		{"further than assumed", 200, 2 * time.Second, 100 * time.Millisecond, true, true, 0, false},
		{"rounded dates", 200, 0, 100 * time.Millisecond, true, true, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var e clockEstimate
			date := func(t time.Time) time.Time { return t.Truncate(time.Second) }
			if tc.rounded {
				date = func(t time.Time) time.Time { return t.Round(time.Second) }
			}
			replies(&e, tc.replies, tc.offset, tc.latency, date)
			b, outside := e.bounds()
			assert.Equal(t, tc.outside, outside, "outside")
			if tc.assumed {
				assert.Equal(t, assumedClock, b)
				return
			}
			assert.LessOrEqual(t, b.lo, tc.offset, "bounds %+v", b)
			assert.GreaterOrEqual(t, b.hi, tc.offset, "bounds %+v", b)
			assert.GreaterOrEqual(t, b.lo, assumedClock.lo, "bounds %+v", b)
			assert.LessOrEqual(t, b.hi, assumedClock.hi, "bounds %+v", b)
			assert.LessOrEqual(t, b.width(), tc.maxWidth, "bounds %+v", b)
		})
	}
}

// Replies whose dates contradict each other, or a step of our wall clock,
// drop what the estimate had learnt.
func TestClockEstimateForgets(t *testing.T) {
	assert.Less(t, wallStep(time.Now(), time.Now().Add(time.Minute)), maxClockStep, "no step of the wall clock")
	start := time.Now()
	var e clockEstimate
	for i := range minClockSamples {
		sent := start.Add(time.Duration(i)*1300*time.Millisecond + 100*time.Millisecond)
		e.observe(sent, sent.Add(50*time.Millisecond), sent.Round(0).Truncate(time.Second))
	}
	b, _ := e.bounds()
	assert.NotEqual(t, assumedClock, b)

	// A reply dated ten seconds later than the others allow.
	sent := start.Add(time.Minute)
	e.observe(sent, sent.Add(50*time.Millisecond), sent.Round(0).Add(10*time.Second).Truncate(time.Second))
	b, _ = e.bounds()
	assert.Equal(t, assumedClock, b, "contradicting replies")
	assert.Empty(t, e.samples)

	for i := range minClockSamples {
		sent := start.Add(2*time.Minute + time.Duration(i)*1300*time.Millisecond)
		e.observe(sent, sent.Add(50*time.Millisecond), sent.Round(0).Truncate(time.Second))
	}
	// Our wall clock steps, against the monotonic one.
	e.wallStep = func(base, t time.Time) time.Duration { return time.Second }
	sent = start.Add(3 * time.Minute)
	e.observe(sent, sent.Add(50*time.Millisecond), sent.Round(0).Truncate(time.Second))
	assert.Len(t, e.samples, 1, "samples before the step dropped")
}

// Replies dated by a clock far from ours leave the listing to the assumed
// offset, and say so once.
func TestFarClockIsSaidOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		acc := newAccount(stillSchedule(3000), rand.New(rand.NewPCG(5, 6)))
		skewed := pagerFunc(func(ctx context.Context, number, size int) (*apiclient.Page, error) {
			p, err := acc.Page(ctx, number, size)
			if err == nil {
				p.Date = p.Date.Add(2 * time.Second)
			}
			return p, err
		})
		var logged bytes.Buffer
		l := New(skewed, Options{Mode: ModeFull, Concurrency: 4, Now: acc.clock, Sleep: acc.sleep, Logger: log.NewLogfmtLogger(&logged)})
		for range 3 {
			list, err := listOnce(t, l, acc, 10*time.Second)
			require.NoError(t, err)
			requireExact(t, acc, list)
			require.NoError(t, acc.sleep(context.Background(), 10*time.Second))
		}
		assert.Equal(t, 1, strings.Count(logged.String(), "check this host's time synchronisation"), logged.String())
		assert.Equal(t, assumedClock, l.reader(time.Now()).clock)
	})
}
