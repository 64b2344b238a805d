"""Kill -9 rounds against a running `xscreen serve` while scans stream in and officers decide.

`Chaos` starts `xscreen serve` (a real process, on a prepared home with a tiny model), streams files into two
scanner folders, records decisions through the store owner, and kills one component per round with SIGKILL:
the store owner, the serving worker (watcher), the Ray head's GCS, the Serve proxy, controller, classifier or
ingress replica, or the supervisor itself (then started again, as systemd would; it adopts the running children). Each round measures the time
until a file dropped right after the kill is stored and /healthz and the watcher say ok again. `verify()`
checks every streamed file has exactly one scan row and one champion verdict, every acknowledged decision is
stored, and the database is consistent. Used by tests/test_kill_rounds.py (one round per component) and
bench/soak.py (many rounds). Only processes carrying this run's id are ever signalled.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from serving.runs import kill_run
from tests.serving_procs import (
    assert_nothing_left,
    children,
    drop,
    healthy,
    noise_png,
    output,
    pids_named,
    run_id,
    serve_home,
    start_serve,
    supervisor_pid,
    wait_for,
    wait_running,
)
from xscreen.records import DecisionRecord, utcnow
from xscreen.settings import Settings

log = logging.getLogger(__name__)
# component -> what identifies its process among the run's processes (command line)
TARGETS = {"owner": "run_owner", "worker": "serving.worker", "ray": "gcs_server", "proxy": "ProxyActor",
           "controller": "ServeController", "replica": "ServeReplica:xscreen:classifier",
           "ingress": "ServeReplica:xscreen:ingress"}
COMPONENTS = (*TARGETS, "supervisor")


@dataclass
class Round:
    component: str
    pids: list[int]
    recovered_s: float | None  # None: not recovered within the round's limit


@dataclass
class Verdict:
    """What verify() found. Every list is empty and `lost` is 0 on a good run."""

    streamed: int
    stored: int
    lost: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    decisions_acked: int = 0
    decisions_missing: list[str] = field(default_factory=list)
    integrity: list[str] = field(default_factory=list)


class Chaos:
    """A supervised `xscreen serve` under a stream, with kill rounds. Use as a context manager."""

    def __init__(self, home: Path, seed: int, rate: float = 5.0) -> None:
        self.settings: Settings = serve_home(home)
        self.rng = random.Random(seed)
        self.rate = rate
        self.proc: subprocess.Popen[str] | None = None
        self.streamed: dict[str, str] = {}  # sha256 -> file name
        self.acked: list[str] = []  # decision ids the owner acknowledged
        self.rounds: list[Round] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._n = 0
        self._lock = threading.Lock()
        self.client: Any = None

    # ---- life cycle ---------------------------------------------------------------------------------------
    def __enter__(self) -> Chaos:
        from store.client import StoreClient

        self.proc = start_serve(self.settings)
        wait_running(self.settings, self.proc)
        self.client = StoreClient.from_settings(self.settings, timeout_s=10)
        for target in (self._stream, self._decide):
            thread = threading.Thread(target=target, daemon=True, name=f"chaos-{target.__name__}")
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_load()
        try:
            rid: str | None = run_id(self.settings)
        except (OSError, ValueError, KeyError):  # stopped in order: nothing left
            rid = None
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)
        if rid is not None:
            kill_run(rid, grace_s=2)  # adopted children live outside the new supervisor's process group

    def stop_load(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(15)
        self._threads = []

    def stop_serve(self) -> tuple[int, float]:
        """SIGTERM to the serve process group (what a terminal's Ctrl-C or a service manager does); (status, s)."""
        assert self.proc is not None
        rid, began = run_id(self.settings), time.monotonic()
        os.killpg(self.proc.pid, signal.SIGTERM)
        status = self.proc.wait(120)
        took = time.monotonic() - began
        assert_nothing_left(self.settings, rid)
        return status, took

    # ---- load ---------------------------------------------------------------------------------------------
    def _next_file(self) -> tuple[str, bytes]:
        with self._lock:
            self._n += 1
            n = self._n
        return f"c{n}.png", noise_png(10_000 + n)

    def drop_one(self, scanner: str = "scanner-a") -> str:
        name, data = self._next_file()
        sha = drop(self.settings.inbox_dir, scanner, name, data)
        with self._lock:
            self.streamed[sha] = name
        return sha

    def _stream(self) -> None:
        while not self._stop.wait(1.0 / self.rate):
            try:
                self.drop_one(self.rng.choice(["scanner-a", "scanner-b"]))
            except OSError as exc:  # a full disk would be a finding of its own
                log.error("could not drop a file: %s", exc)

    def _decide(self) -> None:
        """An officer deciding the top of the queue once a second; only answers that came back count as acked."""
        while not self._stop.wait(1.0):
            try:
                queue = self.client.queue("chaos:officer", 5)
                if queue.empty:
                    continue
                decision = DecisionRecord(decision_id=uuid.uuid4().hex, scan_id=str(queue["scan_id"].iloc[0]),
                                          officer="chaos:officer", decision="confirmed", decided_at=utcnow())
                self.client.record_decision(decision)
            except Exception as exc:  # noqa: BLE001 -- the owner is being killed: not acknowledged
                log.info("decision not acknowledged: %s", exc)
                continue
            self.acked.append(decision.decision_id)

    # ---- rounds -------------------------------------------------------------------------------------------
    def kill(self, component: str) -> list[int]:
        """SIGKILL one component of this run; returns the pids signalled (empty: nothing matched)."""
        if component == "supervisor":
            assert self.proc is not None
            pid = self.proc.pid
            os.kill(pid, signal.SIGKILL)
            self.proc.wait(10)
            return [pid]
        rid = run_id(self.settings)
        if component in ("owner", "worker"):
            child = children(self.settings).get(component)
            pids = [child] if child else []
        else:
            pids = pids_named(rid, TARGETS[component])[:1]
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return pids

    def round(self, component: str, limit_s: float = 180.0) -> Round:
        """Kill `component`; recovered once a new process stands in for it, a file dropped after that is stored,
        and the API and the watcher say ok. The time counts from the kill."""
        before = (run_id(self.settings), children(self.settings), output(self.settings).count("running;"))
        began = time.monotonic()
        pids = self.kill(component)
        if component == "supervisor":  # the service manager starts it again; the new run cleans up the old one
            self.proc = start_serve(self.settings)
        ok = wait_for(lambda: self._replaced(component, pids, before), limit_s, every=0.1)
        if ok:
            probe = self.drop_one()
            ok = wait_for(lambda: self._stored({probe}) and healthy(self.settings), limit_s, every=0.2)
        result = Round(component, pids, round(time.monotonic() - began, 2) if ok else None)
        self.rounds.append(result)
        log.info("round %s: pids %s, recovered in %s s", component, pids, result.recovered_s)
        return result

    def _replaced(self, component: str, killed: list[int], before: tuple[str, dict[str, int], int]) -> bool:
        """A new process has taken the killed one's place (read from the run's state file or /proc)."""
        rid, kids = run_id(self.settings), children(self.settings)
        if component == "supervisor":  # adopted children keep their pids and the run id: a new supervisor runs
            return supervisor_pid(self.settings) not in killed and output(self.settings).count("running;") > before[2]
        if component in ("owner", "worker", "ray"):
            key = "ray" if component == "ray" else component
            changed = kids.get(key) not in (None, before[1].get(key))
            return changed and (component != "ray" or kids.get("worker") not in (None, before[1].get("worker")))
        return bool(set(pids_named(rid, TARGETS[component])) - set(killed))

    def plan(self, rounds: int, components: tuple[str, ...] = COMPONENTS) -> list[str]:
        """Every component once (shuffled), then random ones: `rounds` in all."""
        unknown = sorted(set(components) - set(COMPONENTS))
        if unknown or not components:
            raise ValueError(f"unknown components {unknown}: choose among {', '.join(COMPONENTS)}")
        order = list(components)
        self.rng.shuffle(order)
        return (order + [self.rng.choice(components) for _ in range(max(0, rounds - len(order)))])[:rounds]

    # ---- checks -------------------------------------------------------------------------------------------
    def _stored(self, shas: set[str]) -> bool:
        try:
            return bool(self.client.known_hashes(sorted(shas)) == shas)
        except Exception:  # noqa: BLE001 -- the owner may be restarting
            return False

    def drain(self, timeout_s: float = 180.0) -> bool:
        """Stop the load and wait until every streamed file is stored."""
        self.stop_load()
        return wait_for(lambda: self._stored(set(self.streamed)), timeout_s, every=0.5)

    def verify(self) -> Verdict:
        shas = sorted(self.streamed)
        rows = self._sql("SELECT s.sha256, count(DISTINCT s.scan_id), count(v.scan_id) FROM scans s "
                         "LEFT JOIN verdicts v ON v.scan_id = s.scan_id AND v.role = 'champion' GROUP BY 1")
        counts = {r[0]: (r[1], r[2]) for r in rows}
        verdict = Verdict(streamed=len(shas), stored=sum(1 for s in shas if s in counts))
        verdict.lost = [self.streamed[s] for s in shas if s not in counts]
        verdict.duplicates = [self.streamed[s] for s in shas if s in counts and counts[s] != (1, 1)]
        decided = {r[0] for r in self._sql("SELECT decision_id FROM decisions")}
        verdict.decisions_acked = len(self.acked)
        verdict.decisions_missing = [d for d in self.acked if d not in decided]
        verdict.integrity = self.integrity_problems()
        return verdict

    def _sql(self, text: str) -> list[list[Any]]:
        return list(self.client.sql(text, limit=10**7, actor="bench:chaos").rows)

    def integrity_problems(self) -> list[str]:
        """The store's whole-store check (`Store.integrity_check`: every table read back, uniqueness invariants,
        the audit chain) plus the pipeline's own invariants below."""
        report = self.client.integrity_check()
        problems = [] if report.ok else (list(report.problems) or [report.summary()])
        queries = {
            "verdicts without a scan": "SELECT count(*) FROM verdicts v LEFT JOIN scans s USING (scan_id) "
                                       "WHERE s.scan_id IS NULL",
            "scans with two champion verdicts of one model": "SELECT count(*) FROM (SELECT scan_id, model_version "
                "FROM verdicts GROUP BY 1, 2 HAVING count(*) > 1)",
            "decisions without a scan": "SELECT count(*) FROM decisions d LEFT JOIN scans s USING (scan_id) "
                                        "WHERE s.scan_id IS NULL",
            "duplicate scan ids": "SELECT count(*) - count(DISTINCT scan_id) FROM scans",
            "queue rows of decided items": "SELECT count(*) FROM queue_pending q JOIN decisions d USING (scan_id) "
                                           "WHERE d.decision IN ('cleared', 'confirmed', 'seized')",
        }
        for name, text in queries.items():
            n = self._sql(text)[0][0]
            if n:
                problems.append(f"{name}: {n}")
        return problems


__all__ = ["COMPONENTS", "Chaos", "Round", "Verdict"]
