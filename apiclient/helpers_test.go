package apiclient_test

import "net/http"

type (
	httpRequest  = http.Request
	httpResponse = http.Response
)

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

var defaultTransport = http.DefaultTransport
