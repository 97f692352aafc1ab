// Package demo serves a small simulated api.video account on a loopback
// port for the exporter's --demo mode: a few hundred tokens, created,
// deleted and expiring in real time.
package demo

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/apivideo-exporter/apivideo_exporter/internal/apimodel"
)

// APIKey is the key the demo account accepts.
const APIKey = "demo-key"

// The demo account: a few hundred tokens, one in twelve without expiry,
// the others with lives of minutes to days, and a token created every few
// seconds, so that a newcomer sees the numbers move.
var (
	demoOptions = apimodel.Options{
		Tokens:        300,
		WithoutExpiry: 24,
		Spread:        time.Hour,
		TTLs:          []int{4500, 2 * 3600, 24 * 3600, 5400, 3 * 3600, 7 * 24 * 3600},
		Churn: apimodel.Churn{
			CreatePerSecond: 0.2,
			TTLs:            []int{300, 900, 600, 3600, 1800, 0, 900, 7 * 24 * 3600, 600, 1200, 3600, 300},
			DeletePerSecond: 0.02,
		},
	}
	demoRateLimit = 500
)

// Server is a running demo account.
type Server struct {
	// URL is the base URL to give the exporter.
	URL string
	srv *http.Server
}

// Start serves the demo account on a loopback port until Close.
func Start() (*Server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	opts := demoOptions
	opts.Seed = uint64(time.Now().UnixNano())
	h := apimodel.Handler{
		Account:  apimodel.New(opts),
		Sessions: apimodel.NewSessions(APIKey, time.Hour, time.Now),
		Limit:    apimodel.NewRateLimit(demoRateLimit, time.Now),
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	return &Server{URL: "http://" + l.Addr().String(), srv: srv}, nil
}

// Close stops the server.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return s.srv.Shutdown(ctx)
}
