package apiclient_test

import (
	"context"
	"net/http"

	"github.com/apivideo-exporter/apivideo_exporter/apiclient"
	"github.com/apivideo-exporter/apivideo_exporter/listing"
)

type (
	httpRequest  = http.Request
	httpResponse = http.Response
)

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

var defaultTransport = http.DefaultTransport

// listTokens lists every token through a full listing, as the exporter
// does, keeping the values of keep of them.
func listTokens(c *apiclient.Client, ctx context.Context, keep int) (*listing.TokenList, error) {
	return listing.New(c, listing.Options{Mode: listing.ModeFull, Concurrency: apiclient.DefaultConcurrency}).ListUploadTokens(ctx, keep)
}
