// Package e2e holds the end-to-end test: the exporter binary against the
// api.video fake, scraped by a real Prometheus that evaluates the alert
// rules, with every query of the dashboard, the rules and the promql blocks
// of the README, CONTRIBUTING.md and docs/*.md run through Prometheus' HTTP
// API. Its tests build with the tag prometheus only, so that go test ./...
// needs Go alone; they need Debian's prometheus package (prometheus and
// promtool) and fail without it.
//
//	go test -tags prometheus -v ./e2e
package e2e
