"""The one error every monitoring statistic raises on unusable input."""

from __future__ import annotations

from xscreen.errors import XscreenError


class MonitoringInputError(XscreenError):
    """A monitoring statistic was given unusable data (empty window, rate outside [0, 1], mismatched lengths)."""

    title = "Cannot compute the monitoring statistic"
