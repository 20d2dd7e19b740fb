"""The blog's reference handlers, rebuilt for the benchmark (never deployed by default)."""
