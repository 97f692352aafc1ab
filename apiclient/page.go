package apiclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/go-kit/log/level"
)

// listOrder sorts the list oldest first: new tokens are appended at its
// end, and a token that expires or is deleted moves every later token one
// place towards the start.
const listOrder = "sortBy=createdAt&sortOrder=asc"

// Page fetches page number of size tokens of GET /upload-tokens, oldest
// first, logging in first if needed and once more after a 401, in case the
// access token was revoked or expired early. A page past the end of the
// list may come back as an *APIError with status 404 or 400 (see
// PastEnd), as an empty page, or as the last page again.
func (c *Client) Page(ctx context.Context, number, size int) (*Page, error) {
	if size < 1 || size > MaxPageSize || number < 1 {
		return nil, fmt.Errorf("page %d of size %d: out of range", number, size)
	}
	buf := c.bodies.Get().(*bytes.Buffer)
	defer c.putBody(buf)
	path := fmt.Sprintf("/upload-tokens?currentPage=%d&pageSize=%d&%s", number, size, listOrder)
	var date time.Time
	for relogged := false; ; relogged = true {
		bearer, err := c.auth.token(ctx)
		if err != nil {
			return nil, err
		}
		err = c.do(ctx, request{method: http.MethodGet, path: path, bearer: bearer, date: &date}, buf)
		var apiErr *APIError
		if !relogged && errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusUnauthorized {
			level.Debug(c.logger).Log("msg", "access token refused, logging in again", "page", number)
			c.auth.invalidate(bearer)
			continue
		}
		if err != nil {
			return nil, err
		}
		break
	}
	dec := c.decoders.Get().(*pageDecoder)
	defer c.decoders.Put(dec)
	p, err := dec.decode(buf.Bytes())
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	p.Date = date
	return p, nil
}

// PastEnd reports whether err is api.video's answer to a page past the end
// of the list: 404 or 400.
func PastEnd(err error) bool {
	var apiErr *APIError
	return errors.As(err, &apiErr) &&
		(apiErr.StatusCode == http.StatusNotFound || apiErr.StatusCode == http.StatusBadRequest)
}
