"""Supervision: SIGTERM stops `xscreen serve` in order (Ray's own SIGTERM handler never gets the signal), a
restart backs off, a start after a crashed run cleans up only what that run started, a supervisor started again
after a kill -9 adopts the running children (scoring never stops), and children nobody adopts stop by themselves.

The Ray signal facts this relies on are proven here, not assumed: a process that called ray.init and then gets
SIGTERM dies in Ray's handler unless a handler installed after ray.init replaces it (the serving worker does).
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from serving.heartbeat import Heartbeat, guarded
from serving.parts import Child, last_log_line, wait_until
from serving.runs import (
    RUN_ID_ENV,
    RunState,
    clean_previous_run,
    live_children,
    ray_temp_dir,
    started,
    state_path,
)
from serving.supervisor import Service, Supervisor
from tests.conftest import make_settings
from tests.serving_procs import (
    assert_nothing_left,
    children,
    drop,
    healthy,
    noise_png,
    output,
    ports_free,
    run_id,
    run_processes,
    serve_home,
    start_serve,
    supervisor_pid,
    wait_for,
    wait_running,
)
from xscreen.errors import XscreenError

RAY_PROBE = """
import os, signal, sys, threading, time
import ray
ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
stop = threading.Event()
if sys.argv[1] == "ours":
    from serving.worker import _install
    _install(stop)  # what the serving worker does right after ray.init
