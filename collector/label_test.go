package collector_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apivideo-exporter/apivideo_exporter/collector"
)

func TestLabels(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mode   collector.LabelMode
		tokens []string
		want   []string
	}{
		{"prefix of eight", collector.LabelRedacted,
			[]string{"to37YfoPDRR2pcDKa6LsUE0M", "to1W3ZS9PdUBZWzzTEZr1B79"},
			[]string{"to37YfoP...", "to1W3ZS9..."}},
		{"shared prefix is lengthened just enough", collector.LabelRedacted,
			[]string{"toABCDEFGHxxxxxxxxxxxxxx", "toABCDEFGHyyyyyyyyyyyyyy", "toZZZZZZZZzzzzzzzzzzzzzz"},
			[]string{"toABCDEFGHx...", "toABCDEFGHy...", "toZZZZZZ..."}},
		{"past twelve characters a hash tells them apart", collector.LabelRedacted,
			[]string{"toABCDEFGHIJKLMNxxxxxxxx", "toABCDEFGHIJKLMNyyyyyyyy"},
			[]string{"toABCDEFGHIJ...c03be725", "toABCDEFGHIJ...e199c984"}},
		{"full", collector.LabelFull,
			[]string{"to37YfoPDRR2pcDKa6LsUE0M"},
			[]string{"to37YfoPDRR2pcDKa6LsUE0M"}},
		{"short tokens are shown as one character and a hash", collector.LabelRedacted,
			[]string{"toABC"},
			[]string{"t...53f336f1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := collector.Labels(tc.mode, tc.tokens)
			require.Len(t, got, len(tc.want))
			for i := range tc.want {
				assert.Equal(t, tc.want[i], got[i])
			}
		})
	}
}

func TestRedactedLabelsAreUniqueAndStable(t *testing.T) {
	// Many tokens sharing long prefixes, in every arrangement.
	var tokens []string
	for _, prefix := range []string{"toAAAAAAAA", "toAAAAAAAAAAAA", "toAAAAAAAAAAAAAAAAAAAA"} {
		for _, tail := range []string{"00", "01", "10", "11", "zz"} {
			tok := prefix + tail
			tok += strings.Repeat("q", 24-len(tok))
			tokens = append(tokens, tok)
		}
	}
	labels := collector.Labels(collector.LabelRedacted, tokens)
	seen := map[string]bool{}
	for i, l := range labels {
		assert.False(t, seen[l], "duplicate label %q", l)
		seen[l] = true
		assert.NotEqual(t, tokens[i], l)
		shown := strings.SplitN(l, "...", 2)[0]
		assert.LessOrEqual(t, len(shown), 12, "at most twelve characters shown")
		assert.True(t, strings.HasPrefix(tokens[i], shown))
	}
	// The same tokens in another order get the same labels.
	reversed := make([]string, len(tokens))
	for i, tk := range tokens {
		reversed[len(tokens)-1-i] = tk
	}
	again := collector.Labels(collector.LabelRedacted, reversed)
	for i := range tokens {
		assert.Equal(t, labels[i], again[len(tokens)-1-i])
	}
}

func TestRedactedLabelChangesOnlyWithItsPrefixGroup(t *testing.T) {
	tokens := []string{"toABCDEFGHxxxxxxxxxxxxxx", "toKLMNOPQRxxxxxxxxxxxxxx", "toSTUVWXYZxxxxxxxxxxxxxx"}
	before := collector.Labels(collector.LabelRedacted, tokens)

	// A token with a prefix of its own changes no label.
	after := collector.Labels(collector.LabelRedacted, append(tokens, "toNEWNEWNExxxxxxxxxxxxxx"))
	assert.Equal(t, before, after[:3])

	// A token sharing the first one's prefix lengthens that label only.
	after = collector.Labels(collector.LabelRedacted, append(tokens, "toABCDEFGHyyyyyyyyyyyyyy"))
	assert.Equal(t, "toABCDEFGHx...", after[0])
	assert.Equal(t, "toABCDEFGHy...", after[3])
	assert.Equal(t, before[1:], after[1:3])
}

func TestLabelModeText(t *testing.T) {
	for _, tc := range []struct {
		name string
		mode collector.LabelMode
	}{
		{"redacted", collector.LabelRedacted},
		{"full", collector.LabelFull},
		{"none", collector.LabelNone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m collector.LabelMode
			require.NoError(t, m.UnmarshalText([]byte(tc.name)))
			assert.Equal(t, tc.mode, m)
			assert.Equal(t, tc.name, m.String())
			text, err := m.MarshalText()
			require.NoError(t, err)
			assert.Equal(t, tc.name, string(text))
		})
	}
	assert.Equal(t, []string{"redacted", "full", "none"}, collector.LabelModeNames())

	for _, bad := range []string{"partial", "", "Full", "redacted "} {
		m := collector.LabelNone
		err := m.UnmarshalText([]byte(bad))
		assert.ErrorIs(t, err, collector.ErrUnknownLabelMode, "%q", bad)
		assert.ErrorContains(t, err, "redacted, full, none")
		assert.Equal(t, collector.LabelNone, m, "left unchanged by %q", bad)
	}
	_, err := collector.LabelMode(7).MarshalText()
	assert.ErrorIs(t, err, collector.ErrUnknownLabelMode)
	assert.Equal(t, "LabelMode(7)", collector.LabelMode(7).String())
}
