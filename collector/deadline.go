package collector

import (
	"context"
	"sync"
	"time"
)

// sharedDeadline is the context of a listing that several scrapes share.
// It ends at the latest deadline among them, which a scrape that joins
// later moves on (extend): a scrape never fails because the one that
// started the listing had less time. Deadline reports the current end, so
// that the listing plans by it.
type sharedDeadline struct {
	context.Context // cancelled when the deadline passes

	cancel context.CancelFunc
	mu     sync.Mutex
	end    time.Time
	timer  *time.Timer
	passed bool
}

// newSharedDeadline returns a context that ends at end, or with parent.
func newSharedDeadline(parent context.Context, end time.Time) *sharedDeadline {
	ctx, cancel := context.WithCancel(parent)
	d := &sharedDeadline{Context: ctx, cancel: cancel, end: end}
	d.timer = time.AfterFunc(time.Until(end), d.expire)
	return d
}

func (d *sharedDeadline) expire() {
	d.mu.Lock()
	// A timer that fired just as extend moved the end on is ignored.
	if time.Now().Before(d.end) {
		d.mu.Unlock()
		return
	}
	d.passed = true
	d.mu.Unlock()
	d.cancel()
}

// extend moves the end to end, when that is later and the context has not
// ended yet.
func (d *sharedDeadline) extend(end time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.passed || !end.After(d.end) {
		return
	}
	d.end = end
	d.timer.Reset(time.Until(end))
}

// stop releases the timer once the listing is done.
func (d *sharedDeadline) stop() {
	d.timer.Stop()
	d.cancel()
}

func (d *sharedDeadline) Deadline() (time.Time, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.end, true
}

func (d *sharedDeadline) Err() error {
	if err := d.Context.Err(); err != nil {
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.passed {
			return context.DeadlineExceeded
		}
		return err
	}
	return nil
}
