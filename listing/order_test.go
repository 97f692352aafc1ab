package listing

import (
	"math"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apivideo-exporter/apivideo_exporter/apiclient"
)

func TestComparePublication(t *testing.T) {
	type Record = apiclient.Record
	standingOld := Record{Hash: 8, Created: 10}
	standingNew := Record{Hash: 4, Created: 20}
	soon := Record{Hash: 2, Created: 5, Expires: 30}
	soonTwin := Record{Hash: 6, Created: 6, Expires: 30}
	late := Record{Hash: 10, Created: 1, Expires: math.MaxUint32}
	order := []Record{late, soonTwin, standingNew, soon, standingOld}
	slices.SortFunc(order, ComparePublication)
	assert.Equal(t, []Record{standingOld, standingNew, soon, soonTwin, late}, order)
	assert.Zero(t, ComparePublication(soon, soon), "the same token")
}

func TestWindow(t *testing.T) {
	for _, tc := range []struct{ lo, hi int }{
		{0, 50}, {50, 110}, {450, 549}, {480, 520}, {499, 500}, {4930, 5010}, {999950, 1000049}, {-20, 10}, {7, 7},
	} {
		number, size := window(tc.lo, tc.hi)
		start, end := (number-1)*size, number*size
		require.True(t, size >= 1 && size <= pageSize && number >= 1, "%v: page %d of %d", tc, number, size)
		mid := (max(tc.lo, 0) + tc.hi) / 2
		assert.True(t, start <= mid && mid < end, "%v: page %d of %d covers [%d, %d), not the middle", tc, number, size, start, end)
		if tc.hi-max(tc.lo, 0) < 40 {
			assert.True(t, start <= max(tc.lo, 0) && tc.hi < end, "%v: a narrow range is covered whole, not [%d, %d)", tc, start, end)
		}
	}
}
