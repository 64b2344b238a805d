"""A live scanner stream: parcels dropped into inbox/<scanner-id>/ at a given rate, atomically, with sidecars.

For each scan the sidecar `<stem>.json` (item id, scanner, scan time, CN22/CN23 declared contents, format) is
written first, then the image; each is written to a dot-prefixed temporary name in the same folder, fsynced and
renamed in with os.replace, so a watcher never sees a half-written file and always finds the sidecar when the
image appears. Arrivals are a seeded Poisson process; parcel i is rendered from rng([seed, i]), so the same seed
gives the same images byte for byte. The scenario ramps from progress 0 to 1 over `ramp_s` (default: duration).
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from xray.palettes import PALETTES
from xray.scenarios import get_scenario
from xray.synth import Parcel, render_parcel
from xray.threats import check_classes
from xray.writers import FORMATS, SUFFIX, encode
from xscreen import atomic
from xscreen.errors import ConfigError, XscreenError
from xscreen.settings import probe_writable

log = logging.getLogger(__name__)

SCANNER_PALETTES = ("reference", "six_colour", "high_contrast", "swapped")  # scanner k uses entry k-1 (cyclic)
# item type -> (CN22/CN23 description, HS code, typical unit value in USD)
DECLARATIONS: dict[str, tuple[str, str, float]] = {
    "clothing": ("T-shirt", "610910", 12.0), "shoes": ("Sports shoes", "640411", 45.0),
    "book": ("Printed book", "490199", 15.0), "paper_stack": ("Printed matter", "491199", 5.0),
    "notebook": ("Notebook", "482020", 4.0), "bottle": ("Skin care lotion", "330499", 18.0),
    "spray_can": ("Deodorant spray", "330720", 6.0), "tin": ("Canned food", "200899", 5.0),
    "food_pack": ("Snack food", "190590", 6.0), "powder_bag": ("Protein powder", "210610", 25.0),
    "toy": ("Plastic toy", "950300", 14.0), "toy_car": ("Die-cast model car", "950300", 12.0),
    "toy_gun": ("Toy blaster", "950300", 15.0), "lipstick": ("Lipstick", "330410", 9.0),
    "cosmetics_kit": ("Toiletry set", "330499", 20.0), "mug": ("Ceramic mug", "691200", 8.0),
    "candle_jar": ("Scented candle", "340600", 10.0), "umbrella": ("Umbrella", "660191", 12.0),
    "thermos": ("Vacuum flask", "961700", 18.0), "phone": ("Mobile phone", "851713", 220.0),
    "tablet": ("Tablet computer", "847130", 250.0), "laptop": ("Laptop computer", "847130", 650.0),
    "charger": ("USB charger", "850440", 9.0), "cable": ("USB cable", "854442", 4.0),
    "headphones": ("Headphones", "851830", 40.0), "earbuds": ("Wireless earphones", "851830", 30.0),
    "speaker": ("Bluetooth speaker", "851822", 35.0), "smartwatch": ("Smart watch", "851762", 80.0),
    "vape": ("Electronic cigarette", "854340", 25.0), "game_controller": ("Game controller", "950450", 35.0),
    "torch": ("Flashlight", "851310", 10.0), "hair_clipper": ("Hair clipper", "851010", 20.0),
    "router": ("Network router", "851762", 40.0), "e_reader": ("E-book reader", "847130", 90.0),
    "camera": ("Digital camera", "852589", 180.0), "power_drill": ("Electric drill", "846721", 45.0),
    "keyboard": ("Keyboard", "847160", 25.0), "cutlery": ("Stainless cutlery", "821599", 12.0),
    "screwdriver": ("Screwdriver", "820540", 5.0), "pliers": ("Pliers", "820320", 8.0),
    "scissors": ("Scissors", "821300", 5.0), "spanner": ("Spanner", "820411", 7.0),
    "hammer": ("Hammer", "820520", 10.0), "tape_measure": ("Tape measure", "901780", 6.0),
    "toolset": ("Socket set", "820600", 20.0), "keys": ("Keys", "830170", 3.0),
    "padlock": ("Padlock", "830110", 6.0), "coins": ("Coins (collectible)", "711890", 10.0),
    "coin_roll": ("Coins (collectible)", "711890", 15.0), "jewellery": ("Silver jewellery", "711311", 35.0),
    "watch": ("Wrist watch", "910211", 60.0), "metal_pen": ("Ballpoint pen", "960810", 8.0),
    "letter_opener": ("Letter opener", "821490", 6.0), "belt": ("Leather belt", "420330", 15.0),
    "bike_lock": ("Bicycle lock", "830110", 18.0), "glasses": ("Spectacle frames", "900311", 25.0),
    "aa_batteries": ("Alkaline batteries", "850610", 5.0), "fasteners": ("Screws", "731814", 4.0),
    "medicine": ("Vitamin tablets", "210690", 12.0), "sewing_kit": ("Sewing kit", "732020", 6.0),
    "wallet": ("Leather wallet", "420232", 20.0), "drone": ("Camera drone", "880621", 300.0),
    "bike_parts": ("Bicycle parts", "871494", 25.0),
}
UNDECLARED = ("packing",)  # benign families nobody declares on a customs form
_S10_WEIGHTS = (8, 6, 4, 2, 3, 5, 9, 7)


class OutputError(XscreenError):
    """An output folder cannot be created or written."""

    title = "Cannot write output"


def ensure_writable(folder: Path) -> None:
    """Create `folder` and prove it is writable; OutputError naming it otherwise."""
    try:
        probe_writable(folder)
    except OSError as exc:
        raise OutputError(f"output folder {folder} is not writable ({exc.strerror or exc})") from None


def s10_item_id(rng: np.random.Generator) -> str:
    """A UPU S10 postal item id, e.g. `RR123456785CN`, with its real check digit."""
    service = ["RR", "LX", "CP", "EE", "UA", "LB"][int(rng.integers(6))]
    digits = [int(d) for d in rng.integers(0, 10, size=8)]
    check = 11 - sum(w * d for w, d in zip(_S10_WEIGHTS, digits, strict=True)) % 11
    check = {10: 0, 11: 5}.get(check, check)
    country = ["CN", "US", "DE", "GB", "FR", "JP", "TR", "HK", "KR", "NL"][int(rng.integers(10))]
    return f"{service}{''.join(map(str, digits))}{check}{country}"


def declared_contents(parcel: Parcel, rng: np.random.Generator) -> list[dict[str, Any]]:
    """CN22/CN23 lines for the parcel's benign items (threats are, of course, not declared)."""
    counts: dict[str, int] = {}
    for obj in parcel.objects:
        if obj.name in DECLARATIONS:
            counts[obj.name] = counts.get(obj.name, 0) + 1
    lines = []
    for name, qty in counts.items():
        desc, hs, value = DECLARATIONS[name]
        unit = value * float(rng.uniform(0.6, 1.5))
        lines.append({"description": desc, "quantity": qty, "value_usd": round(unit * qty, 2), "hs_code": hs})
    return lines


