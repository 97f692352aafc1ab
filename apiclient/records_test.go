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
	t.Run("dropped tokens leave the others the soonest", func(t *testing.T) {
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
