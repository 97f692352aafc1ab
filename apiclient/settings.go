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

// The ways of listing an account's tokens, as --apivideo.listing and an
// account's listing setting name them: every page on each scrape, or
// incrementally (see Incremental).
const (
	ListingFull        = "full"
	ListingIncremental = "incremental"
)

// ListingModes returns the listing modes, the default first.
func ListingModes() []string { return []string{ListingFull, ListingIncremental} }
