"""APOGEE H-band spectra for pixel tokens (SpectraFM): the ASPCAP grid, mock spectra, the aspcapStar reader."""
