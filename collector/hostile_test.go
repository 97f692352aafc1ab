package collector_test

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/go-kit/log"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/apivideo-exporter/apivideo_exporter/collector"
)

// Two tokens sharing twelve characters and the first four bytes of their
// SHA-256, found by trying about 130,000 tokens.
const (
	collidingA = "toCRAFTEDabcdTedcL8bqwT7"
	collidingB = "toCRAFTEDabcdKdqR2imWcP4"
)

func requireUniqueValidLabels(t *testing.T, tokens, labels []string) {
	t.Helper()
	require.Len(t, labels, len(tokens))
	seen := map[string]bool{}
	for i, l := range labels {
		require.True(t, utf8.ValidString(l), "label %q is not valid UTF-8", l)
		require.False(t, seen[l], "label %q twice", l)
		seen[l] = true
		if len(tokens[i]) >= 8 {
			require.NotContains(t, l, tokens[i], "a redacted label holds the whole token")
		}
	}
}

func TestRedactedLabelsOfHostileTokens(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tokens []string
		want   []string
	}{
		{"prefix cuts a two-byte character in half", []string{"to12345\u00e9abcdefghijklmnop"}, []string{"to12345_..."}},
		{"invalid bytes in the prefix", []string{"to\xff\xfe\x00\n1234567890abcdef"}, []string{"to____12..."}},
		{"tokens that differ only in bytes shown alike", []string{"to1234\xffXabcdefghijklmnop", "to1234\xfeXabcdefghijklmnop"},
			[]string{"to1234_X...~2", "to1234_X...~1"}},
		{"crafted hash prefix collision", []string{collidingA, collidingB},
			[]string{"toCRAFTEDabc...c38ed649~2", "toCRAFTEDabc...c38ed649~1"}},
		{"the same token twice", []string{"to37YfoPDRR2pcDKa6LsUE0M", "to37YfoPDRR2pcDKa6LsUE0M"},
			[]string{"to37YfoPDRR2...de4b6bc2~1", "to37YfoPDRR2...de4b6bc2~2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := collector.Labels(collector.LabelRedacted, tc.tokens)
			requireUniqueValidLabels(t, tc.tokens, got)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestRedactedLabelsAreUniqueWhateverTokensShare(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	pieces := []string{"to", "toAAAAAAAAAA", "toAAAAAAAAAAAA", "\xff", "\u00e9", "_", "-", "~", "...", "a", "0"}
	for round := range 200 {
		tokens := make([]string, 1+r.IntN(40))
		for i := range tokens {
			var b strings.Builder
			for range 1 + r.IntN(6) {
				b.WriteString(pieces[r.IntN(len(pieces))])
			}
			tokens[i] = b.String()
		}
		if round%2 == 0 {
			tokens = append(tokens, collidingA, collidingB, tokens[0])
		}
		requireUniqueValidLabels(t, tokens, collector.Labels(collector.LabelRedacted, tokens))
	}
}

func TestFullLabelsDropInvalidTokens(t *testing.T) {
	tokens := []string{"to37YfoPDRR2pcDKa6LsUE0M", "to12345\xe9bad", "to37YfoPDRR2pcDKa6LsUE0M", "toGoodTooéé"}
	assert.Equal(t, []string{"to37YfoPDRR2pcDKa6LsUE0M", "", "", "toGoodTooéé"},
		collector.Labels(collector.LabelFull, tokens))
}

func TestHostileTokensNeverBreakTheExposition(t *testing.T) {
	const bad, badStanding = "to12345\xe9SECRETsecret1234", "to99999\xe9SECRETstanding"
	for _, mode := range []collector.LabelMode{collector.LabelRedacted, collector.LabelFull} {
		t.Run(mode.String(), func(t *testing.T) {
			var logs bytes.Buffer
			// A crafted pair shares its label prefix across the two
			// per-token metrics: one token expires, the other does not.
			src := &stubSource{list: listOf(
				tok(bad, time.Hour),
				tok("to12345\u00e9SECRETsecret12", 2*time.Hour),
				tok(collidingA, 3*time.Hour),
				tok(collidingB, 0),
				tok("toNoExpiry00000000000000", 0),
				tok(badStanding, 0),
			)}
			c := collector.New(src, collector.Options{TokenLabel: mode, MaxTokenSeries: 10,
				Logger: log.NewLogfmtLogger(&logs), Now: func() time.Time { return now }})
			families := gather(t, c)
			assert.Equal(t, 1.0, families["apivideo_up"].GetMetric()[0].GetGauge().GetValue())
			assert.Equal(t, 6.0, families["apivideo_upload_tokens_active"].GetMetric()[0].GetGauge().GetValue())
			expiring := families["apivideo_upload_token_expires_in_seconds"].GetMetric()
			standing := families["apivideo_upload_token_without_expiry_created_timestamp_seconds"].GetMetric()
			if mode == collector.LabelFull {
				assert.Len(t, expiring, 2, "the series of the token that is not UTF-8 is dropped")
				assert.Len(t, standing, 2, "the series of the token that is not UTF-8 is dropped")
				assert.Contains(t, logs.String(), "dropped=2")
			} else {
				assert.Len(t, expiring, 3)
				assert.Len(t, standing, 3)
			}
			labels := map[string]bool{}
			for _, m := range append(expiring, standing...) {
				l := m.GetLabel()[0].GetValue()
				assert.True(t, utf8.ValidString(l))
				assert.False(t, labels[l], "label %q on two tokens", l)
				labels[l] = true
			}
			assert.NotContains(t, logs.String(), "SECRET")
		})
	}
}
