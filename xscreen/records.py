"""The records every component exchanges with the store: one glossary, used in tables, APIs and pages.

scan (one image of one item) · prediction (in memory) · verdict (stored, with model version) ·
decision (an officer's action on a verdict) · label (ground truth for training) · canary (a known-answer
injected scan). Times are timezone-aware UTC; probabilities are in [0, 1].
"""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypedDict  # pydantic validates only this TypedDict on Python 3.11

from xscreen.errors import XscreenError

VerdictValue = Literal["inspect", "clear", "uncertain"]
VerdictRole = Literal["champion", "shadow"]
DecisionValue = Literal["cleared", "confirmed", "seized", "refer"]
LabelSource = Literal["officer", "relabel", "adjudication", "double_read", "synthetic", "audit", "import"]
ModelState = Literal["candidate", "shadow", "champion", "retired"]
Role = Literal["officer", "supervisor", "analyst", "admin"]
AlertStatus = Literal["open", "acknowledged", "resolved"]
Severity = Literal["info", "warning", "page"]
ANY_THREAT = "any_threat"
THREAT_UNKNOWN_CLASS = "threat"  # a label saying "something was there, class unknown"


def utcnow() -> datetime:
    return datetime.now(UTC)


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ImageStats(Record):
    """Cheap per-scan image statistics, stored for drift monitoring by scanner. Fractions in [0, 1]."""

    mean_attenuation: float = Field(description="Mean of -ln(transmission), high energy where available")
    noise_level: float = Field(description="Robust noise estimate in flat regions (transmission units)")
    dynamic_range: float = Field(description="p99 - p1 of attenuation")
    organic_fraction: float
    inorganic_fraction: float
    metal_fraction: float


class ScanRecord(Record):
    """One image of one item as received. Identified by the content hash of the file bytes."""

    scan_id: str = Field(description="First 16 hex digits of sha256")
    sha256: str
    scanner_id: str
    item_id: str | None = None  # from the sidecar (postal item id)
    source_path: str
    file_format: str  # png | jpeg | tiff | npz | dicos | upload
    width: int
    height: int
    bit_depth: int
    dual_energy: bool
    received_at: datetime  # file closed / upload received (UTC): start of end-to-end latency
    scanned_at: datetime | None = None  # from the sidecar
    declared_contents: list[dict[str, Any]] | None = None  # CN22/CN23 lines from the sidecar
    stats: ImageStats
    is_canary: bool = False
    canary_labels: list[str] | None = None  # known answer of a canary


class VerdictRecord(Record):
    """A model version's stored judgement of one scan. (scan_id, model_version) is unique."""

    scan_id: str
    model_version: str
    role: VerdictRole = "champion"
    verdict: VerdictValue
    any_threat: float = Field(ge=0, le=1)
    scores: dict[str, float]  # calibrated per-class probabilities
    top_class: str | None  # highest-scoring class, None if no class above its clear threshold
    thresholds: dict[str, Any]  # the operating point in force: {class: {"clear": t_lo, "inspect": t_hi}, ...}
    embedding: list[float]
    heatmaps: dict[str, str] = Field(default_factory=dict)  # class -> encode_heatmap(grid) in the image frame below
    heatmap_size: int = 0  # the grid's side g (cells)
    peak_boxes: dict[str, list[float]] = Field(default_factory=dict)  # class -> [x0, y0, x1, y1] in image fractions
    scored_at: datetime
    latency_ms: float | None = None  # received_at -> scored_at


# ---- heatmaps: one frame and one codec, for the classifier that writes them and the viewer that shows them ------
#
# A stored heatmap is a (g, g) grid over the whole IMAGE, never over the model's letterboxed canvas: cell (r, c)
# covers image rows [r * H / g, (r + 1) * H / g) and columns [c * W / g, (c + 1) * W / g), whatever the image's
# aspect ratio (a 1000 x 300 scan has cells 31 px wide and 9 px high). The classifier crops the canvas padding off
# before it resizes to g x g (screening/classifier.py); nobody crops again. Peak boxes are image fractions too.
# Wire form: base64 of the g * g row-major uint8 levels (0 = no evidence, 255 = the scan's strongest).


def encode_heatmap(grid: np.ndarray) -> str:
    """(g, g) map in [0, 1] over the image -> the VerdictRecord wire form (base64 of uint8 levels)."""
    levels = np.clip(np.rint(np.asarray(grid, dtype=np.float64) * 255), 0, 255).astype(np.uint8)
    return base64.b64encode(levels.tobytes()).decode("ascii")


