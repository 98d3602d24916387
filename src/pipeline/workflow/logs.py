"""Logging for rule scripts: to the rule's log file and to stderr, with timestamps."""

from __future__ import annotations

import logging
import sys
from pathlib import Path


def setup(log_file: str | None = None, level=logging.INFO):
    handlers = [logging.StreamHandler(sys.stderr)]
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, mode="w"))
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", handlers=handlers, force=True)
    logger = logging.getLogger("pipeline")

    def log_uncaught(exc_type, exc, tb):
        # the rule's log then says what was wrong (file, column, rows), not only stderr
        logger.error("failed: %s", exc, exc_info=(exc_type, exc, tb))

    sys.excepthook = log_uncaught
    return logger
