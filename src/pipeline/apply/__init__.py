"""Applying the trained model to every source of a survey, partition by partition (DESIGN stage 8)."""