def decode_heatmap(text: str, size: int) -> np.ndarray:
    """The wire form back to a (size, size) float32 grid in [0, 1]; XscreenError naming what is wrong."""
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError as exc:
        raise XscreenError(f"heatmap is not valid base64: {exc}", title="Cannot display scan") from None
    if len(raw) != size * size:
        raise XscreenError(f"heatmap has {len(raw)} bytes, expected {size}x{size}={size * size}",
                           title="Cannot display scan")
    return np.frombuffer(raw, dtype=np.uint8).reshape(size, size).astype(np.float32) / 255.0  # (g, g)


def heatmap_on_image(grid: np.ndarray, height: int, width: int) -> np.ndarray:
    """The grid at the image's size (H, W): each pixel takes the cell that covers it (the frame above)."""
    g_h, g_w = grid.shape
    rows = np.minimum((np.arange(height) * g_h) // height, g_h - 1)
    cols = np.minimum((np.arange(width) * g_w) // width, g_w - 1)
    return np.asarray(grid)[rows[:, None], cols[None, :]]  # (H, W)


def heatmap_peak(grid: np.ndarray) -> tuple[float, float]:
    """(x, y) image fractions of the centre of the grid's strongest cell."""
    r, c = np.unravel_index(int(np.argmax(grid)), grid.shape)
    return (c + 0.5) / grid.shape[1], (r + 0.5) / grid.shape[0]


class QuarantineRecord(Record):
    """A file refused by the reader or ingest, with its reason; the file itself is moved to quarantine."""

    quarantine_id: str  # sha256 of (source_path, size, mtime) or of content where readable
    sha256: str | None
    scanner_id: str | None
    source_path: str
    quarantined_path: str | None
    reason_code: str  # stable tag: zero_byte, truncated, not_image, bad_bit_depth, too_large, symlink_escape, ...
    reason: str
    quarantined_at: datetime


class ImageMove(Record):
    """A scan's image now lies at `path` (serving tells the store when a file did not go where the scan record
    said, or a re-delivered copy was filed)."""

    scan_id: str
    path: str


class DecisionRecord(Record):
    decision_id: str
    scan_id: str
    officer: str
    decision: DecisionValue
    threat_class: str | None = None  # required for confirmed/seized when known
    note: str | None = None
    decided_at: datetime


class LabelRecord(Record):
    """Ground truth for one scan. Appended, never updated: the newest label per scan is current."""

    label_id: str
    scan_id: str
    labels: list[str]  # class names, or ["threat"] (class unknown); [] = benign
    source: LabelSource
    author: str
    created_at: datetime
    note: str | None = None


# ---- seizures: the region an officer marks on a confirmed threat, in the scan's own pixels -----------------------
#
# A seizure box is (x0, y0, x1, y1) in IMAGE pixels of the stored scan (width x height as the scans table has them),
# end-exclusive, origin at the top-left: the frame of the heatmaps above at the image's full size, never the model's
# letterboxed canvas and never a zoomed view. The store checks it and xray cuts the signature from it.
MIN_SEIZURE_SIDE = 3  # pixels: a smaller box has no inside to take a signature from, nor a ring around it
SeizureKind = Literal["attenuation", "transmission"]


def seizure_box_problem(box: list[int] | tuple[int, ...], width: int, height: int) -> str | None:
    """Why `box` is not a usable seizure region of a width x height image (None when it is)."""
    if len(box) != 4:
        return f"a seizure box has four numbers (x0, y0, x1, y1), got {len(box)}"
    x0, y0, x1, y1 = (int(v) for v in box)
    if x1 - x0 < MIN_SEIZURE_SIDE or y1 - y0 < MIN_SEIZURE_SIDE:
        return (f"seizure box {list(box)} is empty or too small: x1 - x0 and y1 - y0 must be at least "
                f"{MIN_SEIZURE_SIDE} pixels")
    if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
        return f"seizure box {list(box)} lies outside the {width}x{height} image (x in [0, {width}], y in [0, {height}])"
    return None


class SeizureRecord(Record):
    """A confirmed threat's region, marked by an officer: where the library's seizure signature is cut from.

    `kind`: `attenuation` (the scan kept raw dual-energy data: log-attenuation, projects into any scanner) or
    `transmission` (pseudo-colour / grey only: projects only into images of `scanner_id`)."""

    seizure_id: str  # 8-64 lower-case hex digits: also the signature's file name
    scan_id: str
    scanner_id: str
    decision_id: str  # the confirmed/seized decision this region belongs to
    class_name: str
    box: list[int]  # (x0, y0, x1, y1) image pixels, end-exclusive (seizure_box_problem)
    kind: SeizureKind
    officer: str
    created_at: datetime


MODEL_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")  # a model version's name: a folder name too
RESERVED_VERSIONS = frozenset({"champion"})  # names that mean a role, never a version


def is_model_version_name(name: str) -> bool:
    """Whether `name` may name a model version (the registry and the store's retrain requests both ask)."""
    return bool(MODEL_VERSION.match(name)) and name not in RESERVED_VERSIONS


class ModelRecord(Record):
    version: str
    parent: str | None
    state: ModelState
    created_at: datetime
    classes: list[str]
    architecture: dict[str, Any]  # arguments that rebuild the network
    train_manifest_sha256: str
    metrics: dict[str, Any]
    thresholds: dict[str, Any]
    calibration: dict[str, Any]  # temperature(s) + conformal certificate
    weights_path: str
    weights_sha256: str
    thresholds_version: int = 1  # bumped each time the thresholds in force change (store/models.py set_thresholds)
    scanner_id: str | None = None  # a champion's scope: this scanner only (None: the whole fleet, or not champion)


class GateReportRecord(Record):
    """The promotion gate's verdict on a candidate against the champion on the same items (analytics/monitoring/
    gate_report.py builds `report`: per-class detection and false alarms, McNemar, non-inferiority, reasons)."""

    report_id: str
    candidate: str
    champion: str
    created_at: datetime
    passed: bool
    report: dict[str, Any]


RetrainStatus = Literal["pending", "running", "done", "failed"]


class RetrainRequest(Record):
    """A request to retrain the champion into candidate `name` (the Models page, or an alert kind listed in
    monitoring.retrain_on), run by the supervisor's retrain runner (serving/retrain_runner.py) one at a time."""

    request_id: str
    name: str
    reason: str
    requested_by: str
    requested_at: datetime
    status: RetrainStatus = "pending"
    started_at: datetime | None = None
    finished_at: datetime | None = None
    message: str | None = None  # the end of the run's output: where it failed, or what it registered


class ModelInForce(Record):
    """What serving needs to follow one live role (the champion, or the shadow): the weights to load and the
    thresholds to apply. A replica swaps models when `version` changes and thresholds when `thresholds_version`
    does, without a reload (serving/follow.py)."""

    role: VerdictRole
    version: str
    weights_path: str
    weights_sha256: str
    thresholds: dict[str, Any]
    thresholds_version: int
    scanner_id: str | None = None  # a champion for this scanner only (None: the whole fleet)


class CanaryRecord(Record):
    """A known-answer canary: a library threat of `class_name` projected into a live benign scan of `scanner_id`
    (`source_scan_id`) and scored by the live model. Kept apart from scans and verdicts (never counted as mail);
    `detected` = the model routed it to an officer (verdict not `clear`), as the certificate counts detection."""

    canary_id: str
    scanner_id: str
    source_scan_id: str
    class_name: str
    article: str | None = None  # the library article projected: class:variant:k (xray.tip) or seizure:<seizure id>
    model_version: str
    verdict: VerdictValue
    any_threat: float = Field(ge=0, le=1)
    class_score: float | None = Field(default=None, ge=0, le=1)  # the model's score of the projected class
    scored_at: datetime

    @property
    def detected(self) -> bool:
        return self.verdict != "clear"


class OfficerTipRecord(Record):
    """A canary shown to officers as an officer TIP test: its id looks like a scan id, its projected image lies at
    `image_path` (`file_format`), and it waits in the queue like a flagged item. The rest of what officers see
    (scanner, item, declared contents, image size) is the source scan's. Never a scan, a verdict or a label."""

    tip_id: str
    canary_id: str
    source_scan_id: str
    scanner_id: str
    class_name: str
    article: str | None = None
    model_version: str
    verdict: VerdictValue
    any_threat: float = Field(ge=0, le=1)
    scores: dict[str, float] = Field(default_factory=dict)
    top_class: str | None = None
    image_path: str
    file_format: str
    created_at: datetime
    # The canary's heatmaps as the verdict wire form carries them (class -> base64 grid of heatmap_size**2 levels)
    # and their peak boxes: a flagged item always opens with a heatmap, so a TIP item must too.
    heatmap_size: int = Field(default=0, ge=0)
    heatmaps: dict[str, str] = Field(default_factory=dict)
    peak_boxes: dict[str, list[float]] = Field(default_factory=dict)


class TipReveal(Record):
    """What an officer is told once they decided an officer TIP item: it was a test, of which class, and whether
    their decision caught it (`hit`: anything but clearing it)."""

    tip_id: str
    officer: str
    class_name: str
    decision: DecisionValue
    hit: bool
    decided_at: datetime

    @property
    def message(self) -> str:
        verdict = "you caught it" if self.hit else "you cleared it, so it would have passed"
        return (f"This was a test image (TIP): a {self.class_name.replace('_', ' ')} was projected into this scan; "
                f"{verdict}. It is not a real item and your decision is recorded only as a TIP result.")


class MeasurementRecord(Record):
    measurement_id: str
    measured_at: datetime
    kind: str  # e.g. psi_any_threat, realized_precision, canary_detection_rate
    scanner_id: str | None = None
    model_version: str | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None
    value: float
    details: dict[str, Any] = Field(default_factory=dict)


class AlertRecord(Record):
    alert_id: str
    raised_at: datetime
    severity: Severity
    kind: str
    message: str
    status: AlertStatus = "open"
    details: dict[str, Any] = Field(default_factory=dict)


class AuditRecord(Record):
    """One row of the audit log; `seq` is its place in the hash chain (store/audit_chain.py)."""

    audit_id: str
    at: datetime
    actor: str
    action: str  # login, decision, relabel, promote, rollback, user_add, sql, ...
    target: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    seq: int | None = None


class UserRecord(Record):
    """A user as the app sees it (the password hash never leaves the store owner)."""

    username: str
    role: Role
    disabled: bool = False
    created_at: datetime


PrincipalKind = Literal["user", "scanner"]


class Principal(Record):
    """Who a bearer token stands for: a signed-in person (with their role) or a scanner client of /v1.

    `name` is what the audit log records: the username, or `scanner:<scanner_id>`."""

    kind: PrincipalKind
    name: str
    role: Role | None = None
    scanner_id: str | None = None


class SessionGrant(Record):
    """A successful login: the session token (plaintext, shown once; the store keeps only its sha256)."""

    token: str
    user: UserRecord
    expires_at: datetime


class TokenRecord(Record):
    """A session or scanner token as listed by the store: never the token or its hash.

    `token_id` is a short public handle (for `revoke_token` and listings)."""

    token_id: str
    kind: PrincipalKind
    username: str | None = None
    scanner_id: str | None = None
    created_at: datetime
    last_seen_at: datetime | None = None
    expires_at: datetime | None = None  # None: until revoked (scanner tokens)
    revoked_at: datetime | None = None


class IngestBatch(Record):
    """What serving hands the store owner (via the spool or HTTP): written in one transaction, idempotently."""

    batch_id: str
    scans: list[ScanRecord] = Field(default_factory=list)
    verdicts: list[VerdictRecord] = Field(default_factory=list)
    quarantines: list[QuarantineRecord] = Field(default_factory=list)


# ---- one scan as the store describes it (`get_scan`): the same keys and types in-process and over HTTP ------------

ImageState = Literal["kept", "expired"]


class ImageLocation(TypedDict):
    """Where a scan's pixels are now: `kept` at `path` (since `since`), or `expired` (deleted under retention;
    `path` is where they were). The store is told of every move and expiry (store/scans.py)."""

    state: ImageState
    path: str | None
    since: datetime | None
    reason: str | None


class StoredVerdict(TypedDict):
    """A VerdictRecord as stored: its fields plus the scan's scanner."""

    scan_id: str
    model_version: str
    role: VerdictRole
    scanner_id: str | None
    verdict: VerdictValue
    any_threat: float
    scores: dict[str, float]
    top_class: str | None
    thresholds: dict[str, Any]
    embedding: list[float]
    heatmaps: dict[str, str]
    heatmap_size: int
    peak_boxes: dict[str, list[float]]
    scored_at: datetime
    latency_ms: float | None


class StoredDecision(TypedDict):
    decision_id: str
    scan_id: str
    officer: str
    decision: DecisionValue
    threat_class: str | None
    note: str | None
    decided_at: datetime
    model_version: str | None  # the verdict's model the officer decided on


class StoredLabel(TypedDict):
    label_id: str
    scan_id: str
    labels: list[str]
    source: LabelSource
    author: str
    created_at: datetime
    note: str | None


class Claim(TypedDict):
    officer: str
    expires_at: datetime


class ScanDetail(TypedDict):
    """A scan with everything known about it: the ScanRecord's fields (image statistics flat), its verdicts
    (champion first, each with heatmaps), decisions (oldest first), labels (newest first), the current label,
    the live claim, and where its image is now."""

    scan_id: str
    sha256: str
    scanner_id: str
    item_id: str | None
    source_path: str
    file_format: str
    width: int
    height: int
    bit_depth: int
    dual_energy: bool
    received_at: datetime
    scanned_at: datetime | None
    declared_contents: list[dict[str, Any]] | None
    mean_attenuation: float | None
    noise_level: float | None
    dynamic_range: float | None
    organic_fraction: float | None
    inorganic_fraction: float | None
    metal_fraction: float | None
    is_canary: bool
    canary_labels: list[str] | None
    verdicts: list[StoredVerdict]
    decisions: list[StoredDecision]
    labels: list[StoredLabel]
    current_labels: list[str] | None
    claim: Claim | None
    image: ImageLocation
