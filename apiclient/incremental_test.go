package apiclient_test

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apivideo-exporter/apivideo_exporter/apiclient"
	"github.com/apivideo-exporter/apivideo_exporter/internal/apimodel"
	"github.com/apivideo-exporter/apivideo_exporter/internal/fakeapi"
	"github.com/apivideo-exporter/apivideo_exporter/internal/testsupport"
)

func TestIncrementalUnderChurn(t *testing.T) {
	for _, tc := range []struct {
		name  string
		churn apimodel.Churn
		// maxSteady bounds the requests of a scrape after the first.
		maxSteady func(fresh, deleted int) int
	}{
		{"creations only", apimodel.Churn{CreatePerSecond: 2.8},
			func(fresh, _ int) int { return (fresh+99)/100 + 2 }},
		{"a deletion every 2 s", apimodel.Churn{CreatePerSecond: 2.8, DeletePerSecond: 0.5},
			// About log2(100 pages) a deletion, and a few more for those
			// deleted while the scrape runs.
			func(fresh, deleted int) int { return (fresh+99)/100 + 2 + (deleted+2)*10 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, clk, w := churnFake(t, fakeapi.Options{
				Tokens: 10000, WithoutExpiry: 100, Spread: time.Hour, TTLs: []int{3600}, Seed: 5, Churn: tc.churn, RateLimit: 100000,
			}, 100*time.Millisecond)
			c := newClient(t, s, func(c *apiclient.Config) { c.Now = clk.Now })
			inc := c.NewIncremental(apiclient.IncrementalOptions{ResyncInterval: time.Hour})
			var before []fakeapi.TokenInfo
			spent, allowed := 0, 0
			for i := range 8 {
				t.Run(fmt.Sprint(i), func(t *testing.T) {
					start := s.Tokens()
					w.begin(start)
					s.ResetStats()
					list, err := inc.ListUploadTokens(listCtx(t, 10*time.Second), keepAll)
					require.NoError(t, err)
					w.check(t, s.Tokens(), list)
					requests := s.Stats().ListRequests
					assert.Equal(t, requests, list.Requests)
					if i == 0 {
						assert.Less(t, requests, 160, "the first scrape reads the whole list, then finds what was deleted meanwhile")
						assert.Equal(t, 1.0, inc.SyncProgress())
					} else {
						fresh, deleted := diff(before, start)
						spent += requests
						allowed += tc.maxSteady(fresh, deleted)
					}
					before = s.Tokens()
				})
				clk.Advance(15 * time.Second)
			}
			// A scrape that reads the whole list again now and then is
			// allowed for; on average the bound holds.
			assert.LessOrEqual(t, spent, allowed, "requests of the scrapes after the first")
		})
	}
}

// diff counts the tokens created, and those deleted before their expiry,
// between two states of an account.
func diff(before, after []fakeapi.TokenInfo) (created, deleted int) {
	was := snapshot(before)
	is := snapshot(after)
	last := time.Time{}
	for _, t := range before {
		if t.CreatedAt.After(last) {
			last = t.CreatedAt
		}
	}
	for _, t := range after {
		if !was[t.Token] {
			created++
		}
	}
	for _, t := range before {
		if !is[t.Token] && (t.TTL == 0 || t.ExpiresAt().After(last.Add(20*time.Second))) {
			deleted++
		}
	}
	return created, deleted
}

func TestIncrementalFindsADeletedToken(t *testing.T) {
	for _, where := range []int{0, 1234, 4999, 9998} {
		t.Run(fmt.Sprint(where), func(t *testing.T) {
			s, clk, w := churnFake(t, fakeapi.Options{Tokens: 10000, Spread: time.Hour, TTLs: []int{7200}, Seed: 6, RateLimit: 100000}, 100*time.Millisecond)
			c := newClient(t, s, func(c *apiclient.Config) { c.Now = clk.Now })
			inc := c.NewIncremental(apiclient.IncrementalOptions{})
			_, err := inc.ListUploadTokens(listCtx(t, 10*time.Second), keepAll)
			require.NoError(t, err)

			s.RemoveToken(where)
			w.begin(s.Tokens())
			s.ResetStats()
			list, err := inc.ListUploadTokens(listCtx(t, 10*time.Second), keepAll)
			require.NoError(t, err)
			w.check(t, s.Tokens(), list)
			assert.Len(t, list.Records, 9999)
			// One read of the end, about log2(100 pages) to find the token,
			// one more read of the end to count again.
			assert.LessOrEqual(t, s.Stats().ListRequests, 1+int(math.Ceil(math.Log2(100)))+2+1)
		})
	}
}

