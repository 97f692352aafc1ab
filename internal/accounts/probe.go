package accounts

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// ScrapeTimeout gives the time a probe may take: the scrape timeout the
// request announces, bounded by the account's own timeout, limit.
type ScrapeTimeout func(r *http.Request, limit time.Duration) time.Duration

// ProbeHandler serves /probe?account=NAME: the account's token metrics and
// its api.video request metrics, without an account label (Prometheus sets
// one by relabelling). An unknown or missing account is a 400.
func (s *Set) ProbeHandler(timeout ScrapeTimeout, errorLog promhttp.Logger) http.Handler {
	opts := promhttp.HandlerOpts{ErrorLog: errorLog, EnableOpenMetrics: true}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.URL.Query().Get("account")
		if name == "" {
			http.Error(w, "the account parameter is missing: /probe?account=NAME", http.StatusBadRequest)
			return
		}
		a, ok := s.Get(name)
		if !ok {
			http.Error(w, fmt.Sprintf("unknown account %q: not in the accounts file", name), http.StatusBadRequest)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), timeout(r, a.Timeout))
		defer cancel()
		scrape := prometheus.NewRegistry()
		scrape.MustRegister(a.tokens.WithContext(ctx))
		// The scrape is gathered first so that the request counters include it.
		promhttp.HandlerFor(prometheus.Gatherers{scrape, a.requests}, opts).ServeHTTP(w, r)
	})
}
