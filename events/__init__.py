"""Immutable, versioned domain events and the pure rules around them."""
