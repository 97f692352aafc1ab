package apiclient

import (
	"hash/maphash"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func testDecoder() *pageDecoder { return &pageDecoder{seed: maphash.MakeSeed()} }

func TestParseTime(t *testing.T) {
	want := time.Date(2020, 12, 2, 10, 26, 46, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"2020-12-02T10:26:46+00:00", want, true},
		{"2020-12-02T10:26:46.000Z", want, true},
		{"2020-12-02T10:26:46Z", want, true},
		{"2020-12-02T11:26:46+01:00", want, true},
		{"2020-12-02T05:26:46-05:00", want, true},
		{"2020-12-02T10:26:46.5Z", want.Add(500 * time.Millisecond), true},
		{"2020-12-02T10:26:46.123456789Z", want.Add(123456789), true},
		{"2024-02-29T00:00:00Z", time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), true},
		{"2023-02-29T00:00:00Z", time.Time{}, false},
		{"2020-12-02 10:26:46", time.Time{}, false},
		{"2020-12-02T10:26:46", time.Time{}, false},
		{"2020-13-02T10:26:46Z", time.Time{}, false},
		{"2020-12-02T24:00:00Z", time.Time{}, false},
		{"", time.Time{}, false},
		{"yesterday", time.Time{}, false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseTime([]byte(tc.in))
			if !tc.ok {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.True(t, tc.want.Equal(got), "want %v, got %v", tc.want, got)
		})
	}
}

func TestDecodePageGolden(t *testing.T) {
	body, err := os.ReadFile(filepath.Join("testdata", "documented-page.json"))
	require.NoError(t, err)
	d := testDecoder()
	p, err := d.decode(body)
	require.NoError(t, err)
	assert.Equal(t, 1, p.CurrentPage)
	assert.Equal(t, 25, p.PageSize)
	assert.Equal(t, 1, p.PagesTotal)
	assert.Equal(t, 2, p.ItemsTotal)
	require.Len(t, p.Tokens, 2)
	assert.Equal(t, "to37YfoPDRR2pcDKa6LsUE0M", p.Tokens[0].Value)
	assert.True(t, time.Date(2020, 12, 2, 11, 26, 46, 0, time.UTC).Equal(p.Tokens[0].ExpiresAt()))
	assert.True(t, time.Date(2020, 12, 2, 10, 26, 46, 0, time.UTC).Equal(p.Tokens[0].CreatedAt()))
	assert.Equal(t, time.Hour, p.Tokens[0].TTL())
	assert.Equal(t, "to1W3ZS9PdUBZWzzTEZr1B79", p.Tokens[1].Value)
	assert.True(t, p.Tokens[1].NeverExpires())
}

func TestDecodeToken(t *testing.T) {
	for _, tc := range []struct {
		name  string
		item  string
		never bool
		err   bool
	}{
		{"null expiry", `{"token":"to1","ttl":0,"expiresAt":null}`, true, false},
		{"missing expiry", `{"token":"to1","ttl":0}`, true, false},
		{"ttl 0 wins over a date", `{"token":"to1","ttl":0,"expiresAt":"2020-12-02T11:26:46Z"}`, true, false},
		{"expiring", `{"token":"to1","ttl":3600,"expiresAt":"2020-12-02T11:26:46Z"}`, false, false},
		{"no ttl, a date", `{"token":"to1","expiresAt":"2020-12-02T11:26:46Z"}`, false, false},
		{"no ttl, no date", `{"token":"to1","expiresAt":null}`, true, false},
		{"a ttl and no date expires after the ttl", `{"token":"to1","ttl":60,"createdAt":"2020-12-02T11:26:46Z","expiresAt":null}`, false, false},
		{"a ttl and no date nor creation", `{"token":"to1","ttl":60}`, false, true},
		{"no token", `{"ttl":0}`, false, true},
		{"empty token", `{"token":"","ttl":0}`, false, true},
		{"token not a string", `{"token":5}`, false, true},
		{"negative ttl", `{"token":"to1","ttl":-1}`, false, true},
		{"bad date", `{"token":"to1","ttl":60,"expiresAt":"soon"}`, false, true},
		{"date not a string", `{"token":"to1","ttl":60,"expiresAt":12}`, false, true},
		{"not an object", `"to1"`, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := testDecoder()
			body := `{"data":[` + tc.item + `],"pagination":{"currentPage":1,"pageSize":100,"pagesTotal":1,"itemsTotal":1}}`
			p, err := d.decode([]byte(body))
			if tc.err {
				require.ErrorIs(t, err, ErrMalformedResponse)
				return
			}
			require.NoError(t, err)
			require.Len(t, p.Tokens, 1)
			assert.Equal(t, tc.never, p.Tokens[0].NeverExpires())
		})
	}
}

