package accounts

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/apivideo-exporter/apivideo_exporter/apiclient"
	"github.com/apivideo-exporter/apivideo_exporter/collector"
	"github.com/apivideo-exporter/apivideo_exporter/internal/boundedfile"
	"github.com/apivideo-exporter/apivideo_exporter/listing"
)

// Options configure a Set.
type Options struct {
	// Defaults fill in the settings an account leaves out.
	Defaults Defaults
	// Wiring applies to every account; its Registerer, Logger and Source
	// are the Set's own for each account.
	Wiring Wiring
	// MaxConcurrentProbes caps how many accounts read api.video at once.
	MaxConcurrentProbes int
	// Registerer receives the reload metrics.
	Registerer prometheus.Registerer
	// Logger receives the Set's lines, as component=accounts, and each
	// account's, as account=NAME with the component of their own.
	Logger log.Logger
}

// Account is one live account: its own client, login, rate-limit gauges and
// cache.
type Account struct {
	Settings
	client *apiclient.Client
	tokens *collector.Collector
	// requests holds the client's request counters and durations, served
	// on the account's probe only: /metrics does not repeat them, so that
	// a selector matching both jobs still counts each account once.
	requests *prometheus.Registry
}

// Set is the live set of accounts of an accounts file.
type Set struct {
	path string
	file *boundedfile.Reader
	opts Options
	// slots caps the accounts reading api.video at once.
	slots chan struct{}

	reloadMu     sync.Mutex
	reloadOK     prometheus.Gauge
	reloadOKTime prometheus.Gauge

	mu       sync.RWMutex
	accounts map[string]*Account
}

// logger is for the Set's own lines.
func (s *Set) logger() log.Logger { return log.With(s.opts.Logger, "component", "accounts") }

// New returns an empty Set for the accounts file at path; Reload loads it.
func New(path string, opts Options) *Set {
	if opts.Logger == nil {
		opts.Logger = log.NewNopLogger()
	}
	if opts.MaxConcurrentProbes < 1 {
		opts.MaxConcurrentProbes = 1
	}
	s := &Set{
		path:  path,
		file:  newFileReader(path),
		opts:  opts,
		slots: make(chan struct{}, opts.MaxConcurrentProbes),
		reloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "apivideo_exporter_config_last_reload_successful",
			Help: "1 if the last load of the accounts file succeeded, 0 if it failed and the previous accounts are kept.",
		}),
		reloadOKTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "apivideo_exporter_config_last_reload_success_timestamp_seconds",
			Help: "Time of the last successful load of the accounts file, in seconds since the epoch.",
		}),
		accounts: map[string]*Account{},
	}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(s.reloadOK, s.reloadOKTime)
	}
	return s
}

// ErrReloadInProgress is a reload asked for while another runs.
var ErrReloadInProgress = errors.New("a reload of the accounts file is in progress")

// reloadTimeout bounds a reload: reading the accounts file and checking
// each key file, any of which may sit on a mount that hangs.
const reloadTimeout = 10 * time.Second

// Reload reads the accounts file again, within ctx and reloadTimeout. On
// error the accounts in use stay as they were. An account whose settings
// did not change keeps its client, and so its login and cache; a changed
// one gets a fresh client. One reload runs at a time: another asked for
// meanwhile returns ErrReloadInProgress at once.
func (s *Set) Reload(ctx context.Context) error {
	if !s.reloadMu.TryLock() {
		return ErrReloadInProgress
	}
	defer s.reloadMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, reloadTimeout)
	defer cancel()
	err := s.reload(ctx)
	if err != nil {
		s.reloadOK.Set(0)
		level.Error(s.logger()).Log("msg", "loading the accounts file failed", "file", s.path, "err", err, "accounts_in_use", strings.Join(s.Names(), ","))
		return err
	}
	s.reloadOK.Set(1)
	s.reloadOKTime.SetToCurrentTime()
	return nil
}

