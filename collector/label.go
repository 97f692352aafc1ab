package collector

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
)

// LabelMode says what the token label of per-token series holds.
type LabelMode int

const (
	// LabelRedacted shows a prefix of the token, enough to find it in
	// api.video's dashboard but not to use it.
	LabelRedacted LabelMode = iota
	// LabelFull shows the whole token. The token is a credential: anyone
	// who can read the metrics can upload into the account.
	LabelFull
	// LabelNone emits no per-token series.
	LabelNone
)

// ErrUnknownLabelMode is returned by ParseLabelMode.
var ErrUnknownLabelMode = errors.New("unknown token label mode")

// ParseLabelMode parses redacted, full or none.
func ParseLabelMode(s string) (LabelMode, error) {
	switch s {
	case "redacted":
		return LabelRedacted, nil
	case "full":
		return LabelFull, nil
	case "none":
		return LabelNone, nil
	}
	return 0, fmt.Errorf("%w %q: want redacted, full or none", ErrUnknownLabelMode, s)
}

func (m LabelMode) String() string {
	return [...]string{"redacted", "full", "none"}[m]
}

const (
	// redactedPrefix characters are shown: "to" and six random characters,
	// about 36 bits of a token's 131.
	redactedPrefix = 8
	// revealAtMost characters may be shown to tell two tokens apart; past it
	// a hash suffix does the job.
	revealAtMost = 12
	redactMark   = "..."
)

// Labels returns the label value for each token, in order. Redacted labels
// are a prefix of the token, lengthened where two of the given tokens share
// it so that no two series collide, and stable for as long as the set of
// tokens sharing a prefix is.
func Labels(mode LabelMode, tokens []string) []string {
	out := make([]string, len(tokens))
	if mode == LabelFull {
		copy(out, tokens)
		return out
	}
	// Sort indexes by token so that tokens sharing a prefix are adjacent.
	order := make([]int, len(tokens))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return tokens[order[a]] < tokens[order[b]] })
	for k, i := range order {
		need := redactedPrefix
		if k > 0 {
			need = max(need, commonPrefix(tokens[i], tokens[order[k-1]])+1)
		}
		if k+1 < len(order) {
			need = max(need, commonPrefix(tokens[i], tokens[order[k+1]])+1)
		}
		out[i] = redact(tokens[i], need)
	}
	return out
}

// redact shows the first n characters of token, never more than
// revealAtMost nor all but a few of them; where that is not enough to tell
// tokens apart, a short hash of the whole token tells them apart instead.
func redact(token string, n int) string {
	limit := min(revealAtMost, len(token)-4)
	if limit < 1 {
		limit = 1
	}
	if n <= limit {
		return token[:min(n, len(token))] + redactMark
	}
	sum := sha256.Sum256([]byte(token))
	return token[:limit] + redactMark + hex.EncodeToString(sum[:4])
}

func commonPrefix(a, b string) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}
