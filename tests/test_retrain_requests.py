"""Retraining asked for on the Models page or by an alert: the store's request queue (one runs at a time), the
supervisor's runner (a real child process per request; stopping it stops the child), the monitoring schedule
asking for one when an alert kind in monitoring.retrain_on is raised, and the page. The real `xscreen retrain`
through the runner is the training-marked test at the end."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from serving.parts import settings_env
from serving.retrain_runner import STOPPED, RetrainRunner, retrain_argv
from store.engine import Store
from tests.app_harness import app_as, user
from tests.conftest import OwnerThread
from xscreen.errors import ConflictError, XscreenError
from xscreen.records import AlertRecord, RetrainRequest
from xscreen.settings import Settings


def test_requests_wait_run_one_at_a_time_and_close_with_their_output(store: Store, now: datetime) -> None:
    assert not store.retrain_waiting()
    first = store.request_retrain("cand-1", "accuracy alert on scanner-1", "sue")
    store.request_retrain("cand-2", "new goods", "sue")
    assert store.retrain_waiting()
    assert [r.name for r in store.retrain_requests()] == ["cand-2", "cand-1"]  # newest first (same clock: as asked)
    claimed = store.claim_retrain()
    assert claimed is not None and (claimed.name, claimed.status) == ("cand-1", "running") and claimed.started_at
    assert store.claim_retrain() is None and not store.retrain_waiting()  # one at a time: cand-2 waits while cand-1 runs
    store.finish_retrain(first.request_id, True, "registered cand-1 as candidate")
    done = {r.name: r for r in store.retrain_requests()}["cand-1"]
    assert (done.status, done.message) == ("done", "registered cand-1 as candidate") and done.finished_at
    with pytest.raises(ConflictError, match="is done, not running"):
        store.finish_retrain(first.request_id, False, "again")
    second = store.claim_retrain()
    assert second is not None and second.name == "cand-2"
    assert store.fail_running_retrains("killed") == 1 and store.claim_retrain() is None
    actions = [(a.action, a.target) for a in store.audit_log()]
    assert ("request_retrain", "cand-1") in actions and ("retrain_done", "cand-1") in actions


def test_a_request_names_a_new_version_and_says_why(store: Store) -> None:
    store.request_retrain("cand-1", "why", "sue")
    with pytest.raises(ConflictError, match="already being retrained"):
        store.request_retrain("cand-1", "why", "sue")
    with pytest.raises(XscreenError, match="'bad name!' is not allowed"):
        store.request_retrain("bad name!", "why", "sue")
    with pytest.raises(XscreenError, match="say why"):
        store.request_retrain("cand-3", "  ", "sue")
    assert [r.name for r in store.retrain_requests()] == ["cand-1"]  # nothing refused was kept


def _runner(settings: Settings, store: Store, code: str) -> RetrainRunner:
    """A runner whose child is `python -c code` (the real command is the training test's below)."""
    return RetrainRunner(settings, lambda: store, env={"PATH": "/usr/bin:/bin"},
                         argv=lambda _s, _r: [sys.executable, "-c", code], interval_s=0.05)


def test_the_runner_runs_a_request_in_a_child_process_and_keeps_the_end_of_its_output(
        settings: Settings, store: Store) -> None:
    settings.logs_dir.mkdir(parents=True, exist_ok=True)
    store.request_retrain("ok-1", "why", "sue")
    assert _runner(settings, store, "print('registered ok-1 as candidate')").run_once() is not None
    store.request_retrain("bad-1", "why", "sue")
    assert _runner(settings, store, "import sys; print('no labels'); sys.exit(3)").run_once() is not None
    by_name = {r.name: r for r in store.retrain_requests()}
    assert (by_name["ok-1"].status, by_name["ok-1"].message) == ("done", "registered ok-1 as candidate")
    assert (by_name["bad-1"].status, by_name["bad-1"].message) == ("failed", "no labels")
    assert (settings.logs_dir / "retrain-bad-1.log").read_text() == "no labels\n"
    assert _runner(settings, store, "print('x')").run_once() is None  # nothing waits


def _wait(until: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if until():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_stopping_the_runner_stops_its_retrain_and_a_new_one_fails_what_a_killed_one_left(
        settings: Settings, store: Store) -> None:
    store.request_retrain("slow-1", "why", "sue")
    runner = _runner(settings, store, "import time; print('training', flush=True); time.sleep(120)")
    runner.start()
    try:
        _wait(lambda: (settings.logs_dir / "retrain-slow-1.log").exists()
              and "training" in (settings.logs_dir / "retrain-slow-1.log").read_text())
    finally:
        runner.stop(timeout_s=5.0)
    [stopped] = store.retrain_requests()
    assert (stopped.status, stopped.message) == ("failed", STOPPED) and not runner.running
    # a supervisor killed mid-run leaves `running`; the next runner marks it failed as it starts
    store.request_retrain("slow-2", "why", "sue")
    assert store.claim_retrain() is not None
    again = _runner(settings, store, "print('x')")
    again.start()
    again.stop()
    slow2 = {r.name: r for r in store.retrain_requests()}["slow-2"]
    assert slow2.status == "failed" and "killed" in (slow2.message or "")


def test_the_command_is_xscreen_retrain_with_the_base_folders(settings: Settings, now: datetime) -> None:
    request = RetrainRequest(request_id="r", name="cand", reason="why", requested_by="sue", requested_at=now)
    assert retrain_argv(settings, request)[1:] == ["-m", "cli", "retrain", "--out", "cand"]
    based = settings.model_copy(update={"monitoring": settings.monitoring.model_copy(
        update={"retrain_base": [Path("/data/a"), Path("/data/b")]})})
    assert retrain_argv(based, request)[-2:] == ["--base", "/data/a,/data/b"]


def test_an_alert_kind_listed_in_retrain_on_makes_the_schedule_request_a_retrain(
        settings: Settings, store: Store, now: datetime) -> None:
    from serving.monitor_context import MonitorRun
    from serving.monitor_job import MonitorSchedule

    listed = settings.model_copy(update={"monitoring": settings.monitoring.model_copy(
        update={"retrain_on": ["accuracy"]})})
    schedule = MonitorSchedule(listed, lambda: store, interval_s=0)

    def raised(*kinds: str) -> MonitorRun:
        run = MonitorRun(now)
        run.raised.extend(AlertRecord(alert_id=k, raised_at=now, severity="page", kind=k, message=k)  # type: ignore[arg-type]
                          for k in kinds)
        return run

    schedule._request_retraining(raised("certificate"))  # not listed: nothing asked
    assert store.retrain_requests() == []
    schedule._request_retraining(raised("accuracy", "certificate"))
    [asked] = store.retrain_requests()
    assert (asked.name, asked.requested_by) == (f"retrain-{now:%Y%m%d-%H%M%S}", "system:monitoring")
    assert asked.reason == "alert(s) accuracy raised by monitoring"
    schedule._request_retraining(raised("accuracy"))  # the same second again: refused, logged, nothing breaks
    assert len(store.retrain_requests()) == 1


def test_a_supervisor_requests_retraining_on_the_models_page(owner_client: object, settings: Settings,
                                                            now: datetime, monkeypatch: pytest.MonkeyPatch) -> None:
    from screening.registry import register
    from tests.app_harness import point_app_at
    from tests.serving_fakes import tiny_model
    from tests.test_app_pages import add_users

    point_app_at(monkeypatch, settings)
    add_users(owner_client)  # type: ignore[arg-type]
    register(settings, tiny_model(settings.model.classes, "tiny-a"), state="champion")  # the page needs a model
    at = app_as(user("sue", "supervisor", now), now, script="pages/models.py").run()
    assert not at.exception and at.button(key="models_retrain").disabled  # needs a reason
    at.text_input(key="models_retrain_name").set_value("cand-page").run()
    at.text_input(key="models_retrain_reason").input("scanner-2 misses concealed narcotics").run()
    at.button(key="models_retrain").click().run()
    assert not at.exception and "Requested cand-page" in at.success[0].value
    [asked] = owner_client.retrain_requests()  # type: ignore[attr-defined]
    assert (asked.name, asked.requested_by, asked.status) == ("cand-page", "sue", "pending")
    table = next(d.value for d in at.dataframe if "reason" in d.value.columns and "status" in d.value.columns)
    assert list(table["name"]) == ["cand-page"]
    analyst = app_as(user("ada", "analyst", now), now, script="pages/models.py").run()
    assert not analyst.exception and not [b for b in analyst.button if b.key == "models_retrain"]


@pytest.mark.training
def test_the_runner_retrains_the_champion_for_real_through_the_owner(
        settings: Settings, tmp_path: Path) -> None:
    """The real command, `xscreen retrain`, in a child process with the settings as XSCREEN_* variables, talking
    to the running owner (the database file is the owner's alone): a candidate is registered."""
    from screening.registry import register
    from tests.serving_fakes import tiny_model
    from xray.dataset import write_dataset_impl

    classes = settings.model.classes
    tiny = settings.model_copy(update={"model": settings.model.model_copy(update={"default_epochs": 1})})
    bench = tmp_path / "bench"
    write_dataset_impl(bench, n=16, seed=5, classes=classes, size=(72, 64), progress_bar=False)
    based = tiny.model_copy(update={"monitoring": tiny.monitoring.model_copy(update={"retrain_base": [bench]})})
    with Store.from_settings(based) as store, OwnerThread(store, based):
        register(based, tiny_model(classes, "tiny-a", seed=1), state="champion")
        store.request_retrain("tiny-retrained", "test", "sue")
        env = {k: v for k, v in os.environ.items() if not k.startswith("XSCREEN_")}
        runner = RetrainRunner(based, lambda: store, {**env, **settings_env(based)})
        request = runner.run_once()
        assert request is not None
        [done] = store.retrain_requests()
        assert done.status == "done", done.message
        assert "registered tiny-retrained as candidate (parent tiny-a" in (done.message or "")
        assert store.get_model("tiny-retrained").state == "candidate"  # type: ignore[union-attr]
    assert timedelta(0) <= done.finished_at - done.started_at  # type: ignore[operator]


def test_the_supervisor_runs_requests_against_the_owner_and_stops_the_runner(
        owner_client: object, settings: Settings) -> None:
    from serving.supervisor import Supervisor

    supervisor = Supervisor(settings)
    supervisor.store = owner_client  # what start() holds once the owner answers
    said: list[str] = []
    supervisor._start_retraining(said.append)
    try:
        assert supervisor.retraining.running
        assert said == [f"retraining       on request (the Models page; no alert kind), logs {settings.logs_dir}/"
                        "retrain-NAME.log"]
    finally:
        supervisor.retraining.stop()
    assert not supervisor.retraining.running
