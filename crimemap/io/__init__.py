"""Readers for crime, boundary and lookup files (the pure core: no Flask)."""