os.kill(os.getpid(), signal.SIGTERM)
time.sleep(1.0)
assert stop.is_set(), "our handler did not run"
time.sleep(4.0)  # an orderly stop that takes longer than Ray's 3 s abort alarm
ray.shutdown()
print("stopped in order", flush=True)
"""


@pytest.mark.slow
@pytest.mark.parametrize("handler", ["ray", "ours"])
def test_sigterm_after_ray_init_stops_in_order_only_with_a_handler_installed_after_it(handler: str) -> None:
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
    done = subprocess.run([sys.executable, "-c", RAY_PROBE, handler], capture_output=True, text=True, env=env,
                          timeout=180)
    if handler == "ours":
        assert done.returncode == 0 and "stopped in order" in done.stdout, done.stderr[-2000:]
        assert "SIGTERM received" not in done.stderr
    else:  # the fact (FACTS.md, Ray PR #64830): Ray's handler takes the signal and the stop never completes
        assert done.returncode != 0 and "stopped in order" not in done.stdout
        assert "SIGTERM received" in done.stderr


def test_restart_is_immediate_then_backs_off_to_a_cap_and_resets_after_a_stable_run() -> None:
    svc = Service("x", lambda: None, lambda: True, 1)  # type: ignore[arg-type,return-value]
    svc.started_at = 100.0
    delays = [svc.schedule_restart(101.0) for _ in range(8)]
    assert delays == [0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert svc.schedule_restart(100.0 + 61.0) == 0.0  # it had run for a minute: restarted at once again


def test_the_ray_head_and_worker_use_this_homes_private_ray_token(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # `ray start --head` with RAY_AUTH_MODE=token refuses to start without a token and never creates one: on a
    # fresh machine (no ~/.ray/auth_token) the stack could not start. The home supplies its own.
    monkeypatch.setenv("RAY_AUTH_TOKEN", "someone-elses")
    settings = make_settings(tmp_path / "home")
    env = Supervisor(settings).child_env()
    token_file = Path(env["RAY_AUTH_TOKEN_PATH"])
    assert token_file == Path(settings.home).resolve() / "secrets" / "ray.token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(token_file.parent.stat().st_mode) == 0o700
    token = token_file.read_text().strip()
    assert len(token) == 64 and int(token, 16) >= 0  # what `ray get-auth-token --generate` writes
    assert env["RAY_AUTH_MODE"] == "token" and "RAY_AUTH_TOKEN" not in env
    assert Supervisor(settings).child_env()["RAY_AUTH_TOKEN_PATH"] == str(token_file)
    assert token_file.read_text().strip() == token  # kept across starts: adopted children still match
    joining = Supervisor(settings, address="10.0.0.7:6379").child_env()  # someone else's cluster, their token
    assert "RAY_AUTH_TOKEN_PATH" not in joining and joining["RAY_AUTH_TOKEN"] == "someone-elses"
    token_file.chmod(0o644)
    with pytest.raises(XscreenError, match="readable by other users"):
        Supervisor(settings)


def test_a_service_that_dies_starting_says_why_on_the_operators_screen(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "ray-head.log"
    child = Child("Ray head", [sys.executable, "-c", "import sys; print('starting'); print('Traceback ...'); "
                               "sys.exit('AuthenticationError: no authentication token was found')"], log, dict(os.environ))
    child.start()
    with pytest.raises(XscreenError) as err:
        wait_until(lambda: False, 30, "Ray head", child.alive, log)
    assert str(err.value) == (f"Ray head exited during start-up; its log {log} ends: "
                              "AuthenticationError: no authentication token was found")
    assert last_log_line(tmp_path / "absent.log") is None
    log.write_text("x" * 500 + "\n\n")
    assert last_log_line(log) == "x" * 300 + "..."


def test_a_start_after_a_crash_cleans_only_what_that_run_started(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home")
    ours = [subprocess.Popen(["sleep", "300"], env={**os.environ, RUN_ID_ENV: "dead-run"}, start_new_session=True)
            for _ in range(2)]
    other = subprocess.Popen(["sleep", "300"], env={**os.environ, RUN_ID_ENV: "someone-else"})
    stranger = subprocess.Popen(["sleep", "300"])
    ray_dir = tmp_path / "ray-of-the-dead-run"
    ray_dir.mkdir()
    path = state_path(settings)
    path.parent.mkdir(parents=True)
    dead = subprocess.Popen(["true"])
    dead.wait()  # the crashed supervisor: its pid is gone
    path.write_text(__import__("json").dumps(RunState(dead.pid, "dead-run", 1, str(ray_dir), None, {}).__dict__))
    try:
        line = clean_previous_run(settings)
        assert line is not None and "2 process(es)" in line
        for proc in ours:
            proc.wait(10)  # ended
        assert other.poll() is None and stranger.poll() is None  # never anything it did not start
        assert not ray_dir.exists() and not path.exists()
    finally:
        for proc in (*ours, other, stranger):
            proc.kill()
            proc.wait()


def test_a_running_supervisor_of_the_same_home_is_refused(tmp_path: Path) -> None:
    import json

    from serving.runs import started as _started
    from xscreen.errors import ConfigError

    settings = make_settings(tmp_path / "home")
    path = state_path(settings)
    path.parent.mkdir(parents=True)
    live = subprocess.Popen(["sleep", "300"])  # stands in for the other supervisor, alive
    try:
        time.sleep(0.1)
        path.write_text(json.dumps(RunState(live.pid, "live", _started(live.pid) or 0, None, None, {}).__dict__))
        with pytest.raises(ConfigError, match="already running"):
            clean_previous_run(settings)
        assert live.poll() is None and path.exists()
        path.write_text(json.dumps(RunState(live.pid, "live", 12345, None, None, {}).__dict__))
        assert clean_previous_run(settings) is None  # a recycled pid (another start time) is not that run
        assert live.poll() is None
    finally:
        live.kill()
        live.wait()


def _sleeper(run: str | None) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != RUN_ID_ENV}
    if run is not None:
        env[RUN_ID_ENV] = run
    return subprocess.Popen(["sleep", "300"], env=env, start_new_session=True)


def test_only_recorded_children_with_their_start_time_and_run_id_are_adoptable() -> None:
    good, recycled, stranger = _sleeper("old-run"), _sleeper("old-run"), _sleeper(None)
    try:
        assert wait_for(lambda: all(started(p.pid) for p in (good, recycled, stranger)), 5)
        state = RunState(1, "old-run", 1, children={"owner": good.pid, "worker": recycled.pid, "app": stranger.pid},
                         children_started={"owner": started(good.pid) or 0, "worker": 12345,  # another process
                                           "app": started(stranger.pid) or 0})  # no run id: not that run's
        assert live_children(state) == {"owner": good.pid}
        good.kill()
        good.wait()
        assert live_children(state) == {}
    finally:
        for proc in (good, recycled, stranger):
            proc.kill()
            proc.wait()


def test_an_adopted_child_is_watched_and_stopped_through_its_pid() -> None:
    proc = _sleeper("run")
    try:
        assert wait_for(lambda: started(proc.pid) is not None, 5)
        child = Child.adopt("sleeper", proc.pid, started(proc.pid) or 0)
        assert child.alive() and child.pid == proc.pid
        assert not Child.adopt("sleeper", proc.pid, (started(proc.pid) or 0) + 1).alive()  # a recycled pid
        child.stop(timeout_s=5)
        assert proc.wait(5) == -signal.SIGTERM
        assert not child.alive()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


GROUP_PROBE = "import subprocess, time; subprocess.Popen(['sleep', '300']); print('up', flush=True); time.sleep(300)"


def test_the_orphan_guard_stops_its_process_group_only_once_the_heartbeat_is_silent(tmp_path: Path) -> None:
    beat = Heartbeat(tmp_path / "run" / "heartbeat", every_s=0.2)
    beat.start()
    argv = guarded([sys.executable, "-c", GROUP_PROBE], beat.path, exit_after_s=1.5)
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "up"
        time.sleep(3.0)  # twice the limit, beating all along
        assert proc.poll() is None
        group = [p for p in os.listdir("/proc") if p.isdigit() and _pgid(int(p)) == proc.pid]
        assert len(group) == 2  # the probe and its sleep
        beat.stop()  # the supervisor is gone (its file too)
        assert proc.wait(15) == -signal.SIGTERM
        assert wait_for(lambda: not [p for p in os.listdir("/proc") if p.isdigit() and _pgid(int(p)) == proc.pid], 5)
        assert "has been silent" in (proc.stderr.read() if proc.stderr else "")
    finally:
        beat.stop()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def _stored(settings: object, shas: set[str], timeout_s: float) -> bool:
    from store.client import StoreClient

    with StoreClient.from_settings(settings) as client:  # type: ignore[arg-type]
        return wait_for(lambda: client.known_hashes(sorted(shas)) == shas, timeout_s, every=0.2)


@pytest.mark.slow
def test_a_supervisor_started_again_after_kill_9_adopts_its_children_and_scoring_never_stops(tmp_path: Path) -> None:
    settings = serve_home(tmp_path / "home", orphan_exit_s=60)
    proc = start_serve(settings)
    try:
        wait_running(settings, proc)
        rid, kids = run_id(settings), children(settings)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        # No supervisor at all: the worker, the owner and Ray keep scoring.
        assert _stored(settings, {drop(settings.inbox_dir, "scanner-a", "gap.png", noise_png(1))}, 30)
        proc = start_serve(settings)  # as a service manager would
        assert wait_for(lambda: supervisor_pid(settings) == proc.pid, 60, every=0.1)
        assert _stored(settings, {drop(settings.inbox_dir, "scanner-a", "after.png", noise_png(2))}, 10)
        assert wait_for(lambda: output(settings).count("running;") == 2 and healthy(settings), 120)
        assert "adopted        store owner, Ray head, serving worker" in output(settings)
        assert children(settings) == kids and run_id(settings) == rid  # the same processes, not new ones
        # SIGTERM (what systemd, Docker and Kubernetes send) to the adopting supervisor still stops everything,
        # adopted children included, in order, and frees every port and file.
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(120) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        _end_run(settings)
    text = output(settings)
    assert "stopping ..." in text and text.rstrip().endswith("stopped")
    assert_nothing_left(settings, rid)
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{settings.api_url}/healthz", timeout=2)


@pytest.mark.slow
def test_children_of_a_killed_supervisor_that_nobody_restarts_stop_by_themselves(tmp_path: Path) -> None:
    settings = serve_home(tmp_path / "home", orphan_exit_s=3)
    proc = start_serve(settings)
    try:
        wait_running(settings, proc)
        rid = run_id(settings)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        assert run_processes(rid)  # not taken down with the supervisor ...
        # ... but gone once the heartbeat has been silent 3 s (worker), 8 s (Ray), 13 s (owner, which sweeps)
        assert wait_for(lambda: run_processes(rid) == [], 90, every=0.5), run_processes(rid)
        assert wait_for(lambda: ports_free(settings) == [], 15)
        assert clean_previous_run(settings) is None  # the record is tidied by the next start, nothing to end
        assert not ray_temp_dir(settings).exists()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        _end_run(settings)


def _end_run(settings: object) -> None:
    """A failed test must leave nothing running: the adopted children live outside the supervisor's group."""
    from serving.runs import kill_run

    try:
        kill_run(run_id(settings), grace_s=2)  # type: ignore[arg-type]
    except (OSError, ValueError, KeyError):
        pass


