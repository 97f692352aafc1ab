package apiclient

import "time"

// Bounds of the settings an operator gives for an account, by flag or in
// the accounts file.
const (
	// MaxConcurrency is the most pages of one account fetched at once.
	MaxConcurrency = 32
	// MaxTimeout is the longest time a scrape may spend on api.video.
	MaxTimeout = 5 * time.Minute
)