func (s *Set) reload(ctx context.Context) error {
	settings, err := load(ctx, s.file, s.path, s.opts.Defaults)
	if err != nil {
		return err
	}
	s.mu.RLock()
	old := s.accounts
	s.mu.RUnlock()

	next := make(map[string]*Account, len(settings))
	var added, changed, kept []string
	for _, st := range settings {
		if a, ok := old[st.Name]; ok && a.Settings == st {
			next[st.Name] = a
			kept = append(kept, st.Name)
			continue
		}
		// A client built here and dropped on a later error has made no
		// request yet: there is nothing to close.
		a, err := s.build(ctx, st)
		if err != nil {
			return fmt.Errorf("account %q: %w", st.Name, err)
		}
		next[st.Name] = a
		if _, ok := old[st.Name]; ok {
			changed = append(changed, st.Name)
		} else {
			added = append(added, st.Name)
		}
	}
	var removed []string
	for name, a := range old {
		if next[name] == a {
			continue
		}
		a.client.Close()
		if _, ok := next[name]; !ok {
			removed = append(removed, name)
		}
	}
	s.mu.Lock()
	s.accounts = next
	s.mu.Unlock()
	slices.Sort(removed)
	level.Info(s.logger()).Log("msg", "loaded the accounts file", "file", s.path,
		"added", strings.Join(added, ","), "changed", strings.Join(changed, ","),
		"removed", strings.Join(removed, ","), "unchanged", strings.Join(kept, ","))
	return nil
}

// build makes the client and collector of an account.
func (s *Set) build(ctx context.Context, st Settings) (*Account, error) {
	// The key is checked now, so that a typo fails the load rather than
	// every probe; a key file is read again at each login, so that a
	// rotated key is picked up without a reload.
	key, err := apiclient.LoadKey(ctx, st.KeyFile, st.KeyEnv)
	if err != nil {
		if st.KeyFile == "" {
			return nil, fmt.Errorf("api_key_env: %w", err)
		}
		return nil, fmt.Errorf("api_key_file: %w", err)
	}
	logger := log.With(s.opts.Logger, "account", st.Name)
	requests := prometheus.NewRegistry()
	w := s.opts.Wiring
	w.Registerer, w.Logger = requests, logger
	w.Source = func(l *listing.Lister) collector.Source {
		return slotted{Lister: l, slots: s.slots, logger: log.With(logger, "component", "accounts")}
	}
	wired, err := Wire(st, key, w)
	if err != nil {
		return nil, err
	}
	return &Account{Settings: st, client: wired.Client, tokens: wired.Tokens, requests: requests}, nil
}

// Close ends the listings in progress of every account and the clients'
// connections, at shutdown.
func (s *Set) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.accounts {
		a.tokens.Close()
		a.client.Close()
	}
}

// Get returns the live account called name.
func (s *Set) Get(name string) (*Account, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	a, ok := s.accounts[name]
	return a, ok
}

// Names returns the names of the live accounts, sorted.
func (s *Set) Names() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	names := make([]string, 0, len(s.accounts))
	for name := range s.accounts {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// ReloadHandler reloads the accounts file on POST. It answers 500 when the
// file is broken, with the reason in the log only: the reason may quote
// the file, and whoever reaches the port is not necessarily its reader.
// It answers 503 while another reload runs.
func (s *Set) ReloadHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "reload with POST", http.StatusMethodNotAllowed)
			return
		}
		switch err := s.Reload(r.Context()); {
		case errors.Is(err, ErrReloadInProgress):
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		case err != nil:
			http.Error(w, "failed to reload the accounts file: the reason is in the exporter's log", http.StatusInternalServerError)
		default:
			fmt.Fprintln(w, "Reloaded")
		}
	})
}

// slotted holds one of the Set's slots while it reads api.video, so that a
// burst of probes reads at most so many accounts at once. Cached scrapes
// and probes sharing a fetch take no slot of their own.
type slotted struct {
	*listing.Lister
	slots  chan struct{}
	logger log.Logger
}

// errNoSlot is a probe that waited its whole time for a slot.
var errNoSlot = errors.New("every probe slot stayed busy")

func (s slotted) ListUploadTokens(ctx context.Context, keep int) (*listing.TokenList, error) {
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		// Logged here: the scrape's own error may win the race to report it.
		level.Warn(s.logger).Log("msg", "no probe slot came free in time: other accounts' reads of api.video took them all (--probe.max-concurrent)", "slots", cap(s.slots))
		return nil, fmt.Errorf("%w: %w", errNoSlot, ctx.Err())
	}
	defer func() { <-s.slots }()
	return s.Lister.ListUploadTokens(ctx, keep)
}
