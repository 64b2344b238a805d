"""Follow the store's models in force: a replica loads a newly promoted model (or applies new thresholds) beside
the one it serves, then swaps, so no request fails and no batch mixes models. No Ray here.

The store keeps one champion and at most one shadow, each with its thresholds and `thresholds_version`
(store/models.py `models_in_force`, one small read). A `ModelFollower` polls that every few seconds
(`serving.model_poll_s`) on its own thread: a new version is loaded there, off the request path, and published by
one reference assignment; a new thresholds version is applied to the loaded network (Classifier.with_thresholds)
without reading the weights again. A batch reads `live` once and is scored, start to end, by that model, and each
result records the version and the role it held (what serving/ingest.py stores on the verdict).

A champion follower also follows the scanners' own champions (`scanner_id` set in `models_in_force`), loaded beside
the fleet champion the same way: `route` sends each item of a batch to its scanner's champion, else to the fleet's
(`score_routed`). A scanner's champion that cannot be loaded (a bad checkpoint, another canvas size) leaves that
scanner on the fleet champion, and `scoped_errors` says why. The shadow is fleet-wide or, with a `scanner_id`,
scores that scanner's items only (a model adapted to one scanner is tried on that scanner's mail).
"""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
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
    scanner_id: str | None = None  # a shadow for one scanner scores that scanner's items only


@dataclass(frozen=True)
class ScannerImage:
    """An image with the scanner it came from, as sent to a replica so that it can pick the scanner's champion."""

    scanner_id: str | None
    image: Any


PredictFn = Callable[[Any, Sequence[Any]], list[dict[str, Any]]]  # (model, images) -> VerdictRecord fields


def route(scanners: Sequence[str | None], fleet: Live, scoped: Mapping[str, Live]) -> list[tuple[Live, list[int]]]:
    """Group item positions by the model that scores them: the scanner's own champion, else the fleet's."""
    groups: dict[str, tuple[Live, list[int]]] = {}
    for i, scanner in enumerate(scanners):
        live = scoped.get(scanner, fleet) if scanner is not None else fleet
        groups.setdefault(live.version, (live, []))[1].append(i)
    return list(groups.values())