def _atomic_write(folder: Path, name: str, data: bytes) -> None:
    """Write to a dot-prefixed temporary name in `folder`, fsync, then rename in; OutputError on failure."""
    try:
        atomic.write_bytes(folder / name, data, durable=True)
    except OSError as exc:
        raise OutputError(f"cannot write {folder / name} ({exc.strerror or exc})") from None


def check_simulator_args(rate: float, scanners: int, duration: float | None, fmt: str, classes: Sequence[str],
           scenario: str, threat_rate: float) -> None:
    if not (math.isfinite(rate) and rate > 0):
        raise ConfigError(f"rate must be a positive number of scans per second, got {rate}")
    if not 1 <= scanners <= 64:
        raise ConfigError(f"scanners must be between 1 and 64, got {scanners}")
    if duration is not None and not (math.isfinite(duration) and duration > 0):
        raise ConfigError(f"duration must be a positive number of seconds, got {duration}")
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
    if not 0.0 <= threat_rate <= 1.0:
        raise ConfigError(f"threat rate must be within [0, 1], got {threat_rate}")
    check_classes(list(classes))
    get_scenario(scenario)


def run_simulator(to_dir: Path, *, rate: float, scanners: int = 1, scenario: str = "baseline",
                  duration: float | None = 60.0, seed: int = 0, classes: Sequence[str], threat_rate: float = 0.15,
                  stop_event: threading.Event | None = None, fmt: str = "png", ramp_s: float | None = None,
                  start_at: datetime | None = None, size: tuple[int, int] | None = None,
                  truth_path: Path | None = None, progress_bar: bool = False, formats: Sequence[str] = (),
                  scanner_scenarios: Mapping[str, str] | None = None) -> int:
    """Drop scans into to_dir/<scanner-id>/ at `rate` per second; returns how many were written.

    `formats`: one per scanner, cyclic (scanner k writes formats[(k-1) % n]), e.g. ("png", "npz") for a fleet
    of pseudo-colour and dual-energy scanners; empty = `fmt` everywhere. `scanner_scenarios`: scanner id ->
    scenario played by that scanner instead of `scenario` (one scanner ageing while the others stay baseline).

    Stops after `duration` seconds of stream time, or when `stop_event` is set (checked while waiting).
    `start_at` fixes the sidecar clock (default: now, UTC). `truth_path`, if given, receives one JSON line per
    scan with its ground truth (labels, boxes), kept outside the inbox for accuracy experiments.
    """
    check_simulator_args(rate, scanners, duration, fmt, classes, scenario, threat_rate)
    folders = [to_dir / f"scanner-{k + 1}" for k in range(scanners)]
    plan = _scanner_plan([f.name for f in folders], fmt, formats, scenario, scanner_scenarios or {})
    for folder in folders:
        ensure_writable(folder)
    if truth_path is not None:
        ensure_writable(truth_path.parent)
    ramp = ramp_s or duration or 600.0
    clock0, wall0 = time.monotonic(), start_at or datetime.now(UTC)
    arrivals = np.random.default_rng([seed, 2**31])
    bar = _progress(duration, rate) if progress_bar else None
    due, written = 0.0, 0
    try:
        while True:
            due += float(arrivals.exponential(1.0 / rate))
            if duration is not None and due >= duration:
                break
            wait = clock0 + due - time.monotonic()
            if stop_event is not None:
                if stop_event.wait(max(wait, 0.0)):
                    break
            elif wait > 0:
                time.sleep(wait)
            scanner_fmt, scanner_scenario = plan[written % len(folders)]
            _drop_one(folders, written, seed, classes, scanner_scenario, min(due / ramp, 1.0), threat_rate,
                      scanner_fmt, size, wall0 + timedelta(seconds=due), truth_path)
            written += 1
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return written