// countingClient is a client that counts the list requests it sends.
func countingClient(t *testing.T, s *fakeapi.Server, now func() time.Time) (*apiclient.Client, *atomic.Int64) {
	var sent atomic.Int64
	c := newClient(t, s, func(c *apiclient.Config) {
		c.Now = now
		c.Transport = roundTripFunc(func(r *httpRequest) (*httpResponse, error) {
			if r.URL.Path == "/upload-tokens" {
				sent.Add(1)
			}
			return defaultTransport.RoundTrip(r)
		})
	})
	return c, &sent
}

func TestIncrementalFirstSyncOverSeveralScrapes(t *testing.T) {
	// 100 requests a minute, of which a scrape may spend half: a first
	// reading of 80 pages takes two scrapes or more.
	s, clk, w := churnFake(t, fakeapi.Options{Tokens: 8000, Spread: time.Hour, TTLs: []int{3600}, Seed: 8, RateLimit: 100,
		Churn: apimodel.Churn{CreatePerSecond: 1, DeletePerSecond: 0.02}}, 100*time.Millisecond)
	c, sent := countingClient(t, s, clk.Now)
	inc := c.NewIncremental(apiclient.IncrementalOptions{RateLimitShare: 0.5})
	// The first reply tells the rate limit.
	_, err := c.ListUploadTokens(listCtx(t, 10*time.Second), 0)
	require.NoError(t, err)
	var progress []float64
	for scrape := 0; ; scrape++ {
		require.Less(t, scrape, 20, "the first reading never ended")
		clk.Advance(time.Minute) // a fresh minute of rate limit
		rl, _ := c.RateLimit()
		sent.Store(0)
		w.begin(s.Tokens())
		list, err := inc.ListUploadTokens(listCtx(t, 10*time.Second), keepAll)
		assert.LessOrEqual(t, int(sent.Load()), max(rl.Remaining/2, 1), "the scrape kept to its share of the rate limit")
		if errors.Is(err, apiclient.ErrSyncing) {
			progress = append(progress, inc.SyncProgress())
			continue
		}
		if errors.Is(err, apiclient.ErrRequestBudget) {
			// Read, but with no requests left to find what was deleted
			// meanwhile.
			continue
		}
		require.NoError(t, err)
		w.check(t, s.Tokens(), list)
		break
	}
	require.GreaterOrEqual(t, len(progress), 1, "the first reading took more than one scrape")
	// Progress grows from scrape to scrape; it starts again only if the
	// state the reading ended with could not be brought up to date.
	assert.Greater(t, progress[0], 0.0)
	for i := 1; i < len(progress); i++ {
		assert.True(t, progress[i] > progress[i-1] || progress[i] < 0.5, "progress %v then %v", progress[i-1], progress[i])
	}
	assert.Equal(t, 1.0, inc.SyncProgress())
}

func TestIncrementalKeepsToTheRateLimitShare(t *testing.T) {
	s, clk, _ := churnFake(t, fakeapi.Options{Tokens: 3000, Spread: time.Hour, TTLs: []int{3600}, Seed: 10, RateLimit: 60}, 100*time.Millisecond)
	c, sent := countingClient(t, s, clk.Now)
	_, err := c.ListUploadTokens(listCtx(t, 10*time.Second), 0)
	require.NoError(t, err)
	rl, _ := c.RateLimit()
	inc := c.NewIncremental(apiclient.IncrementalOptions{RateLimitShare: 0.25})
	sent.Store(0)
	_, err = inc.ListUploadTokens(listCtx(t, 10*time.Second), keepAll)
	assert.ErrorIs(t, err, apiclient.ErrSyncing)
	assert.ErrorIs(t, err, apiclient.ErrRequestBudget)
	assert.Equal(t, int64(rl.Remaining/4), sent.Load(), "a quarter of what was left, and no more")
}

