"""CLI commands of the model area: train, retrain, evaluate, predict, gate, models list|show|promote|rollback|thresholds.

torch and the screening package are imported inside the commands so that `xscreen --help` stays fast.
`--model` takes a registered version name or `champion` everywhere.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from cli.context import cli_actor, settings_of
from xscreen.errors import BadScanError, XscreenError
from xscreen.settings import Settings

models_app = typer.Typer(help="List, inspect, promote and roll back model versions.", no_args_is_help=True)


def _dirs(data: str, option: str = "--data") -> list[Path]:
    dirs = [Path(d.strip()) for d in data.split(",") if d.strip()]
    missing = [str(d) for d in dirs if not d.is_dir()]
    if not dirs or missing:
        raise XscreenError(f"{option}: folder(s) not found: {', '.join(missing) or data!r}", title="Bad argument")
    return dirs


def _classifier(settings: Any, model: str) -> Any:
    """The Classifier of `model`; `champion` on a fresh home is the bundled model, registered on first use."""
    from screening.classifier import Classifier

    if model == "champion":
        from screening.train import champion_or_bundled

        champion_or_bundled(settings)
    return Classifier.from_registry(settings, model)


def _echo_json(obj: Any) -> None:
    typer.echo(json.dumps(obj, indent=2, default=str))


def train_cmd(
    ctx: typer.Context,
    data: str = typer.Option(..., "--data", help="Folder(s) with labels.csv, comma-separated."),
    out: str = typer.Option(..., "--out", help="Name of the new model version."),
    epochs: int = typer.Option(None, "--epochs", min=1, help="Epochs (default: model.default_epochs)."),
    from_model: str = typer.Option(None, "--from", help="Fine-tune from this version (or `champion`)."),
    val_fraction: float = typer.Option(0.15, "--val-fraction", min=0.01, max=0.5, help="Share held out for early stopping."),
    promote: bool = typer.Option(False, "--promote", help="Register as champion (default: candidate, or champion if none)."),
) -> None:
    """Train, calibrate (certified operating point) and register a model version."""
    from screening.train import TrainConfig, train_model

    settings = settings_of(ctx)
    cfg = TrainConfig(epochs=epochs or settings.model.default_epochs, val_fraction=val_fraction, seed=settings.model.seed,
                      box_weight=settings.model.box_weight)
    result = train_model(settings, _dirs(data), out, cfg=cfg, from_model=from_model, promote=promote, actor=cli_actor())
    rec, cert = result.record, result.checkpoint.certificate
    val = result.checkpoint.metrics.get("validation", {})
    typer.echo(f"registered {out} as {rec.state if rec else '?'}")
    if val:
        typer.echo(f"validation: any-threat AUC {val['any_threat']['auc']:.4f}  AP {val['any_threat']['ap']:.4f}  "
                   f"mean class AP {val['mean_class_ap']:.4f}")
    th = cert["thresholds"]["any_threat"]
    typer.echo(f"operating point: clear < {th['clear']:.4f} <= uncertain < {th['inspect']:.4f} <= inspect; "
               f"certified={cert['certified']} (alpha {cert['alpha']}, delta {cert['delta']}, "
               f"{cert['n_cal_threat']} calibration threats); expected workload {cert['expected_workload']:.1%}")


def evaluate_cmd(
    ctx: typer.Context,
    model: str = typer.Option("champion", "--model", help="Version name or `champion`."),
    data: str = typer.Option(..., "--data", help="Folder(s) with labels.csv, comma-separated."),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
    plots: Path = typer.Option(None, "--plots", help="Write reliability and ROC plots (HTML) into this folder."),
) -> None:
    """Metrics of a model on labelled folders: AP/AUC, PD at FAR, FAR at PD 95%, ECE, operating point.

    Images that cannot be read are left out, each named on stderr and listed under `unreadable` in the JSON."""
    from screening.assess import evaluate_classifier
    from screening.evaluate import save_plots

    settings = settings_of(ctx)
    clf = _classifier(settings, model)
    result, any_scores, any_labels = evaluate_classifier(clf, _dirs(data), progress=not as_json)
    for bad in result["unreadable"]:
        typer.echo(f"left out, unreadable: {bad['file']} ({bad['reason']})", err=True)
    if plots is not None:
        result["plots"] = [str(p) for p in save_plots(any_scores, any_labels, plots, f"{clf.version} on {data}")]
    if as_json:
        _echo_json(result)
        return
    _print_metrics(result, clf.version)


def _print_metrics(m: dict[str, Any], version: str) -> None:
    from rich.console import Console
    from rich.table import Table

    a, op = m["any_threat"], m["operating_point"]
    t = Table(title=f"{version}: {m['n']} scans, {m['n_threat']} with threats")
    for col in ("output", "AP", "AUC", "PD@FAR1%", "PD@FAR5%", "FAR@PD95%", "ECE"):
        t.add_column(col, justify="right")
    t.add_row("any_threat", f"{a['ap']:.4f}", f"{a['auc']:.4f}", f"{a['pd_at_far']['0.01']:.3f}", f"{a['pd_at_far']['0.05']:.3f}",
              f"{a['far_at_pd_95']:.3f}", f"{a['ece']:.4f}")
    for c, cm in m["classes"].items():
        t.add_row(c, f"{cm['ap']:.4f}", f"{cm['auc']:.4f}", "", "", "", "")
    console = Console()
    console.print(t)
    console.print(f"operating point: PD {op['pd']:.3f}, FAR (inspect) {op['far']:.3f}, uncertain share {op['uncertain_share']:.3f}; "
                  f"confusion {op['confusion']}")
    if "localisation" in m:
        loc = m["localisation"]
        console.print(f"heatmap peak inside the threat box: {loc['hit_rate']:.1%} of {loc['n']} detected threats")
    if m.get("unreadable"):
        console.print(f"{len(m['unreadable'])} unreadable images left out of these figures (named above)")


PREDICT_BATCH = 32  # scans read and scored together: memory stays bounded on a folder of thousands


def predict_cmd(
    ctx: typer.Context,
    files: list[Path] = typer.Argument(..., help="Scan files, or folders of them (png, jpeg, tiff, npz, dicos; "
                                                 "searched at any depth)."),
    model: str = typer.Option("champion", "--model", help="Version name or `champion`."),
    as_json: bool = typer.Option(False, "--json", help="Print predictions as JSON."),
) -> None:
    """Score scan files offline (no Ray): per-class scores, verdict and the top heatmap region.

    A file that is not a readable scan is named on stderr with the reason and the others are still scored; the
    exit status is then 1 (2 when none could be read)."""
    from xray.formats import scan_files

    settings = settings_of(ctx)
    paths = scan_files(files)
    rows: list[dict[str, Any]] = []
    refused: list[BadScanError] = []
    clf = None
    for start in range(0, len(paths), PREDICT_BATCH):  # a batch at a time: a folder of large scans is never held whole
        chunk, scans = _read_scans(settings, paths[start:start + PREDICT_BATCH], refused)
        if not scans:
            continue
        clf = clf or _classifier(settings, model)  # after the first readable scans: a bad file fails before torch loads
        rows += [_prediction_row(f, p) for f, p in zip(chunk, clf.predict(scans), strict=True)]
    for exc in refused:
        typer.echo(f"error: {exc}", err=True)
    if as_json:
        _echo_json(rows)
    else:
        for r in rows:
            scores = "  ".join(f"{c} {s:.3f}" for c, s in sorted(r["scores"].items(), key=lambda kv: -kv[1]))
            typer.echo(f"{r['file']}: {r['verdict'].upper()}  any_threat {r['any_threat']:.3f}  top {r['top_class']}  "
                       f"region {r['top_region']['class']} {r['top_region']['box']}\n    {scores}")
    if refused and not rows:  # nothing to show: an error, as for any bad input
        raise XscreenError(f"none of the {len(paths)} files could be read (above)", title="Unreadable scan")
    if refused:
        typer.echo(f"{len(refused)} of {len(paths)} files could not be read (above); {len(rows)} scored", err=True)
        raise typer.Exit(1)



def _read_scans(settings: Settings, paths: list[Path], refused: list[BadScanError]) -> tuple[list[Path], list[Any]]:
    """(readable paths, their scans); the refusals are appended to `refused`."""
    from xray.formats import read_scans

    s = settings.serving
    read: list[tuple[Path, Any]] = []
    for f, scan in read_scans(paths, max_bytes=s.max_upload_bytes, max_pixels=s.max_image_pixels,
                              max_decoded_bytes=s.max_decoded_bytes):
        if isinstance(scan, BadScanError):
            refused.append(scan)
        else:
            read.append((f, scan))
    return [f for f, _ in read], [scan for _, scan in read]


def _prediction_row(f: Path, p: Any) -> dict[str, Any]:
    top = p.top_class or max(p.scores, key=p.scores.__getitem__)
    return {"file": str(f), "model": p.model_version, "verdict": p.verdict, "any_threat": round(p.any_threat, 4),
            "top_class": p.top_class, "scores": {c: round(s, 4) for c, s in p.scores.items()},
            "top_region": {"class": top, "box": [round(v, 3) for v in p.peak_boxes.get(top, ())]}}


@models_app.command("list")
def models_list(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    """All registered versions, newest first."""
    from screening.registry import list_models

    recs = sorted(list_models(settings_of(ctx)), key=lambda r: r.created_at, reverse=True)
    if as_json:
        _echo_json([r.model_dump(mode="json", exclude={"metrics", "calibration"}) for r in recs])
        return
    for r in recs:
        ap = (r.metrics.get("validation") or {}).get("any_threat", {}).get("ap")
        ap_text = f"{ap:.4f}" if ap is not None else "-"
        scope = f"scanner={r.scanner_id}  " if r.scanner_id else ""
        typer.echo(f"{r.version:<28} {r.state:<10} {scope}{r.created_at:%Y-%m-%d %H:%M}  parent={r.parent or '-'}  "
                   f"val AP={ap_text}")


@models_app.command("show")
def models_show(ctx: typer.Context, name: str = typer.Argument("champion", help="Version name or `champion`.")) -> None:
    """Everything stored about one version (JSON): metrics, thresholds, certificate, checksum."""
    from screening.registry import resolve

    rec = resolve(settings_of(ctx), name)
    data = rec.model_dump(mode="json")
    data["metrics"].pop("history", None)
    _echo_json(data)


@models_app.command("promote")
def models_promote(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Version to make champion."),
    state: str = typer.Option("champion", "--state", help="champion, shadow, candidate or retired."),
    reason: str = typer.Option("promoted from the CLI", "--reason"),
    force: bool = typer.Option(False, "--force", help="Promote without a passing gate report (audited)."),
    scanner: str | None = typer.Option(None, "--scanner", help="Champion for this scanner only (its items are "
                                       "scored by it; the fleet champion stays for the others), or with --state "
                                       "shadow a shadow that scores this scanner's items only."),
) -> None:
    """Set a version's state (default champion; the previous champion of the same scope steps down, a new shadow
    replaces the old one; a candidate needs a passing `xscreen gate` report against the champion in force for
    that scope unless --force). Recorded in the audit log; serving follows within seconds."""
    from screening.registry import set_state

    if state not in ("champion", "shadow", "candidate", "retired"):
        raise XscreenError(f"--state must be champion, shadow, candidate or retired, not {state!r}", title="Bad argument")
    if scanner is not None and state not in ("champion", "shadow"):
        raise XscreenError(f"--scanner applies to --state champion or shadow only, not {state!r}",
                           title="Bad argument")
    settings = settings_of(ctx)
    rec = set_state(settings, name, state, cli_actor(), reason, force=force, scanner=scanner)  # type: ignore[arg-type]
    scope = f" for scanner {rec.scanner_id}" if rec.scanner_id else ""
    typer.echo(f"{rec.version} is now {rec.state}{scope} (serving follows within {settings.serving.model_poll_s:g} s)")


@models_app.command("rollback")
def models_rollback(
    ctx: typer.Context,
    scanner: str | None = typer.Option(None, "--scanner", help="Roll back this scanner's own champion (its first "
                                       "one: the scanner goes back to the fleet champion)."),
) -> None:
    """Make the previous champion (of the fleet, or of one scanner) champion again. Recorded in the audit log."""
    from screening.registry import rollback

    settings = settings_of(ctx)
    rec = rollback(settings, cli_actor(), scanner=scanner)
    wait = f"serving follows within {settings.serving.model_poll_s:g} s"
    if scanner is None:
        typer.echo(f"{rec.version} is champion again ({wait})")
    elif rec.scanner_id == scanner:
        typer.echo(f"{rec.version} is champion for scanner {scanner} again ({wait})")
    else:
        typer.echo(f"scanner {scanner} is scored by the fleet champion {rec.version} again ({wait})")


@models_app.command("thresholds")
def models_thresholds(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Version whose operating point changes (or `champion`)."),
    file: Path = typer.Argument(..., help='JSON file: {"any_threat": {"clear": t, "inspect": t}, "<class>": {...}}.'),
    reason: str = typer.Option("changed from the CLI", "--reason"),
) -> None:
    """Set a version's thresholds (the one copy in force, versioned); serving applies them live, no reload."""
    from screening.registry import resolve
    from store.client import open_store

    settings = settings_of(ctx)
    try:
        thresholds = json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        raise XscreenError(f"{file}: not a readable JSON file ({exc})", title="Bad argument") from None
    if not isinstance(thresholds, dict):
        raise XscreenError(f"{file}: expected a JSON object of class -> thresholds", title="Bad argument")
    version = resolve(settings, name).version
    with open_store(settings) as store:
        number = store.set_thresholds(version, thresholds, actor=cli_actor(), reason=reason)
    typer.echo(f"{version}: thresholds version {number} in force (serving applies it within "
               f"{settings.serving.model_poll_s:g} s)")


