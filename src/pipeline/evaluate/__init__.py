"""Stage 6: the evaluation suite of Leung & Bovy (tasks a-i), its figures and its summary."""
