// Package layers holds no code: its test enforces the package layering that
// DESIGN.md draws (cmd -> tui -> wallet -> {p2p, vault, consent}), so that a
// layer leak fails CI instead of waiting for a review.
package layers
