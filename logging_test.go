package main

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// logfmtKeys returns the keys of a logfmt line, in order.
func logfmtKeys(line string) []string {
	var keys []string
	for _, m := range regexp.MustCompile(`(?:^| )([\w.]+)=(?:"(?:[^"\\]|\\.)*"|\S*)`).FindAllStringSubmatch(line, -1) {
		keys = append(keys, m[1])
	}
	return keys
}

func logfmtValue(line, key string) string {
	m := regexp.MustCompile(`(?:^| )` + key + `=("(?:[^"\\]|\\.)*"|\S*)`).FindStringSubmatch(line)
	if m == nil {
		return ""
	}
	return strings.Trim(m[1], `"`)
}

// TestToolkitLinesLookLikeTheExportersOwn logs one line through each logger
// and checks that both carry the same keys, in the same order, with the
// time under ts in the same format.
func TestToolkitLinesLookLikeTheExportersOwn(t *testing.T) {
	t.Run("logfmt", func(t *testing.T) {
		var buf bytes.Buffer
		logger, toolkit := newLoggers(&buf, "logfmt", "info")
		level.Info(logger).Log("msg", "starting", "version", "1.0")
		toolkit.Info("Listening on", "address", "127.0.0.1:9856")
		lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
		require.Len(t, lines, 2, buf.String())
		own, bridged := logfmtKeys(lines[0]), logfmtKeys(lines[1])
		assert.Equal(t, []string{"level", "ts", "caller", "msg", "version"}, own, lines[0])
		assert.Equal(t, []string{"level", "ts", "caller", "msg", "address"}, bridged, lines[1])
		for _, line := range lines {
			ts := logfmtValue(line, "ts")
			parsed, err := time.Parse(time.RFC3339Nano, ts)
			require.NoError(t, err, line)
			assert.True(t, strings.HasSuffix(ts, "Z"), "UTC: %s", line)
			assert.WithinDuration(t, time.Now(), parsed, time.Minute)
		}
		for _, line := range lines {
			assert.Regexp(t, `^logging_test\.go:\d+$`, logfmtValue(line, "caller"), "the call site: %s", line)
		}
		assert.Equal(t, "info", logfmtValue(lines[1], "level"))
	})

	t.Run("json", func(t *testing.T) {
		var buf bytes.Buffer
		logger, toolkit := newLoggers(&buf, "json", "info")
		level.Info(logger).Log("msg", "starting")
		toolkit.Info("Listening on", "address", "127.0.0.1:9856")
		lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
		require.Len(t, lines, 2, buf.String())
		for _, line := range lines {
			var m map[string]any
			require.NoError(t, json.Unmarshal([]byte(line), &m), line)
			assert.NotContains(t, m, "time", line)
			ts, _ := m["ts"].(string)
			_, err := time.Parse(time.RFC3339Nano, ts)
			assert.NoError(t, err, line)
			assert.True(t, strings.HasSuffix(ts, "Z"), "UTC: %s", line)
			assert.Equal(t, "info", m["level"], line)
			assert.Contains(t, m, "caller", line)
		}
	})

	t.Run("level filter", func(t *testing.T) {
		var buf bytes.Buffer
		logger, toolkit := newLoggers(&buf, "logfmt", "warn")
		level.Info(logger).Log("msg", "dropped")
		toolkit.Info("dropped too")
		toolkit.Debug("and this")
		toolkit.Warn("kept", "k", "v")
		level.Warn(logger).Log("msg", "kept too")
		lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
		require.Len(t, lines, 2, buf.String())
		assert.Contains(t, lines[0], `msg=kept k=v`)
		assert.Contains(t, lines[1], `msg="kept too"`)
	})
}

// TestBridgedRecordsWithoutTime covers records with no time, or a "time"
// attribute that is not the record's.
func TestBridgedRecordsWithoutTime(t *testing.T) {
	var buf bytes.Buffer
	b := bridgedRecords{next: log.NewLogfmtLogger(&buf)}
	require.NoError(t, b.Log("level", level.InfoValue(), "msg", "no time", "time", "not a time"))
	line := strings.TrimSpace(buf.String())
	assert.Equal(t, []string{"level", "ts", "msg", "time"}, logfmtKeys(line))
	_, err := time.Parse(time.RFC3339Nano, logfmtValue(line, "ts"))
	assert.NoError(t, err)
}
