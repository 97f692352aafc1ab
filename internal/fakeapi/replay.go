package fakeapi

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"

	"github.com/apivideo-exporter/apivideo_exporter/internal/apimodel"
)

// NewReplay starts a server that answers every login and serves the fake's
// current pages of 100 tokens, oldest first, rendered once now, whatever
// the sort asked; pages of other sizes are rendered when asked. Benchmarks
// use it so that their figures count the client's work, not the fake's.
// Close it when done.
func (s *Server) NewReplay() *httptest.Server {
	total := len(s.account.Tokens())
	pages := map[string][]byte{}
	for p := 1; p <= max((total+99)/100, 1); p++ {
		pages[strconv.Itoa(p)] = s.account.Page(apimodel.ListQuery{CurrentPage: p, PageSize: 100, SortBy: "createdAt", SortOrder: "asc"}).Body
	}
	var mu sync.Mutex
	others := map[apimodel.ListQuery]apimodel.Reply{}
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("X-RateLimit-Limit", "500")
		h.Set("X-RateLimit-Remaining", "499")
		h.Set("X-RateLimit-Retry-After", "60")
		switch r.URL.Path {
		case "/auth/api-key", "/auth/refresh":
			io.WriteString(w, `{"token_type":"Bearer","expires_in":3600,"access_token":"replay-access","refresh_token":"replay-refresh"}`)
		case "/upload-tokens":
			body, ok := pages[r.URL.Query().Get("currentPage")]
			if !ok || r.URL.Query().Get("pageSize") != "100" {
				q, bad := apimodel.ParseListQuery(r)
				if bad != nil {
					bad.Write(w)
					return
				}
				q.SortBy, q.SortOrder = "createdAt", "asc"
				mu.Lock()
				reply, ok := others[q]
				if !ok {
					reply = s.account.Page(q)
					others[q] = reply
				}
				mu.Unlock()
				reply.Write(w)
				return
			}
			h.Set("Content-Length", strconv.Itoa(len(body)))
			w.Write(body)
		default:
			apimodel.WriteProblem(w, http.StatusNotFound, apimodel.TypeNotFound, "The requested resource was not found.", "")
		}
	}))
}
