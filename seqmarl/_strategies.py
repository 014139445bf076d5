"""Hypothesis strategies (filled in by the strategies module)."""
