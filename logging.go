package main

import (
	"io"
	"log/slog"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	slgokit "github.com/tjhop/slog-gokit"
)

// newLoggers returns the exporter's logger, writing to w in format at lvl
// and above, and the *slog.Logger exporter-toolkit takes, bridged onto the
// same output so that its lines look like the exporter's own: level, ts
// (UTC, RFC 3339), caller, msg, then the rest.
func newLoggers(w io.Writer, format, lvl string) (log.Logger, *slog.Logger) {
	sw := log.NewSyncWriter(w)
	var base log.Logger
	if format == "json" {
		base = log.NewJSONLogger(sw)
	} else {
		base = log.NewLogfmtLogger(sw)
	}
	base = level.NewFilter(base, level.Allow(level.ParseDefault(lvl, level.InfoValue())))
	logger := log.With(base, "ts", log.DefaultTimestampUTC, "caller", log.DefaultCaller)
	toolkit := slog.New(slgokit.NewGoKitHandler(bridgedRecords{base}, slogLevel(lvl)))
	return logger, toolkit
}

func slogLevel(lvl string) slog.Level {
	switch lvl {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// bridgedRecords rewrites the records of the slog bridge, which come as
// level, caller, time (a time.Time in the local zone), msg and attributes,
// into the exporter's order and time key.
type bridgedRecords struct{ next log.Logger }

func (b bridgedRecords) Log(keyvals ...any) error {
	var lvl, caller, ts any
	rest := make([]any, 0, len(keyvals))
	for i := 0; i+1 < len(keyvals); i += 2 {
		switch k, v := keyvals[i], keyvals[i+1]; k {
		case level.Key():
			lvl = v
		case "caller":
			caller = v
		case slog.TimeKey:
			if t, ok := v.(time.Time); ok {
				ts = t.UTC().Format(time.RFC3339Nano)
			} else {
				rest = append(rest, k, v)
			}
		default:
			rest = append(rest, k, v)
		}
	}
	if ts == nil {
		ts = time.Now().UTC().Format(time.RFC3339Nano)
	}
	out := make([]any, 0, len(keyvals)+2)
	if lvl != nil {
		out = append(out, level.Key(), lvl)
	}
	out = append(out, "ts", ts)
	if caller != nil {
		out = append(out, "caller", caller)
	}
	return b.next.Log(append(out, rest...)...)
}
