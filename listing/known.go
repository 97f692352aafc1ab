package listing

import (
	"cmp"
	"container/heap"
	"iter"
	"slices"
	"sort"
	"strings"

	"github.com/apivideo-exporter/apivideo_exporter/apiclient"
)

// valueBytes is the room for a token's value kept inline: api.video's
// tokens are "to" and 22 characters. Longer values are kept aside.
const valueBytes = 24

// entry is a kept token: its record and its value, 40 bytes and no pointer,
// so that a million tokens cost 40 MB and nothing for the garbage
// collector to scan.
type entry struct {
	apiclient.Record
	value [valueBytes]byte
}

// known is the incremental listing's copy of the list: every token, sorted
// by createdAt then ID. api.video orders tokens of one second in no
// specified order, so positions within a second are never relied on.
type known struct {
	entries []entry
	// long holds the values that do not fit in an entry.
	long map[uint64]string
}

func compareEntries(a, b entry) int {
	return cmp.Or(cmp.Compare(a.Created, b.Created), cmp.Compare(a.ID(), b.ID()))
}

func newEntry(t apiclient.Token, long map[uint64]string) entry {
	e := entry{Record: t.Record}
	if len(t.Value) > valueBytes || len(t.Value) == 0 || t.Value[len(t.Value)-1] == 0 {
		long[t.ID()] = strings.Clone(t.Value)
		return e
	}
	copy(e.value[:], t.Value)
	return e
}

func (k *known) value(e *entry) string {
	n := 0
	for n < valueBytes && e.value[n] != 0 {
		n++
	}
	if n == 0 {
		return k.long[e.ID()]
	}
	return string(e.value[:n])
}

func (k *known) len() int { return len(k.entries) }

// lower is the index of the first token created at second c or later.
func (k *known) lower(c uint32) int {
	return sort.Search(len(k.entries), func(i int) bool { return k.entries[i].Created >= c })
}

// find returns the index of the token r, or -1.
func (k *known) find(r apiclient.Record) int {
	i, ok := slices.BinarySearchFunc(k.entries, entry{Record: r}, compareEntries)
	if !ok {
		return -1
	}
	return i
}

func (k *known) has(r apiclient.Record) bool { return k.find(r) >= 0 }

// add inserts tokens not kept yet and returns how many; they are mostly
// the newest, so they go at the end and one sort of the tail places them.
func (k *known) add(tokens []apiclient.Token) int {
	if k.long == nil {
		k.long = map[uint64]string{}
	}
	k.entries = grow(k.entries, len(tokens))
	kept := k.entries
	n := len(kept)
	oldest := uint32(0)
	for _, t := range tokens {
		if _, ok := slices.BinarySearchFunc(kept, entry{Record: t.Record}, compareEntries); ok ||
			slices.ContainsFunc(k.entries[n:], func(e entry) bool { return e.ID() == t.ID() }) {
			continue
		}
		if len(k.entries) == n || t.Created < oldest {
			oldest = t.Created
		}
		k.entries = append(k.entries, newEntry(t, k.long))
	}
	if len(k.entries) > n {
		from := sort.Search(n, func(i int) bool { return k.entries[i].Created >= oldest })
		slices.SortFunc(k.entries[from:], compareEntries)
	}
	return len(k.entries) - n
}

// grow returns entries with room for n more: a sixteenth more than needed
// where append would add a quarter, which at a million tokens is 10 MB
// kept for nothing.
func grow(entries []entry, n int) []entry {
	if cap(entries)-len(entries) >= n {
		return entries
	}
	grown := make([]entry, len(entries), len(entries)+max(n, len(entries)/16))
	copy(grown, entries)
	return grown
}

// remove drops the tokens for which gone is true and returns how many.
func (k *known) remove(gone func(*entry) bool) int {
	n := len(k.entries)
	k.entries = slices.DeleteFunc(k.entries, func(e entry) bool {
		if gone(&e) {
			delete(k.long, e.ID())
			return true
		}
		return false
	})
	return n - len(k.entries)
}

// records returns the kept records, without copying them.
func (k *known) records() iter.Seq[apiclient.Record] {
	return func(yield func(apiclient.Record) bool) {
		for i := range k.entries {
			if !yield(k.entries[i].Record) {
				return
			}
		}
	}
}

// firstValues returns the keep tokens first in the order of publication
// among those active at the second now, with their values.
func (k *known) firstValues(now int64, keep int) []apiclient.Token {
	if keep <= 0 {
		return nil
	}
	h := &publicationHeap{}
	for i := range k.entries {
		e := &k.entries[i]
		if e.Expires != 0 && int64(e.Expires) <= now {
			continue
		}
		if h.Len() < keep {
			heap.Push(h, e.Record)
		} else if ComparePublication(e.Record, (*h)[0]) < 0 {
			(*h)[0] = e.Record
			heap.Fix(h, 0)
		}
	}
	out := make([]apiclient.Token, 0, h.Len())
	for _, r := range *h {
		out = append(out, apiclient.Token{Value: k.value(&k.entries[k.find(r)]), Record: r})
	}
	return out
}

// publicationHeap is a max-heap in the order of publication: its root is
// the token published last.
type publicationHeap []apiclient.Record

func (h publicationHeap) Len() int           { return len(h) }
func (h publicationHeap) Less(i, j int) bool { return ComparePublication(h[i], h[j]) > 0 }
func (h publicationHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *publicationHeap) Push(x any)        { *h = append(*h, x.(apiclient.Record)) }
func (h *publicationHeap) Pop() any {
	old := *h
	r := old[len(old)-1]
	*h = old[:len(old)-1]
	return r
}
