package apiclient_test

import (
	"context"
	"time"

	"github.com/apivideo-exporter/apivideo_exporter/apiclient"
	"github.com/apivideo-exporter/apivideo_exporter/internal/testsupport"
	"github.com/apivideo-exporter/apivideo_exporter/listing"
)

// newManualClock is a clock that moves only when told, shared by the fake
// api.video, the client and the listing.
func newManualClock() *testsupport.Clock { return testsupport.NewClock(time.Now()) }

// listOnClock lists every token, the listing reading the same clock as c.
func listOnClock(c *apiclient.Client, clock *testsupport.Clock, ctx context.Context) (*listing.TokenList, error) {
	l := listing.New(c, listing.Options{Mode: listing.ModeFull, Concurrency: apiclient.DefaultConcurrency, Now: clock.Now})
	return l.ListUploadTokens(ctx, keepAll)
}
