"""Sequence regression (``fit(X, y)``): one prediction per row from the rows of its series up to it.

- :mod:`~smr_ts.regression.scaling`: per-column standardisation.
- :mod:`~smr_ts.regression.windows`: panels to tensors, and batches of whole series.
- :mod:`~smr_ts.regression.fit`: what a regression fit trains on, and its R^2 score.
- :mod:`~smr_ts.regression.predict`: the network over whole series, in chunks.
"""
