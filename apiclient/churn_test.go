package apiclient_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apivideo-exporter/apivideo_exporter/apiclient"
	"github.com/apivideo-exporter/apivideo_exporter/internal/apimodel"
	"github.com/apivideo-exporter/apivideo_exporter/internal/fakeapi"
	"github.com/apivideo-exporter/apivideo_exporter/internal/testsupport"
)

// witness records which tokens were active at every request of a listing,
// to check the listing against the rule: every token active during the
// whole listing is listed, and every listed token was active at some
// instant of it.
type witness struct {
	mu     sync.Mutex
	start  map[string]bool
	during map[string]bool
}

func snapshot(tokens []fakeapi.TokenInfo) map[string]bool {
	m := make(map[string]bool, len(tokens))
	for _, t := range tokens {
		m[t.Token] = true
	}
	return m
}

func (w *witness) see(tokens []fakeapi.TokenInfo) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.during == nil {
		w.during = map[string]bool{}
	}
	for _, t := range tokens {
		w.during[t.Token] = true
	}
}

func (w *witness) check(t *testing.T, end []fakeapi.TokenInfo, list *apiclient.TokenList) {
	t.Helper()
	w.see(end)
	got := map[string]bool{}
	for _, v := range list.Values {
		assert.False(t, got[v.Value], "a token listed twice")
		got[v.Value] = true
	}
	require.Equal(t, len(got), len(list.Records), "records and values disagree")
	missing, never := 0, 0
	for _, tok := range end {
		if w.start[tok.Token] && !got[tok.Token] {
			missing++
		}
	}
	for tok := range got {
		if !w.during[tok] {
			never++
		}
	}
	assert.Zero(t, missing, "tokens active during the whole listing but not listed")
	assert.Zero(t, never, "tokens listed but never active during the listing")
}

// churnFake is an account under heavy churn on a simulated clock that
// moves perRequest at every list request, with a witness of every request.
func churnFake(t *testing.T, opts fakeapi.Options, perRequest time.Duration) (*fakeapi.Server, *testsupport.Clock, *witness) {
	// The clock is shared by the fake and the client and moved by the
	// fake's list hook: every list request takes the same simulated time,
	// so that churn between requests does not depend on the machine.
	clk := testsupport.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	opts.Now = clk.Now
	s := fakeapi.NewServer(opts)
	t.Cleanup(s.Close)
	w := &witness{}
	s.OnList(func(int) {
		clk.Advance(perRequest)
		w.see(s.Tokens())
	})
	return s, clk, w
}

func (w *witness) begin(tokens []fakeapi.TokenInfo) {
	w.mu.Lock()
	w.start = snapshot(tokens)
	w.during = snapshot(tokens)
	w.mu.Unlock()
}

func TestListingKeepsTheRuleUnderChurn(t *testing.T) {
	for _, tc := range []struct {
		name        string
		tokens      int
		churn       apimodel.Churn
		ttls        []int
		concurrency int
	}{
		// The busy account of the rule: an hour-long ttl, 2.8 creations and
		// expirations a second, a deletion every 2 s, 100 ms a request.
		{"10,000 tokens, one-hour ttl", 10000, apimodel.Churn{CreatePerSecond: 2.8, DeletePerSecond: 0.5}, []int{3600}, 8},
		// Ten times the churn, with short ttls expiring all over the list.
		{"3,000 tokens, heavy churn, mixed ttls", 3000,
			apimodel.Churn{CreatePerSecond: 30, TTLs: []int{120, 3600, 600, 0, 86400}, DeletePerSecond: 5}, []int{200, 3600, 900, 86400}, 8},
		{"one segment", 700, apimodel.Churn{CreatePerSecond: 20, DeletePerSecond: 10, TTLs: []int{60, 600}}, []int{300, 30}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, clk, w := churnFake(t, fakeapi.Options{
				Tokens: tc.tokens, WithoutExpiry: tc.tokens / 50, Spread: time.Hour, TTLs: tc.ttls, Seed: 3, Churn: tc.churn,
			}, 100*time.Millisecond)
			c := newClient(t, s, func(c *apiclient.Config) { c.Now = clk.Now; c.Concurrency = tc.concurrency })
			for i := range 5 {
				t.Run(fmt.Sprint(i), func(t *testing.T) {
					w.begin(s.Tokens())
					list, err := c.ListUploadTokens(listCtx(t, 10*time.Second), keepAll)
					require.NoError(t, err)
					w.check(t, s.Tokens(), list)
				})
			}
		})
	}
}

func TestListingPastTheEnd(t *testing.T) {
	for _, tc := range []struct {
		name string
		mode apimodel.PastEnd
	}{
		{"404", apimodel.PastEnd404},
		{"400", apimodel.PastEnd400},
		{"empty page", apimodel.PastEndEmpty},
		{"last page again", apimodel.PastEndLast},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// 40 tokens deleted at every request: the last page, of 10
			// tokens when page 1 is read, is gone when it is asked for.
			s, clk, w := churnFake(t, fakeapi.Options{
				Tokens: 1350, Seed: 9, Spread: time.Hour, TTLs: []int{7200}, PastEnd: tc.mode,
				Churn: apimodel.Churn{DeletePerSecond: 400},
			}, 100*time.Millisecond)
			var pastEnd int
			s.OnList(func(page int) {
				clk.Advance(100 * time.Millisecond)
				tokens := s.Tokens()
				if (page-1)*100 >= len(tokens) {
					pastEnd++
				}
				w.see(tokens)
			})
			c := newClient(t, s, func(c *apiclient.Config) { c.Now = clk.Now; c.Concurrency = 1 })
			w.begin(s.Tokens())
			list, err := c.ListUploadTokens(listCtx(t, 10*time.Second), keepAll)
			require.NoError(t, err)
			w.check(t, s.Tokens(), list)
			assert.Positive(t, pastEnd, "a page was asked past the end")
		})
	}
}

func TestListingDropsTokensThatExpired(t *testing.T) {
	// Tokens that expire while the list is read are not returned: they
	// were not active for the whole listing, and would be counted at once
	// as expired.
	s, clk, w := churnFake(t, fakeapi.Options{Tokens: 500, Seed: 4, Spread: 10 * time.Second, TTLs: []int{12}}, time.Second)
	c := newClient(t, s, func(c *apiclient.Config) { c.Now = clk.Now; c.Concurrency = 1 })
	w.begin(s.Tokens())
	list, err := c.ListUploadTokens(listCtx(t, 10*time.Second), keepAll)
	require.NoError(t, err)
	w.check(t, s.Tokens(), list)
	for _, r := range list.Records {
		assert.True(t, r.ActiveAt(clk.Now()))
	}
	assert.Less(t, len(list.Records), 500)
}
