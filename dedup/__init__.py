"""Exact and perceptual-hash near-duplicate detection."""
