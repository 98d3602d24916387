"""Gaia DR3 science the real data need: photometric constants and zero points (``photometry``) and
the XP continuous-spectrum basis and calibration (``xp``). The mock sky uses them, never the reverse."""
