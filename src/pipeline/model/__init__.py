"""The stellar Transformer: architecture, sampler, training and the inference API."""