def retrain_cmd(
    ctx: typer.Context,
    out: str = typer.Option(..., "--out", help="Name of the candidate version."),
    base: str = typer.Option(None, "--base", help="Base training folder(s) with labels.csv, comma-separated."),
    live_days: float = typer.Option(None, "--live-days", min=0, help="Only labels of the last N days (default: all)."),
    epochs: int = typer.Option(None, "--epochs", min=1, help="Epochs (default: model.default_epochs)."),
) -> None:
    """Fine-tune the champion on base data + officers' labels, recalibrate, register a candidate (then: gate)."""
    from screening.retrain import retrain
    from screening.train import TrainConfig

    settings = settings_of(ctx)
    cfg = TrainConfig(epochs=epochs or settings.model.default_epochs, seed=settings.model.seed,
                      box_weight=settings.model.box_weight)
    result = retrain(settings, _dirs(base) if base else [], out, cfg=cfg, live_days=live_days, actor=cli_actor())
    ckpt = result.checkpoint
    typer.echo(f"registered {out} as {result.record.state if result.record else '?'} (parent {ckpt.parent}, "
               f"data manifest {ckpt.train_manifest_sha256[:12]}); next: xscreen gate {out}")


def gate_cmd(
    ctx: typer.Context,
    candidate: str = typer.Argument(..., help="Candidate version to judge against the champion."),
    data: str = typer.Option(None, "--data", help="Frozen benchmark folder(s) with labels.csv, comma-separated."),
    live_days: float = typer.Option(30.0, "--live-days", min=0, help="Also labelled live scans of the last N days (0: none)."),
    margin: float = typer.Option(0.05, "--margin", min=0.001, max=0.999, help="Largest detection drop tolerated, per class."),
    min_class_items: int = typer.Option(10, "--min-class-items", min=1, help="Threat items a class needs to be judged."),
    drift_data: str = typer.Option(None, "--drift-data", help="Labelled folder(s) from where the drift is (the new goods or concealment), comma-separated: gate items on which the candidate must also be better than the champion."),
    drift_scanner: str = typer.Option(None, "--drift-scanner", help="The drifted scanner: its labelled live scans are items on which the candidate must also be better."),
    canaries: int = typer.Option(0, "--canaries", min=0, help="Also this many known-answer items per scanner (serving.scanner_ids and --drift-scanner): a canary-part library threat projected into its recent cleared scans."),
    as_json: bool = typer.Option(False, "--json", help="Print the whole report as JSON."),
) -> None:
    """Gate a candidate against the champion on the same items; the report is stored, promotion asks for it.
    With --drift-data or --drift-scanner the candidate must also be right significantly more often than the
    champion there (a retrain for a drift that does not fix it fails)."""
    from analytics.monitoring.promotion import GateCriteria
    from screening.gate import run_gate

    settings = settings_of(ctx)
    record = run_gate(settings, candidate, _dirs(data) if data else [], live_days=live_days,
                      criteria=GateCriteria(margin=margin, min_class_items=min_class_items), actor=cli_actor(),
                      drift_folders=_dirs(drift_data, "--drift-data") if drift_data else [], drift_scanner=drift_scanner,
                      canaries=canaries)
    if as_json:
        _echo_json(record.model_dump(mode="json"))
        return
    r = record.report
    typer.echo(f"{record.candidate} against {record.champion}: {'PASSED' if record.passed else 'FAILED'} on {r['n']} "
               f"items ({r['n_threat']} threats; {r['sources']})")
    typer.echo(f"detection {r['champion']['detection']} -> {r['candidate']['detection']}, false alarms "
               f"{r['champion']['false_alarms']} -> {r['candidate']['false_alarms']}; McNemar p {r['mcnemar']['p_value']:.3g}")
    if r.get("focus"):
        f = r["focus"]
        typer.echo(f"where the drift is ({f['n']} items, {f['n_threat']} threats): errors {f['champion_errors']} -> "
                   f"{f['candidate_errors']}, McNemar p {f['mcnemar']['p_value']:.3g} "
                   f"({'better' if f['better'] else 'not shown better'})")
    for reason in r["reasons"]:
        typer.echo(f"  - {reason}")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    app.command("train")(train_cmd)
    app.command("evaluate")(evaluate_cmd)
    app.command("predict")(predict_cmd)
    app.command("gate")(gate_cmd)
    app.command("retrain")(retrain_cmd)
    app.add_typer(models_app, name="models")
