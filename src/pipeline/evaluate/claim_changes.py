"""The claims' tests changed since the last judged run (fe68ef7), each with its reason: docs/findings.md
lists them with the verdict before (docs/recorded/claims-fe68ef7.csv) and after. A threshold is fixed
before the run that judges it; a change after a run goes here, never silently."""

# Tests changed after the run that last judged them (fe68ef7's, docs/recorded/claims-fe68ef7.csv):
# {claim: (the claim it replaces, why)}. docs/findings.md lists each with its verdict before and after.
CHANGED_TESTS = {
    "i_bp0_attention_switch": (
        "i_bp0_attends_extinction",
        "the paper's finding is a switch (Teff's weight at zero E(B-V), E(B-V)'s when high), not any shift towards E(B-V)",
    ),
    "i_rp0_attention_switch": (
        "i_rp0_attends_extinction",
        "the paper's finding is a switch (Teff's weight at zero E(B-V), E(B-V)'s when high), not any shift towards E(B-V)",
    ),
    "b_ebv": ("b_ebv", "'as well as an expert': the band of the paper's own 'comparable' ratios (0.85x), not an unsourced 25%"),
    "b_distance": ("b_distance", "'as well as an expert': the band of the paper's own 'comparable' ratios (0.85x), not an unsourced 25%"),
    "h_rp0_params": ("h_rp0_params", "'similar': the paper's own widest similar ratio (0.77x, Fig. 13), not an unsourced 25%"),
    "h_rp0_params_2mass": ("h_rp0_params_2mass", "'similar': the paper's own widest similar ratio (0.77x, Fig. 13), not an unsourced 25%"),
    **{
        f"d_{d}": (f"d_{d}", "against XGBoost experts on the same mapping, not the observed spectrum's own error")
        for d in ("bp_from_rp", "rp_from_bp")
    },
    "g_bprp_never_requested": (
        "g_bprp_never_requested",
        "against an XGBoost expert on the same mapping, not the colour's spread over the stars",
    ),
    "g_jk_never_requested": (
        "g_jk_never_requested",
        "against an XGBoost expert on the same mapping, not the colour's spread over the stars",
    ),
    "spectrafm_fe_poor_direct_similar": (
        "spectrafm_fe_poor_direct_similar",
        "'similar': the paper's own 0.256 / 0.232 (a band of 1.10), not an unsourced 25%",
    ),
    **{
        f"spectrafm_attention_{t}": (
            f"spectrafm_attention_{t}",
            "the element's lines against the other elements' lines, not against all pixels (any line beats a continuum pixel)",
        )
        for t in ("fe_h", "o_fe", "mg_fe")
    },
}
