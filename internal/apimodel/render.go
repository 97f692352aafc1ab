package apimodel

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// Problem types of api.video's error bodies.
const (
	TypeInvalidAttribute  = "https://docs.api.video/reference/invalid-attribute"
	TypeInvalidCredential = "https://docs.api.video/reference/authentication-invalid-user-credentials"
	TypeAuthFailed        = "https://docs.api.video/reference/authentication-failed"
	TypeNotFound          = "https://docs.api.video/reference/resource-not-found"
	TypeTooManyRequests   = "https://docs.api.video/reference/too-many-requests"
	TypeInternal          = "https://docs.api.video/reference/internal-error"
)

// WriteProblem writes an api.video error body: JSON, {type,title,status,name?}.
func WriteProblem(w http.ResponseWriter, status int, typ, title, name string) {
	p := map[string]any{"type": typ, "title": title, "status": status}
	if name != "" {
		p["name"] = name
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(p)
}

// Reply is a rendered reply to GET /upload-tokens.
type Reply struct {
	Status int
	// Body is JSON: a page, or a problem when Status is not 200.
	Body []byte
}

// Write sends the reply.
func (r Reply) Write(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(r.Body)))
	w.WriteHeader(r.Status)
	w.Write(r.Body)
}

// ListQuery is the query of GET /upload-tokens.
type ListQuery struct {
	CurrentPage, PageSize int
	SortBy, SortOrder     string
}

// ParseListQuery reads and checks the query as api.video does: pages from
// 1, sizes 1 to 100 (25 by default), sortBy createdAt or ttl, sortOrder asc
// or desc. It returns an error reply for a bad value.
func ParseListQuery(r *http.Request) (ListQuery, *Reply) {
	q := r.URL.Query()
	lq := ListQuery{CurrentPage: 1, PageSize: 25, SortBy: q.Get("sortBy"), SortOrder: q.Get("sortOrder")}
	if v := q.Get("currentPage"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return lq, problem(http.StatusBadRequest, TypeInvalidAttribute, "This value should be greater than or equal to 1.", "currentPage")
		}
		lq.CurrentPage = n
	}
	if v := q.Get("pageSize"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return lq, problem(http.StatusBadRequest, TypeInvalidAttribute, "This value should be between 1 and 100.", "pageSize")
		}
		lq.PageSize = n
	}
	if lq.SortBy != "" && lq.SortBy != "createdAt" && lq.SortBy != "ttl" {
		return lq, problem(http.StatusBadRequest, TypeInvalidAttribute, "This value should be createdAt or ttl.", "sortBy")
	}
	if lq.SortOrder != "" && lq.SortOrder != "asc" && lq.SortOrder != "desc" {
		return lq, problem(http.StatusBadRequest, TypeInvalidAttribute, "This value should be asc or desc.", "sortOrder")
	}
	return lq, nil
}

func problem(status int, typ, title, name string) *Reply {
	p := map[string]any{"type": typ, "title": title, "status": status}
	if name != "" {
		p["name"] = name
	}
	body, _ := json.Marshal(p)
	return &Reply{Status: status, Body: body}
}

type tokenJSON struct {
	CreatedAt string  `json:"createdAt"`
	ExpiresAt *string `json:"expiresAt"`
	Token     string  `json:"token"`
	TTL       int     `json:"ttl"`
}

type linkJSON struct {
	Rel string `json:"rel"`
	URI string `json:"uri"`
}

// dateFormats are the shapes api.video's dates come in; tokens take them in turn.
var dateFormats = []string{"2006-01-02T15:04:05-07:00", "2006-01-02T15:04:05.000Z07:00", time.RFC3339}

func formatDate(t time.Time, i int) string {
	return t.UTC().Format(dateFormats[i%len(dateFormats)])
}

// Page renders one page of the active tokens, as of the account's clock.
// Without sortBy the list is newest first. A page past the last one gets
// the account's PastEnd answer.
func (a *Account) Page(q ListQuery) Reply {
	a.mu.Lock()
	a.advanceLocked()
	active := a.activeLocked()
	total := len(active)
	size := q.PageSize
	pagesTotal := max((total+size-1)/size, 1)
	current := q.CurrentPage
	if current > pagesTotal {
		switch a.pastEnd {
		case PastEnd404:
			a.mu.Unlock()
			return *problem(http.StatusNotFound, TypeNotFound, "The requested resource was not found.", "")
		case PastEnd400:
			a.mu.Unlock()
			return *problem(http.StatusBadRequest, TypeInvalidAttribute, fmt.Sprintf("This value should be less than or equal to %d.", pagesTotal), "currentPage")
		case PastEndLast:
			current = pagesTotal
		}
	}
	start := min((current-1)*size, total)
	end := min(start+size, total)
	items := make([]tokenJSON, 0, end-start)
	at := func(i int) Token { return active[i] }
	switch {
	case q.SortBy == "ttl":
		sorted := slices.Clone(active)
		slices.SortStableFunc(sorted, func(x, y Token) int { return x.TTL - y.TTL })
		if q.SortOrder == "desc" {
			slices.Reverse(sorted)
		}
		at = func(i int) Token { return sorted[i] }
	case q.SortOrder == "asc": // by createdAt, oldest first
	default: // newest first
		at = func(i int) Token { return active[total-1-i] }
	}
	for n := start; n < end; n++ {
		t := at(n)
		item := tokenJSON{CreatedAt: formatDate(t.CreatedAt, n), Token: t.Token, TTL: t.TTL}
		if t.TTL != 0 {
			e := formatDate(t.ExpiresAt(), n)
			item.ExpiresAt = &e
		}
		items = append(items, item)
	}
	a.mu.Unlock()
	uri := func(p int) string {
		u := fmt.Sprintf("/upload-tokens?currentPage=%d&pageSize=%d", p, size)
		if q.SortBy != "" {
			u += "&sortBy=" + q.SortBy
		}
		if q.SortOrder != "" {
			u += "&sortOrder=" + q.SortOrder
		}
		return u
	}
	links := []linkJSON{{"self", uri(current)}, {"first", uri(1)}}
	if current > 1 {
		links = append(links, linkJSON{"previous", uri(current - 1)})
	}
	if current < pagesTotal {
		links = append(links, linkJSON{"next", uri(current + 1)})
	}
	links = append(links, linkJSON{"last", uri(pagesTotal)})
	body, _ := json.Marshal(map[string]any{
		"data": items,
		"pagination": map[string]any{
			"currentPage":      current,
			"currentPageItems": len(items),
			"pageSize":         size,
			"pagesTotal":       pagesTotal,
			"itemsTotal":       total,
			"links":            links,
		},
	})
	return Reply{Status: http.StatusOK, Body: body}
}
