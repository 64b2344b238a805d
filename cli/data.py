"""CLI commands of the data area: `synth` (labelled data sets) and `simulate` (a live scanner stream).

Heavy imports (numpy renderer, Pillow, tifffile) happen inside the commands so `xscreen --help` stays fast.
Bad input (unknown class, scenario or format, negative rate, unwritable folder) raises an XscreenError, which
cli.main prints as one line.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import typer

from cli.context import settings_of
from xscreen.errors import ConfigError

FORMAT_HELP = "png (pseudo-colour), jpeg, gray (8-bit single energy), tiff / npz / dicos (raw 16-bit dual energy)"
STYLE_HELP = ("Scanner style family (xray.styles, docs/DATA.md): reference (the vendor palettes alone), train (the "
              "randomised training family), heldout, heldout-grey, heldout-jpeg (a scanner training never sees); "
              "the style is recorded per image in manifest.parquet.")


def parse_size(text: str | None) -> tuple[int, int] | None:
    """`512x384` -> (512, 384) as (width, height); None stays None."""
    if text is None:
        return None
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not match:
        raise ConfigError(f"--size must look like WIDTHxHEIGHT (e.g. 512x512), got {text!r}")
    return int(match.group(1)), int(match.group(2))


def parse_time(text: str | None) -> datetime | None:
    """An ISO 8601 time (UTC when no offset is given); None stays None."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"--start-at must be an ISO 8601 time such as 2026-01-05T09:00:00Z, got {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def synth(
    ctx: typer.Context,
    out: Path = typer.Option(..., "--out", help="Folder to write images, labels.csv and manifest.parquet into."),
    n: int = typer.Option(..., "--n", help="Number of images."),
    seed: int = typer.Option(0, "--seed", help="Random seed: same seed and options, same bytes."),
    scenario: str = typer.Option("baseline", "--scenario", help="Drift scenario (see docs/DATA.md)."),
    fmt: str = typer.Option("png", "--format", help=FORMAT_HELP),
    threat_rate: float = typer.Option(0.5, "--threat-rate", help="Share of parcels holding a threat, in [0, 1]."),
    size: str | None = typer.Option(None, "--size", help="WIDTHxHEIGHT; default 512 wide, variable height."),
    style: str = typer.Option("reference", "--style", help=STYLE_HELP),
    one_style: bool = typer.Option(False, "--one-style",
                                   help="Draw one scanner style for the whole set (one scanner) instead of one per image."),
    content: str | None = typer.Option(None, "--content",
                                       help="Object families: train, heldout or all (default: heldout for the held-out "
                                            "styles, else train; docs/DATA.md)."),
) -> None:
    """Render a labelled synthetic data set of dual-energy X-ray parcels."""
    from xray.dataset import write_dataset_impl

    classes = list(settings_of(ctx).model.classes)
    labels = write_dataset_impl(out, n=n, seed=seed, classes=classes, scenario=scenario, fmt=fmt,
                                threat_rate=threat_rate, size=parse_size(size), progress_bar=True, style=style,
                                one_style=one_style, content_split=content)
    what = f"{fmt} images" if style == "reference" else f"images in style {style}"
    typer.echo(f"wrote {n} {what}, {labels} and {out / 'manifest.parquet'}")


def simulate(
    ctx: typer.Context,
    to: Path = typer.Option(..., "--to", help="Inbox folder; scans go to TO/scanner-K/."),
    rate: float = typer.Option(..., "--rate", help="Scans per second (all scanners together)."),
    scanners: int = typer.Option(1, "--scanners", help="Number of simulated scanners."),
    scenario: str = typer.Option("baseline", "--scenario", help="Drift scenario, ramped over the duration."),
    duration: float | None = typer.Option(None, "--duration", help="Seconds to run; default until Ctrl-C."),
    seed: int = typer.Option(0, "--seed", help="Random seed: same seed, same images."),
    fmt: str = typer.Option("png", "--format", help=FORMAT_HELP),
    threat_rate: float | None = typer.Option(None, "--threat-rate",
                                                help="Share of parcels with a threat (default simulator.threat_rate)."),
    ramp: float | None = typer.Option(None, "--ramp", help="Seconds over which the scenario ramps (default: duration, else 600)."),
    truth: Path | None = typer.Option(None, "--truth", help="Append each scan's ground truth (JSON lines) to this file."),
    size: str | None = typer.Option(None, "--size", help="WIDTHxHEIGHT; default 512 wide, variable height."),
    start_at: str | None = typer.Option(None, "--start-at",
                                        help="ISO time of the first scan in the sidecars (default: now, UTC)."),
) -> None:
    """Play a live scanner stream: files appear atomically with a sidecar JSON of item metadata."""
    from xray.simulate import check_simulator_args, run_simulator

    settings = settings_of(ctx)
    rate_used = threat_rate if threat_rate is not None else settings.simulator.threat_rate
    check_simulator_args(rate, scanners, duration, fmt, settings.model.classes, scenario, rate_used)
    parse_size(size)
    parse_time(start_at)
    typer.echo(f"simulating {scanners} scanner(s) at {rate}/s into {to} (scenario {scenario}; Ctrl-C stops)")
    count = run_simulator(to, rate=rate, scanners=scanners, scenario=scenario, duration=duration, seed=seed,
                          classes=list(settings.model.classes), threat_rate=rate_used, fmt=fmt, ramp_s=ramp,
                          truth_path=truth, size=parse_size(size), start_at=parse_time(start_at), progress_bar=True)
    typer.echo(f"wrote {count} scans")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    app.command("synth")(synth)
    app.command("simulate")(simulate)
