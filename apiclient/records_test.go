package apiclient

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestKeeper(t *testing.T) {
	tok := func(i int, created, expires uint32) Token {
		return Token{Value: fmt.Sprint("to", i), Record: Record{Hash: uint64(i+1) << 1, Created: created, Expires: expires}}
	}
	for _, tc := range []struct {
		name   string
		keep   int
		offers [][]Token
		want   []string
	}{
		{"the soonest to expire, whatever the order offered", 2,
			[][]Token{{tok(1, 10, 500), tok(2, 10, 100)}, {tok(3, 10, 300), tok(4, 10, 200)}}, []string{"to2", "to4"}},
		{"the oldest without expiry", 2,
			[][]Token{{tok(1, 30, 0), tok(2, 10, 0)}, {tok(3, 20, 0)}}, []string{"to2", "to3"}},
		{"a token offered twice is kept once", 3,
			[][]Token{{tok(1, 10, 100)}, {tok(1, 10, 100), tok(2, 10, 200)}}, []string{"to1", "to2"}},
		{"an expiry past 2106 is kept", 2,
			[][]Token{{tok(1, 10, math.MaxUint32)}}, []string{"to1"}},
		{"after an eviction, a later token is turned away though there is room", 1,
			[][]Token{{tok(1, 10, 100), tok(2, 10, 200)}, {tok(3, 10, 150)}}, []string{"to1"}},
		{"nothing to keep", 0, [][]Token{{tok(1, 10, 100)}}, nil},
		{"without expiry first, then the soonest to expire, the cap counting both", 3,
			[][]Token{{tok(1, 10, 100), tok(2, 30, 0), tok(3, 10, 50)}, {tok(4, 20, 0), tok(5, 10, 20)}}, []string{"to2", "to4", "to5"}},
		{"a token without expiry evicts any expiring one, however soon it expires", 2,
			[][]Token{{tok(1, 10, 11), tok(2, 10, 12)}, {tok(3, 90, 0)}}, []string{"to1", "to3"}},
		{"more without expiry than the cap: the oldest, no expiring one", 2,
			[][]Token{{tok(1, 10, 11), tok(2, 50, 0)}, {tok(3, 40, 0), tok(4, 60, 0)}}, []string{"to2", "to3"}},
		{"same second: the lower hash, whatever the order offered", 2,
			[][]Token{{tok(3, 10, 100), tok(1, 10, 100)}, {tok(2, 10, 100)}}, []string{"to1", "to2"}},
		{"the bit a lister uses for itself does not tell tokens apart", 2,
			[][]Token{{tok(1, 10, 100)}, {{Value: "to1", Record: Record{Hash: 2<<1 | 1, Created: 10, Expires: 100}}}}, []string{"to1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newKeeper(tc.keep)
			for _, o := range tc.offers {
				k.offer(o)
			}
			var got []string
			for _, v := range k.values() {
				got = append(got, v.Value)
			}
			slices.Sort(got)
			assert.Equal(t, tc.want, got)
		})
	}
	t.Run("dropped tokens leave the others first", func(t *testing.T) {
		k := newKeeper(2)
		k.offer([]Token{tok(1, 10, 100), tok(2, 10, 200), tok(3, 10, 300)})
		k.drop(func(r Record) bool { return r.Expires == 100 })
		// 300 was turned away: 250 comes before it and is kept, 400 not.
		k.offer([]Token{tok(4, 10, 250), tok(5, 10, 400)})
		var got []string
		for _, v := range k.values() {
			got = append(got, v.Value)
		}
		slices.Sort(got)
		assert.Equal(t, []string{"to2", "to4"}, got)
	})
}

func TestBefore(t *testing.T) {
	standingOld := Record{Hash: 8, Created: 10}
	standingNew := Record{Hash: 4, Created: 20}
	soon := Record{Hash: 2, Created: 5, Expires: 30}
	soonTwin := Record{Hash: 6, Created: 6, Expires: 30}
	late := Record{Hash: 10, Created: 1, Expires: math.MaxUint32}
	order := []Record{late, soonTwin, standingNew, soon, standingOld}
	slices.SortFunc(order, Before)
	assert.Equal(t, []Record{standingOld, standingNew, soon, soonTwin, late}, order)
	assert.Zero(t, Before(soon, Record{Hash: soon.Hash | 1, Created: soon.Created, Expires: soon.Expires}), "the same token")
}
