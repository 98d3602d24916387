"""The vocabulary, standardisation, the Zarr token store and the train/val/test split."""