def _record(settings: object, supervisor: Supervisor, kids: dict[str, subprocess.Popen[bytes]]) -> None:
    """serve.json as a supervisor that has since died (its pid gone) left it, with `kids` as its children."""
    import json

    dead = subprocess.Popen(["true"])
    dead.wait()
    assert wait_for(lambda: all(started(p.pid) for p in kids.values()), 5)
    state = RunState(dead.pid, "old-run", 1, None, None, {k: p.pid for k, p in kids.items()},
                     {k: started(p.pid) or 0 for k, p in kids.items()}, supervisor.fingerprint())
    path = state_path(settings)  # type: ignore[arg-type]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(state.__dict__))


def test_a_new_supervisor_adopts_a_dead_ones_children_only_when_started_with_the_same_settings(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home")
    kids = {"owner": _sleeper("old-run"), "worker": _sleeper("old-run")}
    try:
        first = Supervisor(settings)
        _record(settings, first, kids)
        line = first.take_over()
        assert line is not None and "adopted" in line
        assert first.run_id == "old-run" and first.held_ports() == {"store_port", "metrics_port"}
        assert {k: c.pid for k, c in first.adopted.items()} == {k: p.pid for k, p in kids.items()}
        assert first.heartbeat.path.exists() and all(p.poll() is None for p in kids.values())
        first.heartbeat.stop()  # first dies in turn, leaving its record
        other = Supervisor(make_settings(tmp_path / "home", serving={"retry_base_s": 0.3}))  # other settings
        line = other.take_over()
        assert line is not None and "2 process(es)" in line and not other.adopted
        for proc in kids.values():
            assert proc.wait(10) == -signal.SIGTERM  # ended, not adopted
        assert not state_path(settings).exists()
    finally:
        for proc in kids.values():
            proc.kill()
            proc.wait()


def test_an_adopted_child_that_dies_during_the_take_over_is_started_again_not_a_failed_start(tmp_path: Path) -> None:
    old = _sleeper("run")
    made: list[Child] = []

    def make() -> Child:
        made.append(Child("sleeper", ["sleep", "300"], tmp_path / "sleeper.log", dict(os.environ)))
        return made[-1]

    svc = Service("sleeper", make, lambda: bool(made), 10)
    try:
        assert wait_for(lambda: started(old.pid) is not None, 5)
        svc.adopt(Child.adopt("sleeper", old.pid, started(old.pid) or 0))
        old.kill()  # killed between the take-over and the start's readiness check
        old.wait()
        svc.start(lambda: False)
        assert len(made) == 1 and svc.alive() and svc.child is not None and svc.child.pid != old.pid
    finally:
        svc.stop(timeout_s=5)
        if old.poll() is None:
            old.kill()
            old.wait()
