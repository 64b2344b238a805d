"""Monitoring end to end: rendered scans go through the real ingest (reader, image statistics, the bundled model,
the durable spool, the store owner), simulated officers decide what the model flags, and the monitoring job must
tell each change apart within a stated number of items, while an equally long baseline stream pages nobody.

Two homes, each with its own owner. Both stream the same baseline phase (scanner-1 and scanner-2, N scans each).
Then the drift home streams scanner_ageing ramping in on scanner-1 (progress 0 -> 1 over N scans), scanner-2 on
baseline, and a new scanner-4 of a held-out style (xray.styles family `heldout`, HELDOUT_N scans); the control home
streams baseline on all three for as long. Scenario new_concealment is not here: it moves narcotics (a sixth of the
threats) into books and shoes and does not lower our models' detection measurably (docs/MONITORING.md), so no
harm alert is due; the accuracy pages are tested on their own (test_monitor_job.py).

The bundled model's own certificate routes most benign mail to officers (about 84%), so no scanner could break
it; the test sets an operating point and its certificate on CAL_N fresh
baseline renders (certified_checkpoint): clear below the 80th percentile of benign scores, so about 20% of benign
mail is certified routed, tolerated to 30%. Scanner-4 is a draw of the held-out family (style seed SCANNER_4)
among those the bundled model copes with worst: it routes about 47% of its benign mail there
(`v3-soup-tone`; draws 3-20 route 23-49%), 0.03 nats of evidence per benign item against ln(page_arl) = 11.5, so
the page comes after about 400 of its scans (measured: 400 of 500, the statistic 12.0, then 14.7 at 500), inside
the issue's 500. (The earlier bundled model, worse on the held-out family, paged on draw 5 after 320 of 400;
the current one routes 41-49% there and its statistic stalls at 11.3.) A held-out style the model copes with
(draws routing 23-34%) rightly raises nothing.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from screening import registry
from screening.calibration import OperatingPoint, verdicts, workload
from screening.classifier import Classifier, verdict_fields
from screening.train import bundled_checkpoint
from serving.ingest import Ingest
from serving.monitor_job import MonitorRun, run_monitor
from store.client import StoreClient
from store.engine import Store
from store.spool import SpoolIngester, SpoolWriter
from tests.conftest import OwnerThread, make_settings
from tests.monitor_seed import OFFICER
from xray.formats import read_scan
from xray.styles import render_styled, sample_style, style_rng
from xray.synth import render_parcel
from xray.writers import encode
from xscreen.records import DecisionRecord, utcnow
from xscreen.settings import DEFAULT_CLASSES, Settings

pytestmark = pytest.mark.slow
N = 40  # scans per scanner and phase: the drift window; scanner drift must fire within the N-scan ramp
HELDOUT_N = 500  # scans of the held-out scanner: its certificate alert must fire within them (issue 16: within 500)
SCANNER_4 = 17  # the style draw of the held-out family that scanner-4 is (see the module docstring)
CAL_N = 120
PARTS = 5  # the job runs after each fifth of the changed phase
SIZE = (256, 256)
CLEAR_BELOW = 0.8  # the operating point clears benign mail below this quantile of its calibration scores


@dataclass(frozen=True)
class Rendered:
    scanner: str
    data: bytes
    threat: bool
    regions: tuple[tuple[str, tuple[int, int, int, int]], ...] = ()  # (class, box) of each threat, image pixels

    @property
    def scan_id(self) -> str:
        return hashlib.sha256(self.data).hexdigest()[:16]  # how the ingest names a scan


def baseline(scanner: str, n: int, seed: int, scenario: str = "baseline", ramp: bool = False,
             full: bool = False) -> list[Rendered]:
    """n rendered scans of `scanner`: at progress 0, ramping linearly to 1 over the n scans, or at 1 (`full`)."""
    out = []
    for i in range(n):
        p = render_parcel(np.random.default_rng([seed, i]), classes=DEFAULT_CLASSES, scenario=scenario,
                          progress=1.0 if full else (i + 1) / n if ramp else 0.0, threat_rate=0.15, size=SIZE, scanner_id=scanner)
        out.append(Rendered(scanner, encode("png", p.high, p.low, palette=p.palette), bool(p.labels)))
    return out


def heldout(scanner: str, n: int, seed: int, style_seed: int | None = None) -> list[Rendered]:
    """n parcels (seed) seen by one scanner of the held-out style family (drawn by `style_seed`, default seed)."""
    style = sample_style(style_rng(seed if style_seed is None else style_seed, 0), "heldout")
    out = []
    for i in range(n):
        p, scan = render_styled(np.random.default_rng([seed, i]), style, classes=DEFAULT_CLASSES, threat_rate=0.15,
                                max_side=SIZE[0])
        regions = tuple((str(o.class_name), o.box) for o in scan.objects if o.is_threat and o.class_name)
        out.append(Rendered(scanner, scan.encode(), bool(scan.labels), regions))
    return out


def interleave(*streams: list[Rendered]) -> list[Rendered]:
    """Round robin over the scanners, as mail arrives at several machines at once."""
    return [r for group in itertools.zip_longest(*streams) for r in group if r is not None]


class Home:
    """One xscreen home: a real owner over HTTP, the real ingest with the bundled model, a spool drained into
    the owner, and an officer who decides every flagged item by its ground truth."""

    def __init__(self, settings: Settings, classifier: Classifier) -> None:
        self.settings = settings
        self.client = StoreClient.from_settings(settings)
        self.ingest = Ingest.from_settings(
            settings, score=lambda images: [verdict_fields(p) for p in classifier.predict(images)],
            spool_write=SpoolWriter(settings.spool_dir).write, known_hashes=self.client.known_hashes)
        self.spool = SpoolIngester(settings.spool_dir, self.client.ingest)
        self.n = 0
        self.confirmed: list[Rendered] = []  # threats the officer confirmed, in order

    def feed(self, items: list[Rendered]) -> None:
        truth, paths = {}, []
        for r in items:  # files in arrival order: received_at is the file's mtime
            path = self.settings.inbox_dir / r.scanner / f"scan-{self.n:05d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(r.data)
            stamp = utcnow().timestamp() - 3600 + self.n  # one scan a second, within the last hour
            os.utime(path, (stamp, stamp))
            truth[r.scan_id] = r
            paths.append(path)
            self.n += 1
        flagged = []
        for i in range(0, len(paths), 16):
            report = self.ingest(paths[i:i + 16])
            assert not report.quarantined and not report.retry
            flagged += [v.scan_id for v in report.verdicts if v.verdict != "clear"]
        self.spool.drain()
        for scan_id in flagged:
            r = truth[scan_id]
            self.client.record_decision(DecisionRecord(
                decision_id=f"d-{scan_id}", scan_id=scan_id, officer=OFFICER,
                decision="confirmed" if r.threat else "cleared",
                threat_class=(r.regions[0][0] if r.regions else "knife") if r.threat else None, decided_at=utcnow()))
        self.confirmed += [truth[i] for i in flagged if truth[i].threat]

    def monitor(self) -> MonitorRun:
        return run_monitor(self.settings, self.client, now=utcnow() + timedelta(seconds=1))


def certified_checkpoint() -> Any:
    """The bundled model at an operating point set on CAL_N baseline renders (its calibration split here): an item
    is cleared below the CLEAR_BELOW quantile of benign any-threat scores, inspected from the 97th percentile (class
    scores route nothing alone), and the certificate records the shares measured there. The bundled model
    separates threats weakly on today's renderer, so this point certifies no miss rate; it gives the certificate
    watch a routed share to hold the stream to, which is all it checks."""
    settings = make_settings(Path("/nonexistent"))
    ckpt = bundled_checkpoint(settings)
    assert ckpt is not None
    cal = baseline("scanner-1", CAL_N, 99)
    clf = Classifier(registry.build_model(ckpt), ckpt, "cpu")
    preds = clf.predict([read_scan(r.data) for r in cal])
    threat = np.array([r.threat for r in cal], dtype=int)
    any_scores = np.array([p.any_threat for p in preds])
    benign = any_scores[threat == 0]
    t_lo, t_hi = float(np.quantile(benign, CLEAR_BELOW)), float(np.quantile(benign, 0.97))
    thresholds = {**{c: {"clear": t_lo, "inspect": 1.01} for c in ckpt.classes},
                  "any_threat": {"clear": t_lo, "inspect": max(t_lo, t_hi)}}
    class_scores = np.array([[p.scores[c] for c in ckpt.classes] for p in preds])  # (N, C)
    v = verdicts(any_scores, class_scores, ckpt.classes, OperatingPoint(thresholds))
    certificate = {**ckpt.certificate, **{f"expected_{k}": x for k, x in workload(v, threat).items()}}
    return replace(ckpt, version=f"{ckpt.version}-cal-realism", thresholds=thresholds, certificate=certificate)


@pytest.fixture(scope="module")
def homes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Home]]:
    ckpt = certified_checkpoint()
    out, stack = {}, []
    for name in ("drift", "control"):
        settings = make_settings(tmp_path_factory.mktemp(name) / "home")
        mon = settings.monitoring.model_copy(update={"drift_window": N, "certificate_margin": 0.10,
                                                     "cbpe_bootstrap": 50})
        settings = settings.model_copy(update={"monitoring": mon})
        store = Store.from_settings(settings)
        owner = OwnerThread(store, settings).__enter__()
        stack.append((store, owner))
        registry.register(settings, ckpt, state="champion", actor="setup")
        out[name] = Home(settings, Classifier.from_registry(settings))
    try:
        yield out
    finally:
        for home in out.values():
            home.client.close()
        for store, owner in stack:
            owner.__exit__(None, None, None)
            store.close()


def paging(run: MonitorRun) -> list[tuple[str, str | None]]:
    return sorted((a.kind, a.details.get("scanner_id")) for a in run.raised if a.severity == "page")


def first_alerts(home: Home, chunks: list[list[Rendered]]) -> dict[tuple[str, str | None], int]:
    """Feed the chunks, running the job after each; for each alert, the scans of its scanner fed since the phase
    began when it was first raised (all scans for a fleet alert)."""
    seen: dict[tuple[str, str | None], int] = {}
    fed: dict[str, int] = {}
    for chunk in chunks:
        home.feed(chunk)
        for r in chunk:
            fed[r.scanner] = fed.get(r.scanner, 0) + 1
        for a in home.monitor().raised:
            scanner = a.details.get("scanner_id")
            seen.setdefault((a.kind, scanner), fed.get(scanner, 0) if scanner else sum(fed.values()))
    return seen


def chunked(*streams: list[Rendered], parts: int) -> list[list[Rendered]]:
    """Each stream cut into `parts` equal runs, the runs of one part interleaved: mail arriving at all scanners."""
    return [interleave(*[s[i * len(s) // parts:(i + 1) * len(s) // parts] for s in streams]) for i in range(parts)]


@pytest.fixture(scope="module")
def streamed(homes: dict[str, Home]) -> dict[str, dict[tuple[str, str | None], int]]:
    """Both homes after the baseline phase and their changed (drift) or unchanged (control) phase: the alerts
    each raised and after how many scans of their scanner."""
    phase_a = interleave(baseline("scanner-1", N, 1), baseline("scanner-2", N, 2))
    before = {}
    for name, home in homes.items():
        before[name] = first_alerts(home, [phase_a])
    # scanner-1 ages over its first N scans of the phase (progress 0 -> 1), then stays aged for N more.
    ageing = (baseline("scanner-1", N, 3, "scanner_ageing", ramp=True)
              + baseline("scanner-1", N, 6, "scanner_ageing", full=True))
    drift = first_alerts(homes["drift"], chunked(ageing, baseline("scanner-2", 2 * N, 4),
                                                 heldout("scanner-4", HELDOUT_N, 5, SCANNER_4), parts=PARTS))
    control = first_alerts(homes["control"], chunked(baseline("scanner-1", 2 * N, 13),
                                                     baseline("scanner-2", 2 * N, 14),
                                                     baseline("scanner-4", HELDOUT_N, 15), parts=PARTS))
    assert homes["control"].n == homes["drift"].n  # equally long
    return {"before": {**before["drift"], **before["control"]}, "drift": drift, "control": control}


def pages(home: Home) -> list[tuple[str, str | None]]:
    return sorted((a.kind, a.details.get("scanner_id")) for a in home.client.list_alerts() if a.severity == "page")


def test_scanner_ageing_is_scanner_drift_on_that_scanner_within_2n_scans(
        streamed: dict[str, dict[tuple[str, str | None], int]], homes: dict[str, Home]) -> None:
    assert streamed["before"] == {}
    drift = streamed["drift"]
    assert drift.get(("scanner_drift", "scanner-1"), 10**9) <= 2 * N, drift  # from the start of its ramp
    assert ("content_drift", None) not in drift, drift
    alert = next(a for a in homes["drift"].client.list_alerts() if a.kind == "scanner_drift")
    assert "noise_level +" in alert.message and "call maintenance" in alert.message


def test_a_held_out_style_scanner_pages_its_certificate_within_its_scans(
        streamed: dict[str, dict[tuple[str, str | None], int]], homes: dict[str, Home]) -> None:
    assert streamed["drift"].get(("certificate", "scanner-4"), 10**9) <= HELDOUT_N, streamed["drift"]
    assert pages(homes["drift"]) == [("certificate", "scanner-4")]


def test_an_equally_long_baseline_stream_pages_nobody(streamed: dict[str, dict[tuple[str, str | None], int]],
                                                       homes: dict[str, Home]) -> None:
    assert pages(homes["control"]) == [], streamed["control"]
    # Nor input drift. (Score drift may show: the bundled model's scores pile up at 0 and 1 on this renderer, so
    # 40-scan quantile bins are coarse; it explains and never pages.)
    assert not any(k[0] in ("scanner_drift", "content_drift") for k in streamed["control"]), streamed["control"]


ADAPT_TOML = """home = "{home}"
[network]
store_port = {store_port}
[screening]
alpha = 0.2
[adapt]
epochs = 1
synthetic_images = 60
library_articles = 4
library_poses = 2
min_images = 60
recent_verdicts = 400
"""


def mark_seizures(home: Home, confirmed: list[Rendered]) -> list[str]:  # the scans marked
    """What an officer does on the triage page after confirming a threat: mark its region (here the renderer's true
    box), recorded by the store and cut into the threat library (pages/_region.py does the same two steps)."""
    import uuid

    from xray.seizures import cut_seizure, save_seizure, seizures_dir

    ids = []
    for r in confirmed:
        cls, box = r.regions[0]
        rec = home.client.record_seizure(uuid.uuid4().hex, r.scan_id, f"d-{r.scan_id}", cls, list(box), OFFICER)
        save_seizure(cut_seizure(read_scan(r.data), rec), seizures_dir(home.settings.library_dir), rec.seizure_id)
        ids.append(r.scan_id)
    return ids


def test_the_certificate_page_leads_to_adapt_and_the_adapted_model_keeps_its_certificate_there(
        streamed: dict[str, dict[tuple[str, str | None], int]], homes: dict[str, Home], tmp_path: Path) -> None:
    """The second maintenance run of issue 17, from the held-out scanner's certificate page: the action it names
    (`xscreen adapt --scanner scanner-4`, run through the CLI against the live owner) makes a candidate from that
    scanner's own cleared scans in the store, zero labels, its threat library holding the regions officers marked
    on the threats they confirmed there (47 seizures: 33 training, 8 certification, 6 kept for canaries); promoted, it scores that scanner's next scans, and
    the certificate watch, now holding them to the adapted certificate, stays quiet. (Serving here is the
    in-process ingest, so the new champion is loaded by hand; serving following a promotion live, without a
    restart or a failed request, is tests/test_maintenance_loop.py and tests/test_live_promotion.py.) The
    adapt settings are cut to CI size (1 epoch, 60 synthetic renders, 4 library articles; about 30 s)."""
    home = homes["drift"]
    page = next(a for a in home.client.list_alerts() if a.kind == "certificate")
    assert page.details["action"] == "xscreen adapt --scanner scanner-4"
    from typer.testing import CliRunner

    from cli import app

    marked = mark_seizures(home, [r for r in home.confirmed if r.scanner == "scanner-4" and r.regions])
    assert len(marked) >= 5, marked
    config = tmp_path / "xscreen.toml"
    config.write_text(ADAPT_TOML.format(home=home.settings.home, store_port=home.settings.network.store_port))
    result = CliRunner().invoke(app, ["--config", str(config), *page.details["action"].split()[1:],
                                      "--out", "adapted-s4", "--budget-s", "240"])
    assert result.exit_code == 0, (result.output, result.exception)
    assert "xscreen models promote adapted-s4 --state shadow --scanner scanner-4" in result.output  # what to do next
    champion = home.client.champion()
    model = home.client.get_model("adapted-s4")
    cert = model.calibration["certificate"]
    assert champion is not None and model.state == "candidate" and model.parent == champion.version
    assert cert["adapted_for_scanner"] == "scanner-4" and "held-out images of this scanner" in cert["guarantee_rests_on"]
    used = model.metrics["adaptation"]["seizure_signatures"]  # the officers' regions went into the library
    from xray.seizures import seizure_part

    parts = [seizure_part(scan_id) for scan_id in marked]  # by scan: its canary-part share is kept for canaries
    assert used == {p: parts.count(p) for p in ("training", "certification")} and used["training"] > 0, used
    home.client.set_model_state("adapted-s4", "champion", actor="cli:test", reason="adapted for scanner-4", force=True)
    adapted = Home(home.settings, Classifier.from_registry(home.settings))
    adapted.n = home.n
    after = first_alerts(adapted, chunked(heldout("scanner-4", 120, 25, style_seed=SCANNER_4), parts=2))
    watch = next(m for m in home.client.latest_measurements("certificate_watch")
                 if (m.scanner_id, m.model_version) == ("scanner-4", "adapted-s4"))
    assert ("certificate", "scanner-4") not in after and not watch.details["alarm"], (after, watch.details["message"])
    # Not only quiet for want of evidence: over these ~100 benign scans the adapted model routes no more than its
    # certificate tolerates (measured 53% against a certified 61%, tolerated 71%). A certificate made on another
    # scanner's images fails this (the same model on another draw of the held-out family routed 95%).
    state = watch.details["state"]
    adaptation = model.metrics["adaptation"]
    print({"cert_set": {k: (adaptation[k]["pd_at_far"].get("0.05"), adaptation[k]["auc"]) for k in ("before", "after")},
           "routed": (state["n_events"], state["n_items"]), "tolerated": watch.details["tolerated_rate"],
           "certified": cert.get("expected_benign_routed")})  # the figures docs/MONITORING.md quotes (pytest -s)
    assert state["n_items"] >= 80 and state["n_events"] / state["n_items"] <= watch.details["tolerated_rate"], state
