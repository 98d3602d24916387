"""Value-added catalogues joined onto the catalog: masses and ages of evolved stars (DistMass)."""
