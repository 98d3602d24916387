"""Readers of the survey formats users have (allStar FITS, Gaia archive tables, XP continuous)."""
