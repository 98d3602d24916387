"""From raw survey files to one row per star: crossmatch, quality cuts, zero point, luminosity, extinction."""
