package collector

import (
	"iter"
	"slices"
	"sync"

	"github.com/apivideo-exporter/apivideo_exporter/apiclient"
)

// creations counts the tokens created while the exporter runs, from the
// successive listings of one account.
//
// A token counts when a listing shows it created after the newest token
// any earlier successful listing showed. Both dates are api.video's
// createdAt, so an offset between api.video's clock and the exporter's
// plays no part. createdAt has whole seconds: tokens created in the same
// second as that newest token are told apart by the IDs of the tokens of
// that second already shown. The first listing only sets the baseline, so
// that the account's existing tokens are not counted; a failed listing
// changes nothing, so that the next successful one counts what it missed.
type creations struct {
	mu       sync.Mutex
	counted  uint64
	baseline bool
	// newest is the latest createdAt a listing showed; atNewest, sorted,
	// the IDs of the tokens created in that second that listings showed.
	newest   uint32
	atNewest []uint64
}

// observe counts the tokens of a successful listing created since the
// previous ones.
func (c *creations) observe(records iter.Seq[apiclient.Record]) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var (
		fresh uint64
		top   uint32
		atTop []uint64
	)
	for r := range records {
		id := r.ID()
		if r.Created > c.newest || r.Created == c.newest && !c.shown(id) {
			fresh++
		}
		switch {
		case r.Created > top:
			top, atTop = r.Created, append(atTop[:0], id)
		case r.Created == top:
			atTop = append(atTop, id)
		}
	}
	if c.baseline {
		c.counted += fresh
	}
	c.baseline = true
	switch {
	case top > c.newest:
		c.newest, c.atNewest = top, atTop
	case top == c.newest:
		c.atNewest = append(c.atNewest, atTop...)
	default:
		// The newest tokens went (deleted or expired): the newest date
		// shown stays, and the IDs of its second with it.
		return
	}
	slices.Sort(c.atNewest)
	c.atNewest = slices.Compact(c.atNewest)
}

func (c *creations) shown(id uint64) bool {
	_, ok := slices.BinarySearch(c.atNewest, id)
	return ok
}

// total is how many tokens were counted.
func (c *creations) total() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counted
}
