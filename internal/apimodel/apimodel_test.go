package apimodel_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apivideo-exporter/apivideo_exporter/internal/apimodel"
	"github.com/apivideo-exporter/apivideo_exporter/internal/testsupport"
)

type pageJSON struct {
	Data []struct {
		Token     string  `json:"token"`
		TTL       int     `json:"ttl"`
		CreatedAt string  `json:"createdAt"`
		ExpiresAt *string `json:"expiresAt"`
	} `json:"data"`
	Pagination struct {
		CurrentPage int `json:"currentPage"`
		PagesTotal  int `json:"pagesTotal"`
		ItemsTotal  int `json:"itemsTotal"`
	} `json:"pagination"`
}

func decode(t *testing.T, r apimodel.Reply) pageJSON {
	t.Helper()
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	var p pageJSON
	require.NoError(t, json.Unmarshal(r.Body, &p))
	return p
}

func TestChurnFollowsTheClock(t *testing.T) {
	clk := testsupport.NewClock(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC))
	newAccount := func() *apimodel.Account {
		return apimodel.New(apimodel.Options{
			Tokens: 1000, Spread: time.Hour, TTLs: []int{3600}, Seed: 7, Now: clk.Now,
			Churn: apimodel.Churn{CreatePerSecond: 2.5, TTLs: []int{3600, 600}, DeletePerSecond: 0.5},
		})
	}
	a := newAccount()
	start := a.Tokens()
	require.InDelta(t, 1000, len(start), 1)
	clk.Advance(10 * time.Second)
	after := a.Tokens()
	// 25 created, 5 deleted, and the tokens of the oldest 10 seconds of an
	// hour-long spread expired (1000 tokens an hour: about 2.8).
	created := 0
	for _, tok := range after {
		if !tok.CreatedAt.Before(start[len(start)-1].CreatedAt.Add(time.Second)) {
			created++
		}
	}
	assert.Equal(t, 25, created, "tokens created in 10 s at 2.5/s")
	expired := 0
	for _, tok := range start {
		if !tok.ExpiresAt().After(clk.Now()) {
			expired++
		}
	}
	assert.InDelta(t, 3, expired, 1)
	assert.Equal(t, len(start)+25-5-expired, len(after))

	// The same clock gives the same account.
	clk.Set(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC))
	b := newAccount()
	clk.Advance(10 * time.Second)
	assert.True(t, slices.Equal(after, b.Tokens()), "a second account on the same clock differs")
}

func TestSortOrders(t *testing.T) {
	clk := testsupport.NewClock(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC))
	a := apimodel.New(apimodel.Options{Tokens: 50, Spread: time.Hour, TTLs: []int{7200, 5400, 3700}, Seed: 1, Now: clk.Now})
	tokens := a.Tokens()
	for _, tc := range []struct {
		name          string
		sortBy, order string
		first         string
	}{
		{"default is newest first", "", "", tokens[len(tokens)-1].Token},
		{"createdAt desc", "createdAt", "desc", tokens[len(tokens)-1].Token},
		{"createdAt asc", "createdAt", "asc", tokens[0].Token},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := decode(t, a.Page(apimodel.ListQuery{CurrentPage: 1, PageSize: 10, SortBy: tc.sortBy, SortOrder: tc.order}))
			assert.Equal(t, tc.first, p.Data[0].Token)
			assert.Equal(t, 50, p.Pagination.ItemsTotal)
		})
	}
	t.Run("ttl asc", func(t *testing.T) {
		p := decode(t, a.Page(apimodel.ListQuery{CurrentPage: 1, PageSize: 100, SortBy: "ttl", SortOrder: "asc"}))
		for i := 1; i < len(p.Data); i++ {
			assert.LessOrEqual(t, p.Data[i-1].TTL, p.Data[i].TTL)
		}
	})
}

func TestPastTheEnd(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mode    apimodel.PastEnd
		status  int
		items   int
		current int
	}{
		{"empty page", apimodel.PastEndEmpty, 200, 0, 5},
		{"404", apimodel.PastEnd404, 404, 0, 0},
		{"400", apimodel.PastEnd400, 400, 0, 0},
		{"last page", apimodel.PastEndLast, 200, 5, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := apimodel.New(apimodel.Options{Tokens: 25, Seed: 2, PastEnd: tc.mode})
			r := a.Page(apimodel.ListQuery{CurrentPage: 5, PageSize: 10})
			require.Equal(t, tc.status, r.Status)
			if tc.status != 200 {
				var problem map[string]any
				require.NoError(t, json.Unmarshal(r.Body, &problem))
				assert.EqualValues(t, tc.status, problem["status"])
				return
			}
			p := decode(t, r)
			assert.Len(t, p.Data, tc.items)
			assert.Equal(t, tc.current, p.Pagination.CurrentPage)
			assert.Equal(t, 25, p.Pagination.ItemsTotal)
		})
	}
}

func TestHandlerContract(t *testing.T) {
	h := apimodel.Handler{
		Account:  apimodel.New(apimodel.Options{Tokens: 3}),
		Sessions: apimodel.NewSessions("good-key", time.Hour, time.Now),
		Limit:    apimodel.NewRateLimit(500, time.Now),
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		typ                      string
	}{
		{"wrong key at login", http.MethodPost, "/auth/api-key", `{"apiKey":"bad"}`, 400, apimodel.TypeInvalidCredential},
		{"no key at login", http.MethodPost, "/auth/api-key", `{}`, 400, apimodel.TypeInvalidAttribute},
		{"list without credentials", http.MethodGet, "/upload-tokens", "", 401, apimodel.TypeAuthFailed},
		{"unknown path", http.MethodGet, "/nope", "", 404, apimodel.TypeNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
			require.NoError(t, err)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			assert.Equal(t, tc.status, resp.StatusCode)
			assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			assert.NotEmpty(t, resp.Header.Get("X-RateLimit-Remaining"))
			var problem map[string]any
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&problem))
			assert.Equal(t, tc.typ, problem["type"])
			assert.EqualValues(t, tc.status, problem["status"])
		})
	}
}
