"""CLI command of the monitoring area: `xscreen monitor` runs the monitoring job once and prints what it found.

It goes through the running store owner when one answers, else opens the database file in-process
(`store.client.open_store`), like the store commands; `xscreen serve` / `demo` run the same job on a schedule
(`monitoring.interval_s`).
"""

from __future__ import annotations

import typer

from cli.context import cli_actor, settings_of


def monitor(
    ctx: typer.Context,
    require_owner: bool = typer.Option(False, "--require-owner", help="Fail unless a store owner answers."),
) -> None:
    """Run the monitoring job once: certificate watch, drift by cause, accuracy; record and raise alerts."""
    from rich.console import Console
    from rich.table import Table

    from analytics.monitoring.report import summary_table
    from serving.monitor_job import run_monitor
    from store.client import open_store

    settings = settings_of(ctx)
    with open_store(settings, require_owner=require_owner) as store:
        run = run_monitor(settings, store)
    frame = summary_table(run.measurements)
    table = Table(*frame.columns, title=f"Monitoring run at {run.measured_at:%Y-%m-%d %H:%M:%S} UTC")
    for row in frame.itertuples(index=False):
        table.add_row(*[str(v) for v in row])
    Console(width=120).print(table)
    for alert in run.raised:  # plain lines: a sentence is copied whole (commands in it must not wrap)
        typer.echo(f"{alert.severity.upper()} {alert.kind}: {alert.message}")
    for note in run.notes:
        typer.echo(f"note: {note}")
    typer.echo(f"{len(run.measurements)} measurement(s) recorded, {len(run.raised)} new alert(s)")
    from screening.retrain import retrain_on_alerts, triggering_kinds

    result = retrain_on_alerts(settings, run.raised, actor=cli_actor())  # monitoring.retrain_on (off by default)
    if result is not None and result.record is not None:
        # the scanner the triggering alert named is where the drift is: the gate holds the candidate to it there
        kinds = triggering_kinds(settings, run.raised)
        where = sorted({str(a.details["scanner_id"]) for a in run.raised
                        if a.kind in kinds and a.details.get("scanner_id")})
        focus = f" --drift-scanner {where[0]}" if len(where) == 1 else ""
        typer.echo(f"retrained {result.record.version} as candidate (monitoring.retrain_on); "
                   f"next: xscreen gate {result.record.version}{focus}")


def register(app: typer.Typer) -> None:
    """Add this area's command to the root app."""
    app.command("monitor")(monitor)
