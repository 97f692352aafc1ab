// Package e2e holds the end-to-end test: the exporter binary against the
// api.video fake, scraped by a real Prometheus that evaluates the alert
// rules, with every query of the dashboard, the rules and the promql blocks
// of the README, CONTRIBUTING.md and docs/*.md run through Prometheus' HTTP
// API. It needs Debian's prometheus package
// (prometheus and promtool) and fails without it.
//
//	go test -v ./e2e
package e2e