func TestDecodeRejectsBrokenPages(t *testing.T) {
	for name, body := range map[string]string{
		"not json":             `<html>`,
		"truncated":            `{"data":[{"token":"to1","ttl":0}],"pagination":{"currentPage":1,`,
		"no pagination":        `{"data":[]}`,
		"no data":              `{"pagination":{"pagesTotal":1,"itemsTotal":0}}`,
		"data not an array":    `{"data":{},"pagination":{"pagesTotal":1,"itemsTotal":0}}`,
		"no itemsTotal":        `{"data":[],"pagination":{"pagesTotal":1}}`,
		"negative itemsTotal":  `{"data":[],"pagination":{"pagesTotal":1,"itemsTotal":-1}}`,
		"fractional pageTotal": `{"data":[],"pagination":{"pagesTotal":1.5,"itemsTotal":0}}`,
		"trailing garbage":     `{"data":[],"pagination":{"pagesTotal":1,"itemsTotal":0}} x`,
	} {
		t.Run(name, func(t *testing.T) {
			d := testDecoder()
			_, err := d.decode([]byte(body))
			assert.ErrorIs(t, err, ErrMalformedResponse)
		})
	}
}

func TestDecodeErrorsQuoteNoToken(t *testing.T) {
	const secret = "toSECRETsecretSECRET1234"
	for _, body := range []string{
		`{"data":[{"token":"` + secret + `","ttl":0}]} trailing ` + secret,
		`{"data":[{"token":"` + secret + `","ttl":0},{"token":"` + secret,
		`{"data":[{"token":"` + secret + `","ttl":60,"expiresAt":"soon"}],"pagination":{"pagesTotal":1,"itemsTotal":1}}`,
	} {
		d := testDecoder()
		_, err := d.decode([]byte(body))
		require.ErrorIs(t, err, ErrMalformedResponse)
		assert.NotContains(t, err.Error(), "SECRET")
	}
}

func TestDecoderReuseKeepsEarlierTokens(t *testing.T) {
	d := testDecoder()
	p1, err := d.decode([]byte(`{"data":[{"token":"toAAAA","ttl":0}],"pagination":{"pagesTotal":2,"itemsTotal":2}}`))
	require.NoError(t, err)
	_, err = d.decode([]byte(`{"data":[{"token":"toBBBB","ttl":0}],"pagination":{"pagesTotal":2,"itemsTotal":2}}`))
	require.NoError(t, err)
	assert.Equal(t, "toAAAA", p1.Tokens[0].Value, "a page's tokens survive the decoder's next page")
}

func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"2020-12-02T10:26:46+00:00", "2020-12-02T10:26:46.000Z", "2020-12-02T10:26:46Z",
		"2020-12-02T10:26:46.123456789-07:30", "0000-01-01T00:00:00Z", "2020-02-30T00:00:00Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := time.Parse(time.RFC3339Nano, s)
		parsed, perr := parseTime([]byte(s))
		if (perr == nil) != (err == nil) {
			t.Fatalf("%q: parseTime error %v, time.Parse error %v", s, perr, err)
		}
		if err == nil && !parsed.Equal(want) {
			t.Fatalf("%q: parseTime %v, time.Parse %v", s, parsed, want)
		}
	})
}

// BenchmarkParseTime parses the three shapes of date api.video sends.
func BenchmarkParseTime(b *testing.B) {
	for _, s := range []string{"2020-12-02T10:26:46+00:00", "2020-12-02T10:26:46.000Z", "2020-12-02T10:26:46Z"} {
		b.Run(s, func(b *testing.B) {
			date := []byte(s)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := parseTime(date); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func FuzzDecodePage(f *testing.F) {
	seed, err := os.ReadFile(filepath.Join("testdata", "documented-page.json"))
	require.NoError(f, err)
	f.Add(seed)
	f.Add([]byte(`{"data":[],"pagination":{"pagesTotal":0,"itemsTotal":0}}`))
	f.Add([]byte(`{"data":[{"token":"to1","ttl":0,"expiresAt":null}],"pagination":{"currentPage":1,"pagesTotal":1,"itemsTotal":1}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		d := testDecoder()
		p, err := d.decode(body)
		if err != nil {
			require.ErrorIs(t, err, ErrMalformedResponse)
			return
		}
		require.GreaterOrEqual(t, p.ItemsTotal, 0)
		require.GreaterOrEqual(t, p.PagesTotal, 0)
		for _, tok := range p.Tokens {
			require.NotEmpty(t, tok.Value)
		}
	})
}