func TestIncrementalFindsSeveralDeletedTokens(t *testing.T) {
	for _, tc := range []struct {
		name  string
		where []int
	}{
		{"apart", []int{10, 2500, 5000, 7500, 9990}},
		{"in one page", []int{4000, 4001, 4010, 4050}},
		{"at both ends", []int{0, 1, 9997, 9998}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, clk, w := churnFake(t, fakeapi.Options{Tokens: 10000, Spread: time.Hour, TTLs: []int{7200}, Seed: 11, RateLimit: 100000}, 100*time.Millisecond)
			c := newClient(t, s, func(c *apiclient.Config) { c.Now = clk.Now })
			inc := c.NewIncremental(apiclient.IncrementalOptions{})
			_, err := inc.ListUploadTokens(listCtx(t, 10*time.Second), keepAll)
			require.NoError(t, err)

			// Removed from the highest position down, so that each index
			// names a token of the list as it was.
			for i := len(tc.where) - 1; i >= 0; i-- {
				s.RemoveToken(tc.where[i])
			}
			w.begin(s.Tokens())
			s.ResetStats()
			list, err := inc.ListUploadTokens(listCtx(t, 10*time.Second), keepAll)
			require.NoError(t, err)
			w.check(t, s.Tokens(), list)
			assert.Len(t, list.Records, 10000-len(tc.where))
			// Two reads of the end, and about log2(100 pages) a deletion.
			assert.LessOrEqual(t, s.Stats().ListRequests, 2+len(tc.where)*(int(math.Ceil(math.Log2(100)))+2))
		})
	}
}

func TestIncrementalTokensDeletedDuringTheSearch(t *testing.T) {
	// Tokens deleted since the last scrape, and more deleted at chosen
	// requests of the scrape that looks for them: the scrape publishes
	// every token active throughout, and none deleted before it began.
	for _, tc := range []struct {
		name string
		// at maps a list request of the scrape (from 1) to the position
		// of the token then deleted.
		at map[int]int
	}{
		{"one while the first is looked for", map[int]int{3: 7000}},
		{"one before and one after the looked-for token", map[int]int{2: 100, 4: 9000}},
		{"one at every few requests", map[int]int{2: 500, 5: 3000, 8: 6000, 11: 9500, 14: 50}},
		// More rounds of looking than a deletion every 2 s brings at
		// 100,000 tokens.
		{"one in every round for a while", everyNth(4, 40)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, clk, w, inc := listedIncremental(t, fakeapi.Options{Tokens: 10000, Spread: time.Hour, TTLs: []int{3600}, Seed: 12, RateLimit: 100000,
				Churn: apimodel.Churn{CreatePerSecond: 2.8}})

			s.RemoveToken(4321)
			w.begin(s.Tokens())
			var requests atomic.Int64
			s.OnList(func(int) {
				clk.Advance(100 * time.Millisecond)
				if where, ok := tc.at[int(requests.Add(1))]; ok {
					s.RemoveToken(where)
				}
				w.see(s.Tokens())
			})
			list, err := inc.ListUploadTokens(listCtx(t, 10*time.Second), keepAll)
			require.NoError(t, err)
			w.check(t, s.Tokens(), list)
			// Without a reading of the whole list (100 pages).
			assert.Less(t, int(requests.Load()), 100, "requests")
		})
	}
}

// listedIncremental returns an incremental listing of a fake with churn
// (100ms a list request), on the fake's simulated clock, that read the
// whole list 15 simulated seconds ago.
func listedIncremental(t *testing.T, opts fakeapi.Options) (*fakeapi.Server, *testsupport.Clock, *witness, *apiclient.Incremental) {
	t.Helper()
	s, clk, w := churnFake(t, opts, 100*time.Millisecond)
	c := newClient(t, s, func(c *apiclient.Config) { c.Now = clk.Now })
	inc := c.NewIncremental(apiclient.IncrementalOptions{ResyncInterval: time.Hour})
	_, err := inc.ListUploadTokens(listCtx(t, 10*time.Second), keepAll)
	require.NoError(t, err)
	clk.Advance(15 * time.Second)
	return s, clk, w, inc
}

