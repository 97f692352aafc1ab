package apiclient_test

import (
	"context"
	"sync"
	"time"

	"github.com/apivideo-exporter/apivideo_exporter/apiclient"
	"github.com/apivideo-exporter/apivideo_exporter/listing"
)

// manualClock is a clock that moves only when told, shared by the fake
// api.video, the client and the listing.
type manualClock struct {
	mu sync.Mutex
	t  time.Time
}

func newManualClock() *manualClock { return &manualClock{t: time.Now()} }

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// listOnClock lists every token, the listing reading the same clock as c.
func listOnClock(c *apiclient.Client, clock *manualClock, ctx context.Context) (*listing.TokenList, error) {
	l := listing.New(c, listing.Options{Mode: listing.ModeFull, Concurrency: apiclient.DefaultConcurrency, Now: clock.Now})
	return l.ListUploadTokens(ctx, keepAll)
}
