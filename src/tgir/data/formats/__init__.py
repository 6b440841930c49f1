"""Readers for the official on-disk formats of the papers' datasets (one file per format)."""