// everyNth deletes a token, at a different place each time, at every n-th
// request up to the request until.
func everyNth(n, until int) map[int]int {
	at := map[int]int{}
	for i := 2; i <= until; i += n {
		at[i] = (i * 1237) % 9000
	}
	return at
}

func TestIncrementalRoundsReadOnlyTheNewestTokens(t *testing.T) {
	// 28 tokens created a second, as at 100,000 tokens of a one-hour ttl:
	// 420 new tokens since the last scrape, 5 pages. Tokens deleted while
	// the scrape looks for another make it count again, and each count
	// reads only the tokens created since the one before, not the 5 pages.
	s, clk, w, inc := listedIncremental(t, fakeapi.Options{Tokens: 10000, Spread: time.Hour, TTLs: []int{3600}, Seed: 13, RateLimit: 100000,
		Churn: apimodel.Churn{CreatePerSecond: 28}})

	s.RemoveToken(4321)
	w.begin(s.Tokens())
	var requests atomic.Int64
	deleteAt := map[int64]int{9: 2000, 17: 8000, 25: 5000}
	s.OnList(func(int) {
		clk.Advance(100 * time.Millisecond)
		if where, ok := deleteAt[requests.Add(1)]; ok {
			s.RemoveToken(where)
		}
		w.see(s.Tokens())
	})
	list, err := inc.ListUploadTokens(listCtx(t, 10*time.Second), keepAll)
	require.NoError(t, err)
	w.check(t, s.Tokens(), list)
	// 6 reads of the end, about log2(100 pages) for each of 4 deletions,
	// and 1 or 2 for each count after the first: reading the 5 pages of
	// new tokens again at each count would take 57.
	assert.LessOrEqual(t, int(requests.Load()), 6+4*9+3*2, "requests")
}

func TestIncrementalKeepsTheCapFilled(t *testing.T) {
	// The kept values expire first: without a refill the published
	// values die out between readings of the whole list.
	for _, tc := range []struct {
		name string
		ttls []int
	}{
		{"one ttl", []int{3600}},
		{"mixed ttls", []int{600, 3600, 7200}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, clk, _ := churnFake(t, fakeapi.Options{Tokens: 3000, WithoutExpiry: 20, Spread: time.Hour, TTLs: tc.ttls, Seed: 14, RateLimit: 100000,
				Churn: apimodel.Churn{CreatePerSecond: 0.83, DeletePerSecond: 0.05}}, 100*time.Millisecond)
			c := newClient(t, s, func(c *apiclient.Config) { c.Now = clk.Now })
			inc := c.NewIncremental(apiclient.IncrementalOptions{})
			const keep = 100
			for i := range 24 {
				s.ResetStats()
				start := clk.Now()
				list, err := inc.ListUploadTokens(listCtx(t, 10*time.Second), keep)
				require.NoError(t, err, "scrape %d", i)
				assert.Equal(t, s.Stats().ListRequests, list.Requests, "scrape %d: requests", i)
				// The values are those of the first tokens in the order of
				// publication, as many as the cap, less those that expired
				// while the scrape ran.
				sorted := func(at time.Time) []apiclient.Record {
					r := slices.DeleteFunc(slices.Clone(list.Records), func(r apiclient.Record) bool { return !r.ActiveAt(at) })
					slices.SortFunc(r, apiclient.Before)
					return r[:min(keep, len(r))]
				}
				least := 0
				for _, r := range sorted(start) {
					if r.ActiveAt(list.FetchedAt) {
						least++
					}
				}
				got := map[uint64]bool{}
				for _, v := range list.Values {
					got[v.ID()] = true
				}
				want := map[uint64]bool{}
				for _, r := range sorted(list.FetchedAt)[:min(len(got), keep)] {
					want[r.ID()] = true
				}
				assert.GreaterOrEqual(t, len(got), least, "scrape %d: values", i)
				assert.Equal(t, want, got, "scrape %d: the values of the first tokens in the order of publication", i)
				clk.Advance(15 * time.Second)
			}
		})
	}
}

