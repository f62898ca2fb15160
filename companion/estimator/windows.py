"""Moving-window minimum, maximum and mean over 1-D arrays (edges repeat the end value).

The estimator's only window filters, in numpy: importing ``scipy.ndimage`` for them
would cost a replay a fifth of a second of start-up.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def _windows(x: np.ndarray, before: int, after: int) -> np.ndarray:
    """View of each sample's window ``x[i - before : i + after + 1]`` (edges repeated)."""
    if len(x) == 0:
        return np.zeros((0, before + after + 1))
    xp = np.concatenate((np.full(before, x[0]), x, np.full(after, x[-1])))
    return sliding_window_view(xp, before + after + 1)


def window_max(x: np.ndarray, before: int, after: int) -> np.ndarray:
    """``out[i] = max(x[i - before : i + after + 1])``."""
    return _windows(np.asarray(x, dtype=float), before, after).max(axis=1)


def window_min(x: np.ndarray, before: int, after: int) -> np.ndarray:
    """``out[i] = min(x[i - before : i + after + 1])``."""
    return _windows(np.asarray(x, dtype=float), before, after).min(axis=1)


def centred_mean(x: np.ndarray, size: int) -> np.ndarray:
    """Mean over ``size`` samples around each one (``size // 2`` before it)."""
    before = size // 2
    return _windows(np.asarray(x, dtype=float), before, size - 1 - before).mean(axis=1)


def centred_max(x: np.ndarray, size: int) -> np.ndarray:
    before = size // 2
    return window_max(x, before, size - 1 - before)


def centred_min(x: np.ndarray, size: int) -> np.ndarray:
    before = size // 2
    return window_min(x, before, size - 1 - before)
