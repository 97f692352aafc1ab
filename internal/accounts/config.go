// Package accounts reads the accounts file, which names several api.video
// projects served by one exporter, and keeps a live client and collector
// for each of them, reloaded when the file changes.
package accounts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/apivideo-exporter/apivideo_exporter/apiclient"
	"github.com/apivideo-exporter/apivideo_exporter/internal/boundedfile"
	"github.com/apivideo-exporter/apivideo_exporter/listing"
)

// namePattern is what an account name may be: it becomes a URL parameter
// and a label value, so it stays plain.
var namePattern = regexp.MustCompile(`^[a-z0-9_-]+$`)

// Defaults are the values of the settings an account leaves out: the
// exporter's flags.
type Defaults struct {
	Concurrency int
	CacheTTL    time.Duration
	Timeout     time.Duration
	Listing     string
}

// Settings are one account's resolved settings. Two accounts with equal
// Settings read api.video the same way.
type Settings struct {
	Name string
	URL  string
	// KeyFile or KeyEnv, exactly one, says where the API key is.
	KeyFile     string
	KeyEnv      string
	Concurrency int
	CacheTTL    time.Duration
	Timeout     time.Duration
	Listing     string
}

// fileYAML is the accounts file. Optional settings are pointers, so that
// an explicit zero is told apart from an absent value.
type fileYAML struct {
	Accounts map[string]accountYAML `yaml:"accounts"`
}

type accountYAML struct {
	URL         string         `yaml:"url"`
	APIKeyFile  string         `yaml:"api_key_file"`
	APIKeyEnv   string         `yaml:"api_key_env"`
	Concurrency *int           `yaml:"concurrency"`
	CacheTTL    *time.Duration `yaml:"cache_ttl"`
	Timeout     *time.Duration `yaml:"timeout"`
	Listing     string         `yaml:"listing"`
}

// ErrInvalid marks a file that decodes but whose content is not valid.
var ErrInvalid = errors.New("invalid accounts file")

// maxFileBytes bounds the accounts file: a thousand accounts take about
// 200 KB.
const maxFileBytes = 1 << 20

// Load reads and checks the accounts file at path, within ctx: a file
// that is not regular, larger than maxFileBytes, or whose read blocks is
// an error.
func Load(ctx context.Context, path string, defaults Defaults) ([]Settings, error) {
	return load(ctx, newFileReader(path), path, defaults)
}

// newFileReader reads an accounts file with Load's bounds.
func newFileReader(path string) *boundedfile.Reader { return boundedfile.New(path, maxFileBytes) }

// load is Load through a reader kept from one load to the next, so that a
// file whose read hangs holds one goroutine, however many reloads try it.
func load(ctx context.Context, file *boundedfile.Reader, path string, defaults Defaults) ([]Settings, error) {
	data, err := file.Read(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading accounts file: %w", err)
	}
	settings, err := Parse(data, defaults)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return settings, nil
}

// Parse decodes an accounts file strictly (unknown fields and duplicate
// names are errors that name their line) and returns the accounts sorted
// by name, with the settings they leave out taken from defaults.
func Parse(data []byte, defaults Defaults) ([]Settings, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f fileYAML
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: the file is empty", ErrInvalid)
		}
		return nil, err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: more than one YAML document", ErrInvalid)
	}
	if len(f.Accounts) == 0 {
		return nil, fmt.Errorf("%w: no accounts", ErrInvalid)
	}
	lines := accountLines(data)
	out := make([]Settings, 0, len(f.Accounts))
	for name, a := range f.Accounts {
		s, err := resolve(name, a, defaults)
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: account %q: %w", ErrInvalid, lines[name], name, err)
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b Settings) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return out, nil
}

func resolve(name string, a accountYAML, d Defaults) (Settings, error) {
	if !namePattern.MatchString(name) {
		return Settings{}, errors.New("the name must match [a-z0-9_-]+")
	}
	s := Settings{
		Name:        name,
		URL:         a.URL,
		KeyFile:     a.APIKeyFile,
		KeyEnv:      a.APIKeyEnv,
		Concurrency: d.Concurrency,
		CacheTTL:    d.CacheTTL,
		Timeout:     d.Timeout,
		Listing:     d.Listing,
	}
	if a.Listing != "" {
		s.Listing = a.Listing
	}
	if s.Listing == "" {
		s.Listing = listing.ModeAuto.String()
	}
	if s.URL == "" {
		s.URL = apiclient.DefaultURL
	}
	if _, err := apiclient.ParseBaseURL(s.URL); err != nil {
		return Settings{}, fmt.Errorf("url: %w", err)
	}
	switch {
	case s.KeyFile == "" && s.KeyEnv == "":
		return Settings{}, errors.New("set api_key_file or api_key_env")
	case s.KeyFile != "" && s.KeyEnv != "":
		return Settings{}, errors.New("set only one of api_key_file and api_key_env")
	}
	if a.Concurrency != nil {
		s.Concurrency = *a.Concurrency
	}
	if a.CacheTTL != nil {
		s.CacheTTL = *a.CacheTTL
	}
	if a.Timeout != nil {
		s.Timeout = *a.Timeout
	}
	switch {
	case s.Concurrency < 1 || s.Concurrency > apiclient.MaxConcurrency:
		return Settings{}, fmt.Errorf("concurrency must be between 1 and %d", apiclient.MaxConcurrency)
	case s.CacheTTL < 0:
		return Settings{}, errors.New("cache_ttl must not be negative")
	case s.Timeout <= 0 || s.Timeout > apiclient.MaxTimeout:
		return Settings{}, fmt.Errorf("timeout must be between 0 and %s", apiclient.MaxTimeout)
	case !slices.Contains(listing.ModeNames(), s.Listing):
		return Settings{}, fmt.Errorf("listing must be one of %s, got %q", strings.Join(listing.ModeNames(), ", "), s.Listing)
	}
	return s, nil
}

// accountLines maps each account name to the line it is defined on, for
// error messages. The file has already decoded, so it parses.
func accountLines(data []byte) map[string]int {
	lines := map[string]int{}
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 {
		return lines
	}
	root := doc.Content[0]
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value != "accounts" {
			continue
		}
		accounts := root.Content[i+1]
		for j := 0; j+1 < len(accounts.Content); j += 2 {
			lines[accounts.Content[j].Value] = accounts.Content[j].Line
		}
	}
	return lines
}