func TestIncrementalRefillReadsAgainOnAStrangeToken(t *testing.T) {
	// A page read for the values shows an old token the kept state does
	// not hold, in the place of one it does: the counts agree, but the
	// kept state is wrong, and the whole list is read again.
	s, clk, _ := churnFake(t, fakeapi.Options{Tokens: 3000, Spread: time.Hour, TTLs: []int{3600}, Seed: 15, RateLimit: 100000}, 100*time.Millisecond)
	c := newClient(t, s, func(c *apiclient.Config) { c.Now = clk.Now })
	inc := c.NewIncremental(apiclient.IncrementalOptions{ResyncInterval: time.Hour})
	const keep = 100
	_, err := inc.ListUploadTokens(listCtx(t, 10*time.Second), keep)
	require.NoError(t, err)
	// About 50 kept tokens expire: their successors lie just before
	// position keep.
	clk.Advance(time.Minute)
	tokens := s.Tokens()
	tokens[keep-3].Token = "a token created elsewhere"
	s.SetTokens(tokens)

	requests := make([]int, 2)
	for i := range requests {
		s.ResetStats()
		list, err := inc.ListUploadTokens(listCtx(t, 10*time.Second), keep)
		require.NoError(t, err)
		requests[i] = s.Stats().ListRequests
		if i == 1 {
			assert.Equal(t, keep, len(list.Values), "values")
		}
		clk.Advance(15 * time.Second)
	}
	assert.Less(t, requests[0], 5, "the counts agree")
	assert.GreaterOrEqual(t, requests[1], 3000/100, "the whole list read again")
}

func TestIncrementalAfterABurst(t *testing.T) {
	// A batch of new tokens, then none for minutes: the scrape after the
	// quiet spell expects no more new tokens than the batch was, and a
	// first read past the end of the list goes on from its end.
	for _, tc := range []struct {
		name    string
		pastEnd apimodel.PastEnd
		// duringScrape adds the batch while the scrape that finds it runs,
		// after a deletion that makes it count twice: the batch lands in
		// its last, short round.
		duringScrape bool
		maxRequests  int
	}{
		{"between scrapes", apimodel.PastEndEmpty, false, 10},
		{"between scrapes, last page again past the end", apimodel.PastEndLast, false, 10},
		{"in the last round of a scrape", apimodel.PastEndEmpty, true, 10},
		// Without the list's total a read past the end tells nothing of
		// where the end lies: the walk down is longer, but no reading.
		{"between scrapes, 404 past the end", apimodel.PastEnd404, false, 12},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, clk, w, inc := listedIncremental(t, fakeapi.Options{Tokens: 10000, Spread: time.Hour, TTLs: []int{86400}, Seed: 16, RateLimit: 100000,
				PastEnd: tc.pastEnd})

			if tc.duringScrape {
				s.RemoveToken(4321)
				var requests atomic.Int64
				s.OnList(func(int) {
					clk.Advance(100 * time.Millisecond)
					if requests.Add(1) == 3 {
						s.AddTokens(300, 86400)
					}
					w.see(s.Tokens())
				})
			} else {
				s.AddTokens(300, 86400)
			}
			w.begin(s.Tokens())
			list, err := inc.ListUploadTokens(listCtx(t, 10*time.Second), keepAll)
			require.NoError(t, err)
			w.check(t, s.Tokens(), list)
			s.OnList(func(int) {
				clk.Advance(100 * time.Millisecond)
				w.see(s.Tokens())
			})

			clk.Advance(5 * time.Minute)
			w.begin(s.Tokens())
			s.ResetStats()
			list, err = inc.ListUploadTokens(listCtx(t, 10*time.Second), keepAll)
			require.NoError(t, err)
			w.check(t, s.Tokens(), list)
			assert.Len(t, list.Records, len(s.Tokens()))
			assert.Less(t, s.Stats().ListRequests, tc.maxRequests, "requests after the quiet spell")
		})
	}
}
