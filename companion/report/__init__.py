"""``companion report``: one self-contained HTML page (or PNG figures) for a recorded run.

* :mod:`companion.report.model` — what the page shows, as plain data, from a replay;
* :mod:`companion.report.figures` — the figures (matplotlib, Agg; nothing else plots);
* :mod:`companion.report.page` — the HTML page around them;
* :mod:`companion.report.cli` — the command.

Plotting stays here: the estimator and the pipeline never import it.
"""
