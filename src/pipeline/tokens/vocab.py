"""The vocabulary: Leung & Bovy's 118 tokens in the paper's order, extendable by configured columns."""

from __future__ import annotations

BASE_VOCABULARY = tuple(
    [f"bp{k}" for k in range(55)] + [f"rp{k}" for k in range(55)] + ["bprp", "jh", "jk", "teff", "logg", "m_h", "logebv", "g_fakemag"]
)


def vocabulary(extra=()) -> tuple[str, ...]:
    """The 118 base tokens followed by ``extra`` ones (in the given order, no duplicates)."""
    extra = tuple(extra or ())
    clash = [t for t in extra if t in BASE_VOCABULARY]
    if clash or len(set(extra)) != len(extra):
        raise ValueError(f"extra tokens {list(extra)} repeat a token of the vocabulary: {clash or 'duplicates'}")
    return BASE_VOCABULARY + extra
