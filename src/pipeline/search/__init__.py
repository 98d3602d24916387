"""The contrastive star search of Leung & Bovy (appendix C): spectra and parameters embedded side by side
(``contrastive``), and the query API and CLI built on it."""
