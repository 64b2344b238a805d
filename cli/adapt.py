"""CLI command `xscreen adapt`: fit a model to one scanner from its own unlabelled images (screening/adapt.py).

`--images DIR`: a plain folder of that scanner's JPEG / PNG scans (colour or grey, any size, no sidecars), assumed
mostly benign. `--scanner ID` alone: that scanner's recent cleared scans from the store (officer-cleared, or
cleared by the champion). The result is registered as a candidate; `xscreen models promote` makes it champion.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from cli.context import cli_actor, settings_of
from xscreen.errors import BadScanError, XscreenError
from xscreen.settings import Settings

if TYPE_CHECKING:  # numpy and the renderer load only when adapting
    from xray.threat_library import LibraryEntry


def _store_images(settings: Settings, scanner: str) -> list[Path]:
    from store.client import open_store

    with open_store(settings) as store:  # the owner over HTTP when it runs, else the file
        df = store.cleared_images(scanner, limit=settings.adapt.recent_verdicts)
    paths = [Path(p) for p in df["path"] if Path(p).is_file()]
    if not paths:
        raise XscreenError(f"the store has no readable cleared scans of scanner {scanner!r}", title="No images")
    return paths


def _seizures(settings: Settings, scanner: str) -> list[LibraryEntry]:
    """Signatures cut from real seizures usable for `scanner` (xray.seizures.usable_for), from the store's records."""
    from store.client import open_store
    from xray.seizures import seizure_entries, seizures_dir

    with open_store(settings) as store:
        records = store.list_seizures()
    entries, missing = seizure_entries(records, seizures_dir(settings.library_dir), scanner)
    for reason in missing:
        typer.echo(f"warning: {reason}", err=True)
    return entries


def adapt_cmd(
    ctx: typer.Context,
    out: str = typer.Option(..., "--out", help="Name of the adapted model version (registered as candidate)."),
    images: Path = typer.Option(None, "--images", help="Folder of the scanner's scans (JPEG/PNG, any size, no sidecars)."),
    scanner: str = typer.Option(None, "--scanner", help="Scanner id: recorded with the model; alone, the scans "
                                "come from its recent cleared verdicts in the store."),
    from_model: str = typer.Option("champion", "--from", help="Version to adapt (or `champion`)."),
    budget: float = typer.Option(None, "--budget-s", min=10, help="Time budget in seconds (default: adapt.time_budget_s)."),
    epochs: int = typer.Option(None, "--epochs", min=1, help="Most fine-tuning epochs (default: adapt.epochs)."),
) -> None:
    """Adapt a model to one scanner: library threats projected into its own benign scans, zero labels."""
    from screening.adapt import AdaptConfig, adapt_model, read_folder, read_paths, reading_side
    from screening.registry import resolve

    settings = settings_of(ctx)
    s = settings.serving
    if images is None and scanner is None:
        raise XscreenError("give --images DIR, --scanner ID, or both", title="Bad argument")
    if from_model == "champion":  # a fresh home: the bundled model, registered on first use
        from screening.train import champion_or_bundled

        champion_or_bundled(settings)
    side = reading_side(int(resolve(settings, from_model).architecture["input_size"]))  # scans reduced as read
    refused: list[BadScanError] = []
    if images is not None:
        pixels, _ = read_folder(images, max_bytes=s.max_upload_bytes, max_pixels=s.max_image_pixels, max_side=side,
                                refused=refused)
        source = f"folder {images}"
    else:
        pixels = read_paths(_store_images(settings, scanner), max_bytes=s.max_upload_bytes,
                            max_pixels=s.max_image_pixels, max_side=side, refused=refused)
        source = f"store: recent cleared scans of {scanner}"
    for exc in refused:  # named as predict names them; adapting goes on with the readable ones
        typer.echo(f"skipped: {exc}", err=True)
    if refused:
        typer.echo(f"{len(refused)} files could not be read (above); adapting from the {len(pixels)} others", err=True)
    a = settings.adapt
    cfg = AdaptConfig.from_settings(a, settings.model.seed, epochs=epochs or a.epochs,
                                    time_budget_s=budget or a.time_budget_s)
    seizures = _seizures(settings, scanner) if scanner is not None else []
    result = adapt_model(settings, pixels, out, from_model=from_model, scanner=scanner, cfg=cfg, source=source,
                         seizures=seizures, actor=cli_actor())
    summ = result.summary
    used = summ["seizure_signatures"]
    typer.echo(f"threat library: {summ['library_articles']['training']} training and "
               f"{summ['library_articles']['certification']} certification articles, of which {used['training']} "
               f"and {used['certification']} are signatures cut from real seizures"
               f"{'' if scanner else ' (seizures are used with --scanner)'}")
    typer.echo(f"registered {out} as candidate for scanner {scanner or '(unnamed)'}: {summ['images']} images, "
               f"{summ['kept']} kept, {summ['adaptation_backgrounds']} for training, "
               f"{summ['held_out_backgrounds']} held out; {summ['seconds']:.0f} s")
    for when in ("before", "after"):
        m = summ[when]
        op = m.get("operating_point", {})
        typer.echo(f"{when:6s} on held-out scans of this scanner + projected certification articles: "
                   f"PD@FAR5% {m['pd_at_far'].get('0.05', float('nan')):.3f}  AUC {m['auc'] or float('nan'):.3f}  "
                   f"at the operating point PD {op.get('pd', float('nan')):.3f} FAR {op.get('far', float('nan')):.3f}")
    typer.echo(f"certificate rests on: {result.checkpoint.certificate['guarantee_rests_on']}")
    if scanner:  # the safe path: compare, try it on that scanner's live mail in shadow, then promote for it alone
        typer.echo(f"next: xscreen gate {out} --drift-scanner {scanner}; xscreen models promote {out} --state shadow --scanner {scanner}; "
                   f"then xscreen models promote {out} --scanner {scanner}")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    app.command("adapt")(adapt_cmd)
