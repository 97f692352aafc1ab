// Package listing lists an api.video account's upload tokens while the
// list changes under it, through the small Pager interface that
// *apiclient.Client implements.
//
// A listing made during a scrape spanning [t0, t1] returns every token in
// the list during the whole of [t0, t1], only tokens in the list at some
// instant of it, and each once. It rests on three facts of the list read
// oldest first (sortBy=createdAt, sortOrder=asc):
//
//   - A token that stays in the list only moves towards its start, as
//     tokens before it expire or are deleted; the one exception is a token
//     of the current second, which a token created after it in the same
//     second may be sorted before.
//   - Two reads of the list join when they share a token, overlap in
//     createdAt order, or when the upper one was read first and the lower
//     one reaches its start (see joined): together they then hold every
//     token that stayed in the list while they were read and sorts between
//     them. A chain of joined reads from the start of the list to a read
//     that reached its end holds every token in the list all along,
//     however long the chain took to read.
//   - A single page that reaches the end of the list counts the list at
//     one instant: its position plus its length.
//
// Three modes use them (Mode). Full reads page 1, then the other pages in
// segments, each from its last page down, and joins the segments. Auto
// lists in full while that fits comfortably in the scrape's time and share
// of the rate limit, and incrementally otherwise, and back. Incremental
// keeps every token, 40 bytes each with its value, and on each scrape
// reads the end of the list for new tokens, counts the list against what
// it keeps, and finds the kept tokens gone by bisection on createdAt
// seconds, each found in about log2(pages) requests. It is a state
// machine with one transition function (incremental.step):
//
//	      +-------+   start    +---------+  chain reached the end  +-------------+
//	----->| empty |----------->| reading |------------------------>| reconciling |<--+
//	      +-------+            +---------+   (over many scrapes)   +-------------+   |
//	          ^                  |    ^                               |   |  count   |
//	          |                  +----+ paused: next scrape           |   |  found   |
//	          |                                                       |   |  none    |
//	          |  unexplained: more tokens than kept, an unknown       |   v  gone    |
//	          +---- old token, deletions outpacing the search, or <---+ +--------+   |
//	                a reading cheaper than the search                   | synced |---+
//	                                                                    +--------+
//	                                                              audit one window, publish;
//	                                                              next scrape: reconcile
//
// A synced scrape also reads one window at the next kept tokens and checks
// those of the whole seconds it holds (the audit), in rotation, so that
// every kept token is checked again every len/90 scrapes or so at the cost
// of one request, whatever the counts say. docs/listing.md gives the argument in full, the model-based
// harness that checks it (model_test.go), and the measured costs.
package listing
