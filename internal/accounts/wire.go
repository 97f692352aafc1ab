package accounts

import (
	"fmt"
	"net/http"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/apivideo-exporter/apivideo_exporter/apiclient"
	"github.com/apivideo-exporter/apivideo_exporter/collector"
	"github.com/apivideo-exporter/apivideo_exporter/listing"
)

// Wiring is what every account shares, in single-account mode and in an
// accounts file alike.
type Wiring struct {
	UserAgent      string
	TokenLabel     collector.LabelMode
	MaxTokenSeries int
	// DeprecatedNames also publishes the series renamed in 0.2.0 under
	// their old names.
	DeprecatedNames bool
	RateLimitShare  float64
	// Registerer receives the client's request metrics.
	Registerer prometheus.Registerer
	// Logger receives the account's lines, each with its component.
	Logger log.Logger
	// Transport, when set, carries the requests (tests).
	Transport http.RoundTripper
	// Source, when set, wraps the account's Lister as the collector's
	// source (the probe slots of a Set).
	Source func(*listing.Lister) collector.Source
}

// Wired is an account's client and collector.
type Wired struct {
	Client *apiclient.Client
	Tokens *collector.Collector
}

// Wire builds an account's client, listing and collector from its settings
// and key: the one place where an account is put together.
func Wire(st Settings, key apiclient.KeySource, w Wiring) (*Wired, error) {
	var mode listing.Mode
	if err := mode.UnmarshalText([]byte(st.Listing)); err != nil {
		return nil, fmt.Errorf("listing: %w", err)
	}
	logger := w.Logger
	if logger == nil {
		logger = log.NewNopLogger()
	}
	client, err := apiclient.New(apiclient.Config{
		BaseURL:     st.URL,
		Key:         key,
		UserAgent:   w.UserAgent,
		Concurrency: st.Concurrency,
		Transport:   w.Transport,
		Registerer:  w.Registerer,
		Logger:      log.With(logger, "component", "apiclient"),
	})
	if err != nil {
		return nil, err
	}
	// The kept state lives in the account's own Lister, so that a changed
	// account starts afresh and an unchanged one keeps it.
	lister := listing.New(client, listing.Options{
		Mode:           mode,
		Concurrency:    st.Concurrency,
		RateLimitShare: w.RateLimitShare,
		Logger:         log.With(logger, "component", "listing"),
	})
	var src collector.Source = lister
	if w.Source != nil {
		src = w.Source(lister)
	}
	tokens := collector.New(src, collector.Options{
		TokenLabel:      w.TokenLabel,
		MaxTokenSeries:  w.MaxTokenSeries,
		Timeout:         st.Timeout,
		CacheTTL:        st.CacheTTL,
		DeprecatedNames: w.DeprecatedNames,
		Logger:          log.With(logger, "component", "collector"),
	})
	return &Wired{Client: client, Tokens: tokens}, nil
}
