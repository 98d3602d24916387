"""Applying the trained model to every source of a survey, partition by partition (docs/stages.md, "A catalogue for every XP star")."""
