package accounts

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/apivideo-exporter/apivideo_exporter/internal/scrape"
)

// ProbeHandler serves /probe?account=NAME: the account's token metrics and
// its api.video request metrics, without an account label (Prometheus sets
// one by relabelling), within the scrape timeout that timeout gives for
// the account's own timeout. A malformed query, or a missing, repeated or
// unknown account, is a 400 that says which.
func (s *Set) ProbeHandler(timeout scrape.Timeout, errorLog promhttp.Logger) http.Handler {
	opts := promhttp.HandlerOpts{ErrorLog: errorLog, EnableOpenMetrics: true}
	return scrape.Handler(func(r *http.Request) (scrape.Target, error) {
		name, err := accountParam(r.URL.RawQuery)
		if err != nil {
			return scrape.Target{}, err
		}
		a, ok := s.Get(name)
		if !ok {
			return scrape.Target{}, fmt.Errorf("unknown account %q: not in the accounts file", name)
		}
		return scrape.Target{Tokens: a.tokens, Limit: a.Timeout, Gatherers: prometheus.Gatherers{a.requests}}, nil
	}, timeout, opts)
}

// accountParam returns the one account a probe's query names.
func accountParam(rawQuery string) (string, error) {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return "", fmt.Errorf("the query string is malformed (%w): /probe?account=NAME, with NAME URL-encoded", err)
	}
	switch names := q["account"]; {
	case len(names) == 0 || names[0] == "":
		return "", errors.New("the account parameter is missing: /probe?account=NAME")
	case len(names) > 1:
		return "", fmt.Errorf("the account parameter is given %d times: /probe takes one account", len(names))
	default:
		return names[0], nil
	}
}
