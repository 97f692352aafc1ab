package collector

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
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

// labelModeNames are the modes' names, in the order of their values: the
// one list that flags, help texts and String read.
var labelModeNames = [...]string{LabelRedacted: "redacted", LabelFull: "full", LabelNone: "none"}

// LabelModeNames returns the names UnmarshalText accepts.
func LabelModeNames() []string { return labelModeNames[:] }

// ErrUnknownLabelMode is returned by UnmarshalText for a name it does not know.
var ErrUnknownLabelMode = errors.New("unknown token label mode")

// UnmarshalText sets m from one of LabelModeNames.
func (m *LabelMode) UnmarshalText(text []byte) error {
	for i, name := range labelModeNames {
		if string(text) == name {
			*m = LabelMode(i)
			return nil
		}
	}
	return fmt.Errorf("%w %q: want one of %s", ErrUnknownLabelMode, text, strings.Join(labelModeNames[:], ", "))
}

// MarshalText returns the mode's name.
func (m LabelMode) MarshalText() ([]byte, error) {
	if m < 0 || int(m) >= len(labelModeNames) {
		return nil, fmt.Errorf("%w %d", ErrUnknownLabelMode, int(m))
	}
	return []byte(labelModeNames[m]), nil
}

func (m LabelMode) String() string {
	if m < 0 || int(m) >= len(labelModeNames) {
		return fmt.Sprintf("LabelMode(%d)", int(m))
	}
	return labelModeNames[m]
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

// Labels returns the label value for each token, in order, no two alike.
//
// Redacted labels are a prefix of the token, lengthened where two of the
// given tokens share it, stable for as long as the set of tokens sharing a
// prefix is. A prefix shows only letters, digits, '-' and '_' (any other
// byte shows as '_'), so it is valid UTF-8 whatever the token holds. Should
// two labels still come out alike (tokens that differ only in bytes shown
// as '_', or whose hashes share their first four bytes), each gets "~n",
// its rank among them in the tokens' sorted order: labels are unique by
// construction, never by chance.
//
// Full labels are the tokens themselves; a token that is not valid UTF-8,
// or that repeats an earlier one, gets "" and its series must be dropped.
func Labels(mode LabelMode, tokens []string) []string {
	out := make([]string, len(tokens))
	if mode == LabelFull {
		seen := make(map[string]bool, len(tokens))
		for i, t := range tokens {
			if utf8.ValidString(t) && !seen[t] {
				out[i] = t
				seen[t] = true
			}
		}
		return out
	}
	// Sort indexes by token so that tokens sharing a prefix are adjacent.
	order := make([]int, len(tokens))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return tokens[order[a]] < tokens[order[b]] })
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
	seen := make(map[string]int, len(tokens))
	for _, l := range out {
		seen[l]++
	}
	rank := make(map[string]int)
	for _, i := range order {
		if l := out[i]; seen[l] > 1 {
			rank[l]++
			out[i] = l + "~" + strconv.Itoa(rank[l])
		}
	}
	return out
}

// redact shows the first n bytes of token, never more than revealAtMost
// nor all but a few of them; where that is not enough to tell tokens
// apart, a short hash of the whole token tells them apart instead.
func redact(token string, n int) string {
	limit := min(revealAtMost, len(token)-4)
	if limit < 1 {
		limit = 1
	}
	if n <= limit {
		return shown(token[:min(n, len(token))]) + redactMark
	}
	sum := sha256.Sum256([]byte(token))
	return shown(token[:limit]) + redactMark + hex.EncodeToString(sum[:4])
}

// shown keeps the letters, digits, '-' and '_' of a token's prefix and
// turns any other byte into '_'.
func shown(prefix string) string {
	b := []byte(prefix)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	return string(b)
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
