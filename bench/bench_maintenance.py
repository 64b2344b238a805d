"""The maintenance loop per drift scenario: the champion's detection before drift, under drift and the retrained
candidate's after, labels used, time to retrain on this CPU; and active against random relabelling at a few
label budgets (detection on the scenario recovered against labels used).

    python -m bench.bench_maintenance [--scenarios new_concealment new_goods] [--budgets 30 60 120]
                                      [--base 300] [--epochs 8] [--retrain-epochs 3] [--eval 120]
                                      [--threat knife --width 12 --input 128] [--officer-error 0.2]
                                      [--json var/bench_maintenance.json]

Per scenario: a tiny champion (tests/maintenance_loop.TINY) is trained on `--base` rendered baseline scans; then,
for each sampling policy (`active`: today's relabel queue, analytics.labelling.todays_queue; `random`: a uniform
slice of unlabelled scans) and budget, a fresh home with a real store owner receives the same stream (100 baseline
scans, then the scenario ramping in over 200), scored by the champion through the real ingest and spool;
simulated officers decide every flagged scan by the generator's truth and label what the policy offers within the
budget; `retrain` (the real code path) fine-tunes a candidate from the champion on the base folder plus the live
labels. Detection and false alarms are measured at each model's own certified operating point on fresh renders
(baseline for "before", the scenario at full strength for "under" and "after"; the candidate also on the
baseline renders, "after_baseline"). `--officer-error`: officers get that share of their triage decisions wrong
(a relabel is always right), and each run reports how many of the wrong decisions its labels corrected
("errors_fixed" of "officer_errors"): the relabel queue's disagreement and label-suspect parts exist for exactly
those. `--threat`, `--width`, `--input`: a single-class champion of another class
and size than TINY (narcotics, 4 channels, input 64), its mail's threats all of that class.

Requests failed during promotion and rollback are measured on the live stack by tests/test_maintenance_loop.py and
bench/bench_promotion.py (not here: this bench runs no Ray).

    python -m bench.bench_maintenance --probe-classes lithium_battery knife firearm --scenarios new_goods
                                      [--base 1500] [--epochs 20] [--probe-width 12] [--probe-input 128]

asks first whether a scenario hurts a champion at all: per class, a single-class champion trained on baseline
renders of that class, its AUC, detection and false alarms on baseline renders and on each scenario at full
strength (no stream, no retraining). A scenario that hurts no champion has nothing for the loop to recover.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tests.conftest import OwnerThread, make_settings
from tests.maintenance_loop import CLASSES, TINY, Officers, Rendered, rates, render, write_folder
from xscreen.settings import Settings, ensure_home

STREAM_BASELINE, STREAM_DRIFT, EVAL_N = 100, 200, 120
SCANNER = "scanner-1"


def loop_settings(home: Path, model: dict[str, Any] | None = None) -> Settings:
    """The tiny model (or `model`) at a 30% certified miss rate (a weak model certified at 5% routes all mail)."""
    return make_settings(home, model=model or TINY, screening={"alpha": 0.3, "delta": 0.3},
                         serving={"scanner_ids": [SCANNER]}, monitoring={"interval_s": 0})


def champion_model(classes: list[str], width: int | None = None, input_size: int | None = None) -> dict[str, Any]:
    """Model settings of a loop champion: TINY with these classes, and its width and input size unless given."""
    return {**TINY, "classes": classes, "width": width or TINY["width"], "input_size": input_size or TINY["input_size"]}


def ingest_stream(settings: Settings, client: Any, officers: Officers, items: list[Rendered]) -> None:
    """Score the stream with the champion through the real ingest and spool into the owner; officers decide."""
    from screening.classifier import Classifier, verdict_fields
    from serving.ingest import Ingest
    from store.spool import SpoolIngester, SpoolWriter

    clf = Classifier.from_registry(settings)
    ingest = Ingest.from_settings(settings, score=lambda images: [verdict_fields(p) for p in clf.predict(images)],
                                  spool_write=SpoolWriter(settings.spool_dir).write, known_hashes=client.known_hashes)
    answers = []
    for i, r in enumerate(items):
        report = ingest.ingest_bytes(r.data, name=f"m{i}.png", scanner_id=SCANNER, item_id=None, metadata={})
        answers.append({"verdict": report.verdicts[0].verdict})
    SpoolIngester(settings.spool_dir, client.ingest).drain()
    officers.decide_flagged(client, items, answers)


def one_run(root: Path, champion: Any, base: Path, stream: list[Rendered], scenario_eval: list[Rendered],
            policy: str, budget: int, epochs: int, model: dict[str, Any] | None = None,
            baseline_eval: list[Rendered] | None = None, officer_error: float = 0.0) -> dict[str, Any]:
    """A fresh home: the stream (officers erring on `officer_error` of their decisions), `budget` labels by
    `policy`, retrain; the candidate's rates on the scenario (and on `baseline_eval` when given: did retraining
    cost the mail before the drift?), and how many wrong decisions the policy's labels corrected."""
    from screening import registry
    from screening.retrain import retrain
    from screening.train import TrainConfig
    from store.client import StoreClient
    from store.engine import Store

    settings = loop_settings(root / f"{policy}-{budget}", model)
    ensure_home(settings)
    with Store.from_settings(settings) as store, OwnerThread(store, settings), \
            StoreClient.from_settings(settings) as client:
        registry.register(settings, champion, state="champion", actor="cli:bench")
        officers = Officers(error_rate=officer_error, seed=budget,  # the same errors for both policies of a budget
                            false_class=settings.model.classes[0])
        ingest_stream(settings, client, officers, stream)
        if policy == "active":
            labelled = officers.label_queue(client, budget=budget, random_share=settings.app.relabel_random_share,
                                            borderline_share=settings.labelling.borderline_share)
        else:
            labelled = officers.label_random(client, budget=budget, seed="bench")
        t0 = time.monotonic()
        retrain(settings, [base], "loop-candidate", cfg=TrainConfig(epochs=epochs, seed=8, progress=False), live_days=1,
                actor="cli:bench")
        seconds = time.monotonic() - t0
        after = rates(settings, "loop-candidate", scenario_eval)
        after_base = rates(settings, "loop-candidate", baseline_eval) if baseline_eval else None
    threats = sum(officers.truth[i].threat for i in officers.labelled)
    return {"policy": policy, "budget": budget, "labels": labelled, "labelled_threats": threats,
            "decided": officers.decided, "officer_errors": len(officers.wrong), "errors_fixed": officers.fixed,
            "retrain_s": round(seconds, 1), "after": asdict(after),
            **({"after_baseline": asdict(after_base)} if after_base else {})}


