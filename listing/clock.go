package listing

import (
	"iter"
	"sync"
	"time"
)

const (
	// maxClockOffset is how far api.video's clock and ours are assumed to
	// disagree, either way, until their replies show better: createdAt and
	// expiresAt within it of a read count as either side of it.
	maxClockOffset = 250 * time.Millisecond
	// clockSamples is how many of the latest replies the estimate keeps:
	// enough for some to fall just after one of api.video's second ticks
	// and some just before.
	clockSamples = 256
	// minClockSamples is how many replies the estimate needs before it
	// narrows the assumed offset.
	minClockSamples = 32
	// clockSlack widens an estimate for the grain of our own clock and its
	// drift over the samples kept.
	clockSlack = 10 * time.Millisecond
	// maxClockStep is how far our wall clock may move against our
	// monotonic clock between replies before the samples are dropped: a
	// step of the wall clock (an NTP correction) moves the offset.
	maxClockStep = 5 * time.Millisecond
)

// clockBounds bounds api.video's clock less ours: at our instant t,
// api.video's clock reads between t+lo and t+hi.
type clockBounds struct{ lo, hi time.Duration }

// assumedClock is what is known without an estimate.
var assumedClock = clockBounds{-maxClockOffset, maxClockOffset}

// width is the span of api.video's clock at one instant of ours.
func (b clockBounds) width() time.Duration { return b.hi - b.lo }

// clockEstimate narrows assumedClock from the Date header of api.video's
// replies. A reply sent at s and received at r by our clock, and dated
// second D by api.video's, was made while api.video's clock read within
// [D, D+1) and ours within [s, r]: api.video's clock less ours lies within
// [D-r, D+1-s]. The replies that straddle api.video's second ticks narrow
// the intersection to about a request's time.
type clockEstimate struct {
	mu      sync.Mutex
	samples []clockBounds // a ring of the latest
	next    int
	// base relates our wall clock to our monotonic one when the samples
	// began: a change shows a step of the wall clock, as wallStep (nil:
	// the package's) measures it.
	base     time.Time
	wallStep func(base, t time.Time) time.Duration
}

// observe adds a reply sent at sent, received at received, dated date.
func (e *clockEstimate) observe(sent, received, date time.Time) {
	if date.IsZero() || received.Before(sent) {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	step := e.wallStep
	if step == nil {
		step = wallStep
	}
	if e.base.IsZero() || step(e.base, received) > maxClockStep {
		e.samples, e.next, e.base = e.samples[:0], 0, received
	}
	b := clockBounds{date.Sub(received.Round(0)), date.Add(time.Second).Sub(sent.Round(0))}
	if len(e.samples) < clockSamples {
		e.samples = append(e.samples, b)
		return
	}
	e.samples[e.next] = b
	e.next = (e.next + 1) % clockSamples
}

// wallStep is how far our wall clock moved against our monotonic clock
// between base and t.
func wallStep(base, t time.Time) time.Duration {
	d := t.Round(0).Sub(base.Round(0)) - t.Sub(base)
	return max(d, -d)
}

// bounds returns what the replies show when it lies within assumedClock,
// and assumedClock otherwise: while they are too few, contradict each
// other, or show bounds that reach past it. A Date that is not api.video's
// clock truncated to the second (a proxy's clock, a rounded or cached
// Date) can only show such bounds, or wrong ones; the replies are trusted
// only where they agree with the assumption. Bounds wholly outside it (a
// Date from another clock, or ours or api.video's off) are said.
func (e *clockEstimate) bounds() (b clockBounds, outside bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.samples) < minClockSamples {
		return assumedClock, false
	}
	b = e.samples[0]
	for _, s := range e.samples[1:] {
		b.lo, b.hi = max(b.lo, s.lo), min(b.hi, s.hi)
	}
	if b.lo > b.hi {
		// Replies from clocks that disagree: trust none of them.
		e.samples, e.next = e.samples[:0], 0
		return assumedClock, false
	}
	b.lo, b.hi = b.lo-clockSlack, b.hi+clockSlack
	switch {
	case b.lo > assumedClock.hi || b.hi < assumedClock.lo:
		return assumedClock, true
	case b.lo < assumedClock.lo || b.hi > assumedClock.hi:
		return assumedClock, false
	}
	return b, false
}

// clearOf returns how long to wait so that a read sent now and taking
// about latency is clear of each of expiries (0: never expires), on
// api.video's clock as b bounds it; 0 when it already is.
func (b clockBounds) clearOf(now time.Time, latency time.Duration, expiries iter.Seq[uint32]) time.Duration {
	if latency <= 0 {
		latency = defaultLatency
	}
	earliest, latest := now.Add(b.lo).Unix(), now.Add(latency+b.hi).Unix()
	if b.width()+latency >= time.Second {
		// No read can be clear of a second boundary: read, and account
		// for the uncertainty after.
		return 0
	}
	next := int64(0)
	for e := range expiries {
		if x := int64(e); x > earliest && x <= latest && (next == 0 || x < next) {
			next = x
		}
	}
	if next == 0 {
		return 0
	}
	// Once that second has certainly begun, the next boundary is more
	// than the read's time away.
	return b.certainlyPast(next).Sub(now)
}

// untilComplete is how long from now until second c is certainly over, so
// that secondBefore counts it complete; 0 when it already is.
func (b clockBounds) untilComplete(c uint32, now time.Time) time.Duration {
	return max(b.certainlyPast(int64(c)+1).Sub(now), 0)
}

// certainlyPast is the first instant of our clock certainly past the start
// of second s on api.video's.
func (b clockBounds) certainlyPast(s int64) time.Time {
	return time.Unix(s, 0).Add(-b.lo + time.Millisecond)
}
