"""Promotion and rollback under live traffic: seconds from the store's change to the first answer by the new
model, and requests failed meanwhile (must be 0), on the real stack (store owner, local Ray + Serve, /v1).

Usage: .venv/bin/python -m bench.bench_promotion [--rounds 3] [--poll 2.0] [--threads 2]
Two tiny registered models take turns: each round promotes the other (forced: the bench measures the switch,
not the gate) while `--threads` clients upload distinct scans, then waits until 5 answers in a row come from it.
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image


def _png(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (96, 104, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def _tiny(classes: list[str], version: str, seed: int):  # type: ignore[no-untyped-def]
    from screening.network import NetConfig, build_network
    from screening.registry import Checkpoint

    config = NetConfig(classes=tuple(classes), input_size=64, width=4, embedding_dim=8)
    thresholds = {c: {"clear": 0.3, "inspect": 0.7} for c in [*classes, "any_threat"]}
    return Checkpoint(version, config, build_network(config, seed=seed).state_dict(), {"any_threat": 1.0},
                      thresholds, {"alpha": 0.05}, {})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--poll", type=float, default=2.0, help="serving.model_poll_s")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    from screening.registry import register
    from serving.runs import free_port_in
    from serving.runtime import Stack
    from xscreen.settings import ensure_home, load_settings

    home = Path(tempfile.mkdtemp(prefix="xscreen-bench-promotion-")) / "home"
    ports = iter(sorted({free_port_in("127.0.0.1", p, 900) for p in (8310, 8410, 8510, 8610)}))
    network = {"host": "127.0.0.1", "api_port": next(ports), "store_port": next(ports), "app_port": next(ports),
               "metrics_port": next(ports)}
    settings = load_settings(environ={}, home=home, network=network,
                             serving={"scanner_ids": ["scanner-a"], "model_poll_s": args.poll})
    ensure_home(settings)
    stack = Stack(settings)
    answers: list[tuple[float, int, str | None]] = []
    stop, lock, counter = threading.Event(), threading.Lock(), [0]

    def client(token: str) -> None:
        with httpx.Client(timeout=60, headers={"Authorization": f"Bearer {token}"}) as http:
            while not stop.is_set():
                with lock:
                    counter[0] += 1
                    seed = counter[0]
                r = http.post(f"{settings.api_url}/v1/scans", data={"scanner_id": "scanner-a"},
                              files={"file": (f"b{seed}.png", _png(seed), "image/png")})
                with lock:
                    answers.append((time.monotonic(), r.status_code,
                                    r.json().get("model_version") if r.status_code == 201 else None))

    def last_run(version: str) -> int:
        with lock:
            run = 0
            for _, _, v in reversed(answers):
                if v != version:
                    break
                run += 1
            return run

    switches: list[float] = []
    try:
        stack.start_owner()
        classes = stack.settings.model.classes
        register(stack.settings, _tiny(classes, "bench-a", 1), state="champion")
        register(stack.settings, _tiny(classes, "bench-b", 2))
        stack.start_serving()
        token = stack.store.issue_scanner_token("scanner-a", actor="cli:bench")
        threads = [threading.Thread(target=client, args=(token,), daemon=True) for _ in range(args.threads)]
        for t in threads:
            t.start()
        current = "bench-a"
        for _ in range(args.rounds * 2):
            target = "bench-b" if current == "bench-a" else "bench-a"
            t0 = time.monotonic()
            stack.store.set_model_state(target, "champion", actor="cli:bench", reason="bench", force=True)
            while last_run(target) < 5:
                time.sleep(0.05)
            with lock:
                first = next(t for t, _, v in answers if t >= t0 and v == target)
            switches.append(first - t0)
            current = target
        stop.set()
        for t in threads:
            t.join(60)
    finally:
        stop.set()
        stack.stop()
    failed = sum(1 for _, status, _ in answers if status != 201)
    print(f"requests {len(answers)}, failed {failed}; switch to the new champion (s): median "
          f"{statistics.median(switches):.2f}, max {max(switches):.2f} over {len(switches)} switches "
          f"(poll {args.poll} s, {args.threads} clients)")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