def _scanner_plan(scanner_ids: list[str], fmt: str, formats: Sequence[str], scenario: str,
                  scanner_scenarios: Mapping[str, str]) -> list[tuple[str, str]]:
    """(format, scenario) of each scanner; ConfigError naming an unknown format, scenario or scanner."""
    for f in formats:
        if f not in FORMATS:
            raise ConfigError(f"unknown format {f!r} in the scanner formats; known: {', '.join(FORMATS)}")
    unknown = sorted(set(scanner_scenarios) - set(scanner_ids))
    if unknown:
        raise ConfigError(f"scenario given for unknown scanner(s) {', '.join(unknown)}; the simulated scanners are "
                          f"{', '.join(scanner_ids)}")
    for name in scanner_scenarios.values():
        get_scenario(name)
    return [(formats[k % len(formats)] if formats else fmt, scanner_scenarios.get(sid, scenario))
            for k, sid in enumerate(scanner_ids)]


def _progress(duration: float | None, rate: float) -> Any:
    from tqdm import tqdm

    return tqdm(total=int(duration * rate) if duration else None, unit="scan", desc="simulating")


def _drop_one(folders: list[Path], i: int, seed: int, classes: Sequence[str], scenario: str, progress: float,
              threat_rate: float, fmt: str, size: tuple[int, int] | None, scanned_at: datetime,
              truth_path: Path | None) -> None:
    rng = np.random.default_rng([seed, i])
    k = i % len(folders)
    scanner_id = folders[k].name
    palette = SCANNER_PALETTES[k % len(SCANNER_PALETTES)]
    assert palette in PALETTES
    parcel = render_parcel(rng, classes=classes, scenario=scenario, progress=progress, threat_rate=threat_rate,
                           size=size, scanner_id=scanner_id, palette=palette)
    item_id = s10_item_id(rng)
    stem = f"{i:06d}_{item_id}"
    image_name = stem + SUFFIX[fmt]
    sidecar = {"item_id": item_id, "scanner_id": scanner_id,
               "scanned_at": scanned_at.astimezone(UTC).isoformat(timespec="milliseconds"),
               "declared_contents": declared_contents(parcel, rng), "format": fmt}
    _atomic_write(folders[k], stem + ".json", json.dumps(sidecar, sort_keys=True).encode())
    _atomic_write(folders[k], image_name, encode(fmt, parcel.high, parcel.low, palette=palette,
                                                 uid_seed=f"{seed}-{i}"))
    if truth_path is not None:
        truth = {"file": f"{scanner_id}/{image_name}", "item_id": item_id, "labels": parcel.labels,
                 "scenario": scenario, "progress": round(progress, 4),
                 "objects": [{"name": o.name, "class": o.class_name, "box": list(o.box)} for o in parcel.objects
                             if o.is_threat]}
        with open(truth_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(truth, sort_keys=True) + "\n")
    log.debug("dropped %s/%s labels=%s", scanner_id, image_name, parcel.labels)