def scenario_runs(root: Path, scenario: str, budgets: list[int], n_base: int, epochs: int,
                  retrain_epochs: int, threat: str | None = None, width: int | None = None,
                  input_size: int | None = None, n_eval: int = EVAL_N, officer_error: float = 0.0) -> dict[str, Any]:
    """The loop for one scenario; `threat`, `width`, `input_size`: a single-class champion of another class and
    size than tests/maintenance_loop.TINY (narcotics, 4 channels, input 64); `officer_error`: the share of triage
    decisions the simulated officers get wrong."""
    from screening import registry
    from screening.train import TrainConfig, train_model
    from store.engine import Store

    classes = [threat] if threat else list(CLASSES)
    model = champion_model(classes, width, input_size)
    base = write_folder(root / "base", render("baseline", n_base, 1, threat_rate=0.5, classes=classes))
    settings = loop_settings(root / "champion-home", model)
    ensure_home(settings)
    baseline_eval = render("baseline", n_eval, 50, threat_rate=0.5, classes=classes)
    with Store.from_settings(settings) as store, OwnerThread(store, settings):
        train_model(settings, [base], "loop-champion", cfg=TrainConfig(epochs=epochs, seed=7, progress=False),
                    actor="cli:bench")
        champion = registry.load_registered(settings, "loop-champion")[1]
        before = rates(settings, "loop-champion", baseline_eval)
        scenario_eval = render(scenario, n_eval, 51, threat_rate=0.5, progress=1.0, classes=classes)
        under = rates(settings, "loop-champion", scenario_eval)
    stream = (render("baseline", STREAM_BASELINE, 10, threat_rate=0.3, classes=classes)
              + render(scenario, STREAM_DRIFT, 20, threat_rate=0.3, classes=classes))
    runs = [one_run(root, champion, base, stream, scenario_eval, policy, b, retrain_epochs, model, baseline_eval,
                    officer_error) for b in budgets for policy in ("active", "random")]
    return {"scenario": scenario, "classes": classes, "model": {k: model[k] for k in ("width", "input_size")},
            "officer_error": officer_error,
            "before": asdict(before), "under": asdict(under), "runs": runs}


