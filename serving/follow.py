"""Follow the store's models in force: a replica loads a newly promoted model (or applies new thresholds) beside
the one it serves, then swaps, so no request fails and no batch mixes models. No Ray here.

The store keeps one champion and at most one shadow, each with its thresholds and `thresholds_version`
(store/models.py `models_in_force`, one small read). A `ModelFollower` polls that every few seconds
(`serving.model_poll_s`) on its own thread: a new version is loaded there, off the request path, and published by
one reference assignment; a new thresholds version is applied to the loaded network (Classifier.with_thresholds)
without reading the weights again. A batch reads `live` once and is scored, start to end, by that model, and each
result records the version and the role it held (what serving/ingest.py stores on the verdict).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from xscreen.records import ModelInForce, VerdictRole

log = logging.getLogger(__name__)

FetchFn = Callable[[], Sequence[ModelInForce]]  # the store's models_in_force
LoadFn = Callable[[ModelInForce], Any]  # weights -> a model with .version and .with_thresholds(thresholds)


@dataclass(frozen=True)
class Live:
    """The model a replica scores with now and the role it holds; replaced whole, never changed in place."""

    role: VerdictRole
    version: str
    thresholds_version: int  # 0: thresholds not yet read from the store (the checkpoint's own are applied)
    model: Any


class ModelFollower:
    """Keeps `live` equal to the store's model in force for `role`. A champion that disappears from the store
    (retired with no successor) keeps being served, loudly: screening never stops; a shadow that disappears stops."""

    def __init__(self, role: VerdictRole, fetch: FetchFn, load: LoadFn, initial: Live | None = None) -> None:
        self.role = role
        self._fetch = fetch
        self._load = load
        self._live = initial
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.swaps = 0  # models or thresholds applied since start (health and tests)
        self.last_error: str | None = None

    @property
    def live(self) -> Live | None:
        return self._live

    def refresh(self) -> bool:
        """Ask the store once and follow it; True when `live` changed. Errors are logged, `live` is kept."""
        try:
            wanted = next((m for m in self._fetch() if m.role == self.role), None)
            changed = self._follow(wanted)
        except Exception as exc:  # noqa: BLE001 -- a store or checkpoint problem never stops scoring
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("following the %s model failed (%s); still serving %s", self.role, self.last_error,
                        self._live.version if self._live else "nothing")
            return False
        self.last_error = None
        return changed

    def _follow(self, wanted: ModelInForce | None) -> bool:
        current = self._live
        if wanted is None:
            if current is None or self.role == "champion":
                if current is not None:
                    log.warning("no champion in the store; still serving %s", current.version)
                return False
            log.info("shadow %s stepped down: no shadow scoring now", current.version)
            return self._publish(None)
        if current is not None and current.version == wanted.version:
            if current.thresholds_version == wanted.thresholds_version:
                return False
            model = current.model.with_thresholds(wanted.thresholds) if wanted.thresholds else current.model
            log.info("%s %s: thresholds version %d applied", self.role, wanted.version, wanted.thresholds_version)
        else:
            model = self._load(wanted)  # slow (weights from disk, checksum): the old model serves meanwhile
            if wanted.thresholds:
                model = model.with_thresholds(wanted.thresholds)
            log.info("%s is now %s (thresholds version %d)", self.role, wanted.version, wanted.thresholds_version)
        return self._publish(Live(self.role, wanted.version, wanted.thresholds_version, model))

    def _publish(self, live: Live | None) -> bool:
        self._live = live  # one reference assignment: a batch in flight keeps the Live it read
        self.swaps += 1
        return True

    # ---- the polling thread --------------------------------------------------------------------
    def start(self, every_s: float) -> None:
        """Refresh now, then every `every_s` seconds on a daemon thread until stop()."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, args=(every_s,), name=f"follow-{self.role}", daemon=True)
        self._thread.start()

    def _run(self, every_s: float) -> None:
        while not self._stop.is_set():
            self.refresh()
            self._stop.wait(every_s)

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None


__all__ = ["FetchFn", "Live", "LoadFn", "ModelFollower"]
