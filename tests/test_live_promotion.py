"""Promotion, rollback, new thresholds and a shadow take effect on the real stack (store owner, local Ray + Serve,
/v1 API) while requests stream: no request fails, and each stored verdict carries the version and the role its
model held when it scored. On the old code serving kept the champion it resolved at start."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from hashlib import sha256
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.conftest import make_settings
from tests.serving_fakes import tiny_model
from tests.serving_procs import free_low_port
from tests.test_e2e_stream import noise_png, wait_for

if TYPE_CHECKING:  # Ray is imported by the fixture only: collecting this file stays cheap
    from serving.runtime import Stack

pytestmark = pytest.mark.slow
SCANNER = "scanner-a"
OWN = "scanner-4"  # a scanner that gets a champion of its own


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("live") / "home"
    settings = make_settings(home, serving={"scanner_ids": [SCANNER, OWN], "ray_num_cpus": 4, "model_poll_s": 0.5})
    settings.network.api_port = free_low_port()
    from xscreen.settings import ensure_home

    ensure_home(settings)
    from serving.runtime import Stack

    st = Stack(settings)
    try:
        st.start_owner()
        from screening.registry import register

        classes = st.settings.model.classes
        register(st.settings, tiny_model(classes, "live-a", seed=1), state="champion")
        register(st.settings, tiny_model(classes, "live-b", seed=2))
        register(st.settings, tiny_model(classes, "live-c", seed=3))
        st.start_serving()
        yield st
    finally:
        st.stop()


@dataclass
class Stream:
    """Uploads distinct scans over /v1 from two threads until stopped; keeps every answer in order."""

    api: str
    token: str
    answers: list[tuple[int, str | None]] = field(default_factory=list)  # (status, model_version)
    _stop: threading.Event = field(default_factory=threading.Event)
    _next: list[int] = field(default_factory=lambda: [0])
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _post(self) -> None:
        with httpx.Client(timeout=30, headers={"Authorization": f"Bearer {self.token}"}) as client:
            while not self._stop.is_set():
                with self._lock:
                    self._next[0] += 1
                    seed = 10_000 + self._next[0]
                r = client.post(f"{self.api}/v1/scans", files={"file": (f"s{seed}.png", noise_png(seed), "image/png")},
                                data={"scanner_id": SCANNER})
                body: dict[str, Any] = r.json() if r.status_code == 201 else {}
                with self._lock:
                    self.answers.append((r.status_code, body.get("model_version")))

    def __enter__(self) -> Stream:
        self._threads = [threading.Thread(target=self._post, daemon=True) for _ in range(2)]
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(60)

    def latest(self) -> str | None:
        with self._lock:
            return self.answers[-1][1] if self.answers else None

    def served(self, version: str, at_least: int = 5) -> bool:
        """At least `at_least` answers by `version` since the last answer by another one."""
        with self._lock:
            run = 0
            for _, v in reversed(self.answers):
                if v != version:
                    break
                run += 1
            return run >= at_least


def sql(st: Stack, text: str) -> list[list[Any]]:
    return st.store.sql(text, actor="cli:test").rows


def test_promotion_and_rollback_under_streaming_requests_fail_nothing_and_verdicts_carry_the_new_role(
        stack: Stack) -> None:
    token = stack.store.issue_scanner_token(SCANNER, actor="cli:test")
    with Stream(stack.settings.api_url, token) as stream:
        assert wait_for(lambda: stream.served("live-a"), 60)
        stack.store.set_model_state("live-b", "champion", actor="cli:test", reason="challenger wins", force=True)
        promoted_at = time.monotonic()
        assert wait_for(lambda: stream.served("live-b"), 60), stream.answers[-5:]
        switch_s = time.monotonic() - promoted_at
        stack.store.rollback(actor="cli:test", reason="rollback drill")
        assert wait_for(lambda: stream.served("live-a"), 60), stream.answers[-5:]
    statuses = [s for s, _ in stream.answers]
    assert statuses and set(statuses) == {201}, f"failed requests: {[s for s in statuses if s != 201]}"
    versions = [v for _, v in stream.answers]
    assert set(versions) == {"live-a", "live-b"}
    assert switch_s < 30

    assert wait_for(lambda: sql(stack, "SELECT count(*) FROM verdicts")[0][0] >= len(versions), 60)
    rows = sql(stack, "SELECT model_version, role, count(*) FROM verdicts GROUP BY ALL ORDER BY 1")
    assert {(r[0], r[1]) for r in rows} == {("live-a", "champion"), ("live-b", "champion")}
    # the last verdicts stored are the rolled-back champion's, with its role
    last = sql(stack, "SELECT model_version, role FROM verdicts ORDER BY scored_at DESC LIMIT 5")
    assert {tuple(r) for r in last} == {("live-a", "champion")}
    info = stack.classifier.info.remote().result(timeout_s=30)
    assert info["model_version"] == "live-a" and info["role"] == "champion" and info["swaps"] >= 3


def test_new_thresholds_apply_live_without_a_reload(stack: Stack) -> None:
    token = stack.store.issue_scanner_token(SCANNER, actor="cli:test")
    everything = {c: {"clear": 0.0, "inspect": 0.0} for c in ["any_threat", *stack.settings.model.classes]}
    before = stack.classifier.info.remote().result(timeout_s=30)
    version = stack.store.set_thresholds(before["model_version"], everything, actor="cli:test", reason="drill")
    assert wait_for(lambda: stack.classifier.info.remote().result(timeout_s=30)["thresholds_version"] == version, 30)
    with httpx.Client(timeout=30, headers={"Authorization": f"Bearer {token}"}) as client:
        r = client.post(f"{stack.settings.api_url}/v1/scans", data={"scanner_id": SCANNER},
                        files={"file": ("t.png", noise_png(777), "image/png")})
    assert r.status_code == 201 and r.json()["verdict"] == "inspect"
    scan_id = r.json()["scan_id"]
    assert wait_for(lambda: bool(stack.store.known_hashes([sha256(noise_png(777)).hexdigest()])), 30)
    stored = stack.store.get_scan(scan_id)["verdicts"][0]
    assert stored["thresholds"] == everything


def test_a_shadow_scores_beside_the_champion_and_is_never_the_verdict(stack: Stack) -> None:
    token = stack.store.issue_scanner_token(SCANNER, actor="cli:test")
    stack.store.set_model_state("live-c", "shadow", actor="cli:test", reason="challenger")
    shadow = stack.shadow_score
    assert shadow is not None
    assert wait_for(lambda: stack.classifier.info.remote().result(timeout_s=30)["model_version"] == "live-a", 30)
    from serving.deployments import shadow_handle

    assert wait_for(lambda: shadow_handle().info.remote().result(timeout_s=30)["model_version"] == "live-c", 30)
    ids = []
    with httpx.Client(timeout=30, headers={"Authorization": f"Bearer {token}"}) as client:
        for seed in range(900, 906):
            r = client.post(f"{stack.settings.api_url}/v1/scans", data={"scanner_id": SCANNER},
                            files={"file": (f"sh{seed}.png", noise_png(seed), "image/png")})
            assert r.status_code == 201 and r.json()["model_version"] == "live-a"
            ids.append(r.json()["scan_id"])
    listed = ", ".join(f"'{i}'" for i in ids)
    assert wait_for(lambda: sql(stack, f"SELECT count(*) FROM verdicts WHERE scan_id IN ({listed})")[0][0] == 12, 30)
    rows = sql(stack, f"SELECT model_version, role, count(*) FROM verdicts WHERE scan_id IN ({listed}) GROUP BY ALL")
    assert sorted(map(tuple, rows)) == [("live-a", "champion", 6), ("live-c", "shadow", 6)]
    queued = sql(stack, f"SELECT count(*) FROM queue_pending WHERE scan_id IN ({listed}) AND model_version <> 'live-a'")
    assert queued[0][0] == 0
    stack.store.set_model_state("live-c", "candidate", actor="cli:test", reason="seen enough")
    assert wait_for(lambda: shadow_handle().info.remote().result(timeout_s=30)["model_version"] is None, 30)


def test_a_champion_for_one_scanner_is_followed_live_and_scores_only_that_scanners_items(stack: Stack) -> None:
    from screening.registry import register

    register(stack.settings, tiny_model(stack.settings.model.classes, "live-s4", seed=4))
    tokens = {sc: stack.store.issue_scanner_token(sc, actor="cli:test") for sc in (SCANNER, OWN)}

    def upload(scanner: str, seed: int) -> str:
        with httpx.Client(timeout=30, headers={"Authorization": f"Bearer {tokens[scanner]}"}) as client:
            r = client.post(f"{stack.settings.api_url}/v1/scans", data={"scanner_id": scanner},
                            files={"file": (f"own{seed}.png", noise_png(seed), "image/png")})
        assert r.status_code == 201, r.text
        return str(r.json()["model_version"])

    def scanner_models() -> dict[str, str]:
        return dict(stack.classifier.info.remote().result(timeout_s=30)["scanner_models"])

    fleet = stack.classifier.info.remote().result(timeout_s=30)["model_version"]
    stack.store.set_model_state("live-s4", "champion", actor="cli:test", reason="adapted", force=True, scanner=OWN)
    assert wait_for(lambda: scanner_models() == {OWN: "live-s4"}, 30)  # no restart: the replica followed
    answers = [(sc, upload(sc, 5000 + i)) for i, sc in enumerate([OWN, SCANNER, OWN, SCANNER])]
    assert answers == [(OWN, "live-s4"), (SCANNER, fleet), (OWN, "live-s4"), (SCANNER, fleet)]
    stack.store.rollback(actor="cli:test", reason="drill", scanner=OWN)  # its first champion: back to the fleet's
    assert wait_for(lambda: scanner_models() == {}, 30)
    assert upload(OWN, 5100) == fleet
    assert wait_for(lambda: len(sql(stack, "SELECT 1 FROM verdicts WHERE model_version = 'live-s4'")) == 2, 30)
    stored = sql(stack, "SELECT DISTINCT v.role, s.scanner_id FROM verdicts v JOIN scans s USING (scan_id) "
                        "WHERE v.model_version = 'live-s4'")
    assert [tuple(r) for r in stored] == [("champion", OWN)]
