"""The workflow's plumbing, apart from the science: the Snakefile's checks of a configuration
(``guards``), the source files each step runs (``codedeps``), MLflow provenance of every job
(``tracking``) and of each invocation (``jobs``), per-job logs (``logs``) and the one-run-per-results-
folder lock (``results_lock``). The science modules never import it, except ``codedeps.code_hash``,
which names the code a model was trained with."""