def score_routed(images: Sequence[Any], fleet: Live, scoped: Mapping[str, Live], predict: PredictFn) -> list[dict[str, Any]]:
    """Fields for each image in order (ScannerImage or plain), each scored by its scanner's model, one call per
    model; each carries the role its model held. A shadow for one scanner (`fleet.scanner_id`) scores that
    scanner's images only: the others get empty fields (no verdict)."""
    scanners = [im.scanner_id if isinstance(im, ScannerImage) else None for im in images]
    plain = [im.image if isinstance(im, ScannerImage) else im for im in images]
    out: list[dict[str, Any]] = [{} for _ in images]
    for live, positions in route(scanners, fleet, scoped):
        if live.scanner_id is not None:
            positions = [i for i in positions if scanners[i] == live.scanner_id]
            if not positions:
                continue
        for i, fields in zip(positions, predict(live.model, [plain[i] for i in positions]), strict=True):
            out[i] = {**fields, "role": live.role}
    return out


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
        self._scoped: dict[str, Live] = {}  # scanner -> its own champion (champion role only)
        self.scoped_errors: dict[str, str] = {}  # scanner -> why its champion is not served (the fleet's is)
        self._failed: dict[str, tuple[str, int]] = {}  # scanner -> (version, thresholds version) that failed

    @property
    def live(self) -> Live | None:
        return self._live

    @property
    def scoped(self) -> Mapping[str, Live]:
        """The scanners' own champions loaded now (replaced whole, never changed in place)."""
        return self._scoped

    def refresh(self) -> bool:
        """Ask the store once and follow it; True when `live` (or a scanner's champion) changed. Errors are
        logged, `live` is kept."""
        try:
            in_force = list(self._fetch())
            # the fleet champion; the shadow whatever its scope (one at a time; a scoped one scores its scanner only)
            wanted = next((m for m in in_force if m.role == self.role
                           and (m.scanner_id is None or self.role == "shadow")), None)
            changed = self._follow(wanted)
            if self.role == "champion":
                changed = self._follow_scoped([m for m in in_force if m.role == "champion" and m.scanner_id]) or changed
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
        scope = wanted.scanner_id if self.role == "shadow" else None
        if current is not None and current.version == wanted.version:
            if current.thresholds_version != wanted.thresholds_version:
                model = current.model.with_thresholds(wanted.thresholds) if wanted.thresholds else current.model
                log.info("%s %s: thresholds version %d applied", self.role, wanted.version, wanted.thresholds_version)
            elif current.scanner_id != scope:  # the same shadow, narrowed to a scanner or widened to the fleet
                model = current.model
                log.info("shadow %s now scores %s", wanted.version, f"scanner {scope} only" if scope else "every scanner")
            else:
                return False
        else:
            model = self._load(wanted)  # slow (weights from disk, checksum): the old model serves meanwhile
            if wanted.thresholds:
                model = model.with_thresholds(wanted.thresholds)
            log.info("%s is now %s (thresholds version %d)", self.role, wanted.version, wanted.thresholds_version)
        return self._publish(Live(self.role, wanted.version, wanted.thresholds_version, model, scope))

    def _follow_scoped(self, wanted: list[ModelInForce]) -> bool:
        """Load the scanners' champions that changed; one that fails leaves its scanner on the fleet champion."""
        scoped: dict[str, Live] = {}
        errors: dict[str, str] = {}
        for m in wanted:
            scanner = str(m.scanner_id)
            key = (m.version, m.thresholds_version)
            if self._failed.get(scanner) == key and scanner in self.scoped_errors:
                errors[scanner] = self.scoped_errors[scanner]  # the same broken version: not read again each poll
                continue
            try:
                scoped[scanner] = self._scoped_live(m, self._scoped.get(scanner))
            except Exception as exc:  # noqa: BLE001 -- that scanner is screened by the fleet champion instead
                errors[scanner] = (f"{m.version} not loaded ({type(exc).__name__}: {exc}); "
                                   f"scanner {scanner} is scored by the fleet champion")
                self._failed[scanner] = key
                log.warning("scanner %s: %s", scanner, errors[scanner])
        self.scoped_errors = errors
        if _same(scoped, self._scoped):
            return False
        log.info("scanners' own champions now: %s", {k: v.version for k, v in scoped.items()} or "none")
        self._scoped = scoped  # one reference assignment, like `live`
        self.swaps += 1
        return True

    def _scoped_live(self, wanted: ModelInForce, current: Live | None) -> Live:
        if current is not None and (current.version, current.thresholds_version) == (wanted.version,
                                                                                      wanted.thresholds_version):
            return current
        fleet = self._live
        if current is not None and current.version == wanted.version:
            model = current.model
        elif fleet is not None and fleet.version == wanted.version:
            model = fleet.model
        else:
            model = self._load(wanted)
        if wanted.thresholds:
            model = model.with_thresholds(wanted.thresholds)
        size, fleet_size = getattr(model, "input_size", None), getattr(fleet.model, "input_size", None) if fleet else None
        if size is not None and fleet_size is not None and size != fleet_size:
            # callers letterbox to the canvas the slot's fleet model reads: another size cannot share its batches
            raise ValueError(f"it reads {size}-pixel canvases, the fleet champion {fleet_size}")
        return Live("champion", wanted.version, wanted.thresholds_version, model)

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


def takes_scanners(score: Callable[..., Any]) -> bool:
    """Whether a scorer accepts `scanners=` (one scanner id per image: it routes each to its scanner's champion);
    plain `score(images)` scorers are called as ever."""
    try:
        return "scanners" in inspect.signature(score).parameters
    except (TypeError, ValueError):  # a builtin or C callable without a signature: the plain call
        return False


ScannerScoreFn = Callable[[list[Any], Sequence[str]], Any]  # (images, one scanner id each) -> fields


def with_scanners(score: Callable[..., Any]) -> ScannerScoreFn:
    """`score` as `f(images, scanners)`: a scorer that routes by scanner is handed them, a plain one is called with
    the images alone. Decided once, where the scorer is given, so callers never ask again."""
    if takes_scanners(score):
        return lambda images, scanners: score(images, scanners=scanners)
    return lambda images, scanners: score(images)


def _same(a: Mapping[str, Live], b: Mapping[str, Live]) -> bool:
    return {k: (v.version, v.thresholds_version) for k, v in a.items()} == {
        k: (v.version, v.thresholds_version) for k, v in b.items()}


__all__ = ["FetchFn", "Live", "LoadFn", "ModelFollower", "PredictFn", "ScannerImage", "route", "score_routed"]