def probe_class(root: Path, threat: str, scenarios: list[str], n_base: int, epochs: int, width: int,
                input_size: int, n_eval: int) -> dict[str, Any]:
    """Does a scenario hurt a champion of one threat class? A single-class champion (`width` channels, input
    `input_size`) trained on `n_base` baseline renders, its any-threat AUC, detection and false alarms at its
    certified point on `n_eval` baseline renders and `n_eval` renders of each scenario at full strength."""
    from screening.train import TrainConfig, train_model
    from store.engine import Store

    base = write_folder(root / "base", render("baseline", n_base, 1, threat_rate=0.5, classes=[threat]))
    settings = loop_settings(root / "home", champion_model([threat], width, input_size))
    ensure_home(settings)
    out: dict[str, Any] = {"threat": threat, "base": n_base, "epochs": epochs, "width": width, "input": input_size}
    with Store.from_settings(settings) as store, OwnerThread(store, settings):
        t0 = time.monotonic()
        train_model(settings, [base], "probe", cfg=TrainConfig(epochs=epochs, seed=7, progress=False),
                    actor="cli:bench")
        out["train_s"] = round(time.monotonic() - t0, 1)
        for k, scenario in enumerate(["baseline", *scenarios]):
            r = rates(settings, "probe", render(scenario, n_eval, 50 + k, threat_rate=0.5, progress=1.0,
                                                classes=[threat]))
            out[scenario] = {"auc": round(r.auc, 3), "detection": round(r.detection, 3),
                             "false_alarms": round(r.false_alarms, 3), "threats": r.threats, "benign": r.benign}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenarios", nargs="+", default=["new_concealment", "new_goods"])
    ap.add_argument("--budgets", nargs="+", type=int, default=[30, 60, 120])
    ap.add_argument("--base", type=int, default=300, help="baseline scans the champion is trained on")
    ap.add_argument("--epochs", type=int, default=8, help="epochs of the champion trained from scratch")
    ap.add_argument("--retrain-epochs", type=int, default=3, help="epochs of each fine-tuning retrain")
    ap.add_argument("--bundled-auc", type=int, default=0, metavar="N",
                    help="instead of the loop: the bundled model's AUC on N baseline and N scenario renders")
    ap.add_argument("--threat", default=None, help="the champion's one threat class (default: TINY's narcotics)")
    ap.add_argument("--width", type=int, default=None, help="the champion's channels (default: TINY's)")
    ap.add_argument("--input", type=int, default=None, help="the champion's input size (default: TINY's)")
    ap.add_argument("--eval", type=int, default=EVAL_N, help="renders per evaluation set")
    ap.add_argument("--officer-error", type=float, default=0.0,
                    help="share of triage decisions the simulated officers get wrong (relabels are always right)")
    ap.add_argument("--probe-classes", nargs="+", default=[], metavar="CLASS",
                    help="instead of the loop: per class, does each scenario hurt a single-class champion?")
    ap.add_argument("--probe-width", type=int, default=12)
    ap.add_argument("--probe-input", type=int, default=128)
    ap.add_argument("--probe-eval", type=int, default=300)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if args.probe_classes:
        with tempfile.TemporaryDirectory() as tmp:
            for threat in args.probe_classes:
                print(json.dumps(probe_class(Path(tmp) / threat, threat, args.scenarios, args.base, args.epochs,
                                             args.probe_width, args.probe_input, args.probe_eval)), flush=True)
        return
    if args.bundled_auc:
        from tests.maintenance_loop import CLASSES, bundled_auc

        for scenario in args.scenarios:  # new_concealment moves narcotics only: all its threats are narcotics
            classes = CLASSES if scenario == "new_concealment" else None
            print(json.dumps({"scenario": scenario, "bundled_auc": bundled_auc(scenario, args.bundled_auc, 61,
                                                                               classes)}), flush=True)
        return
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for scenario in args.scenarios:
            t0 = time.monotonic()
            result = scenario_runs(Path(tmp) / scenario, scenario, args.budgets, args.base, args.epochs,
                                   args.retrain_epochs, args.threat, args.width, args.input, args.eval,
                                   args.officer_error)
            result["seconds"] = round(time.monotonic() - t0, 1)
            out.append(result)
            print(json.dumps(result), flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
