package apiclient

import (
	"fmt"
	"hash/maphash"
	"time"

	"github.com/valyala/fastjson"
)

// Ranges of what a token may say. api.video's spec bounds ttl by a 32-bit
// integer; a date outside these years is garbage, not an expiry, and would
// otherwise be read as a saturated or a wrapped number of seconds.
const (
	// MaxTTL is the longest ttl in seconds api.video can mean.
	MaxTTL = 1<<31 - 1
)

var (
	// EarliestDate and LatestDate bound the dates accepted from api.video.
	EarliestDate = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	LatestDate   = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

// Page is one decoded page of GET /upload-tokens. Token values are
// substrings of one string allocated for the whole page.
type Page struct {
	Tokens []Token
	// CurrentPage and PageSize are as answered, 0 when absent.
	CurrentPage int
	PageSize    int
	PagesTotal  int
	ItemsTotal  int
	// Date is the reply's Date header: api.video's clock, in whole
	// seconds, while it made the reply; zero when absent.
	Date time.Time
}

// pageDecoder decodes pages with reusable buffers. It is not safe for
// concurrent use: each fetching goroutine owns one.
type pageDecoder struct {
	// seed hashes token values into Record.Hash.
	seed   maphash.Seed
	parser fastjson.Parser
	arena  []byte
	ends   []int
}

// decode parses body into a page. It rejects anything that is not a complete page of the documented shape, so
// that a truncated or garbled reply can never be mistaken for a short list.
func (d *pageDecoder) decode(body []byte) (*Page, error) {
	root, err := d.parser.ParseBytes(body)
	if err != nil {
		// The parser's message quotes the body, which may hold tokens.
		return nil, fmt.Errorf("%w: not valid JSON (%d bytes)", ErrMalformedResponse, len(body))
	}
	pg := &Page{}
	pag := root.Get("pagination")
	if pag == nil || pag.Type() != fastjson.TypeObject {
		return nil, fmt.Errorf("%w: no pagination object", ErrMalformedResponse)
	}
	for _, f := range []struct {
		name     string
		dst      *int
		required bool
	}{
		{"currentPage", &pg.CurrentPage, false},
		{"pageSize", &pg.PageSize, false},
		{"pagesTotal", &pg.PagesTotal, true},
		{"itemsTotal", &pg.ItemsTotal, true},
	} {
		v := pag.Get(f.name)
		if v == nil {
			if f.required {
				return nil, fmt.Errorf("%w: pagination.%s missing", ErrMalformedResponse, f.name)
			}
			continue
		}
		n, err := v.Int()
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%w: pagination.%s is not a count", ErrMalformedResponse, f.name)
		}
		*f.dst = n
	}

	data := root.Get("data")
	if data == nil {
		return nil, fmt.Errorf("%w: no data array", ErrMalformedResponse)
	}
	items, err := data.Array()
	if err != nil {
		return nil, fmt.Errorf("%w: data is not an array", ErrMalformedResponse)
	}
	pg.Tokens = make([]Token, len(items))
	d.arena = d.arena[:0]
	d.ends = d.ends[:0]
	for i, item := range items {
		value, created, expires, err := decodeToken(item)
		if err != nil {
			return nil, fmt.Errorf("%w: data[%d]: %v", ErrMalformedResponse, i, err)
		}
		d.arena = append(d.arena, value...)
		d.ends = append(d.ends, len(d.arena))
		pg.Tokens[i].Hash = maphash.Bytes(d.seed, value)
		if !created.IsZero() {
			pg.Tokens[i].Created = unixSeconds(created)
		}
		if !expires.IsZero() {
			pg.Tokens[i].Expires = unixSeconds(expires)
		}
	}
	all := string(d.arena)
	start := 0
	for i, end := range d.ends {
		pg.Tokens[i].Value = all[start:end]
		start = end
	}
	return pg, nil
}

// decodeToken reads one item of data: the token, its creation (zero when
// absent) and its expiry (zero for none). The returned bytes alias the
// parser's memory and are valid until the next parse.
func decodeToken(item *fastjson.Value) ([]byte, time.Time, time.Time, error) {
	var none time.Time
	if item.Type() != fastjson.TypeObject {
		return nil, none, none, fmt.Errorf("not an object")
	}
	value := item.GetStringBytes("token")
	if len(value) == 0 {
		return nil, none, none, fmt.Errorf("no token")
	}
	var created time.Time
	if v := item.Get("createdAt"); v != nil && v.Type() != fastjson.TypeNull {
		s, err := v.StringBytes()
		if err != nil {
			return nil, none, none, fmt.Errorf("createdAt is not a string")
		}
		if created, err = parseDate(s); err != nil {
			return nil, none, none, fmt.Errorf("createdAt: %w", err)
		}
	}
	ttl := int64(-1)
	if v := item.Get("ttl"); v != nil && v.Type() != fastjson.TypeNull {
		n, err := v.Int64()
		if err != nil || n < 0 || n > MaxTTL {
			return nil, none, none, fmt.Errorf("ttl is not a count of seconds between 0 and %d", MaxTTL)
		}
		ttl = n
	}
	v := item.Get("expiresAt")
	if ttl == 0 {
		return value, created, none, nil
	}
	if v == nil || v.Type() == fastjson.TypeNull {
		if ttl < 0 {
			return value, created, none, nil
		}
		// A ttl without an expiry: it expires ttl seconds after creation.
		// Counting it as never expiring would raise a false alarm.
		if created.IsZero() {
			return nil, none, none, fmt.Errorf("ttl %d without expiresAt nor a usable createdAt", ttl)
		}
		return value, created, created.Add(time.Duration(ttl) * time.Second), nil
	}
	s, err := v.StringBytes()
	if err != nil {
		return nil, none, none, fmt.Errorf("expiresAt is not a string")
	}
	expires, err := parseDate(s)
	if err != nil {
		return nil, none, none, fmt.Errorf("expiresAt: %w", err)
	}
	return value, created, expires, nil
}

// parseDate parses a date of a token and checks that it lies between
// EarliestDate and LatestDate.
func parseDate(b []byte) (time.Time, error) {
	t, err := parseTime(b)
	if err != nil {
		return time.Time{}, err
	}
	if t.Before(EarliestDate) || !t.Before(LatestDate) {
		return time.Time{}, fmt.Errorf("date in year %d is outside %d-%d", t.Year(), EarliestDate.Year(), LatestDate.Year()-1)
	}
	return t, nil
}

// parseTime parses the dates api.video sends: 2020-12-02T10:26:46+00:00,
// 2020-12-02T10:26:46.000Z and 2020-12-02T10:26:46Z. The standard library
// is as fast as a hand-written parser here and allocates nothing
// (BenchmarkParseTime).
func parseTime(b []byte) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, string(b))
	if err != nil {
		// Not quoted: a garbled reply may put a token here.
		return time.Time{}, fmt.Errorf("unrecognised date (%d bytes)", len(b))
	}
	return t.UTC(), nil
}
