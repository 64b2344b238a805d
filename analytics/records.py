"""The records every component exchanges with the store: one glossary, used in tables, APIs and pages.

scan (one image of one item) · prediction (in memory) · verdict (stored, with model version) ·
decision (an officer's action on a verdict) · label (ground truth for training) · canary (a known-answer
injected scan). Times are timezone-aware UTC; probabilities are in [0, 1].
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

VerdictValue = Literal["inspect", "clear", "uncertain"]
VerdictRole = Literal["champion", "shadow"]
DecisionValue = Literal["cleared", "confirmed", "seized", "refer"]
LabelSource = Literal["officer", "relabel", "adjudication", "synthetic", "audit", "import"]
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
    heatmaps: dict[str, str] = Field(default_factory=dict)  # class -> base64 uint8 grid (heatmap_size^2), top classes only
    heatmap_size: int = 0
    peak_boxes: dict[str, list[float]] = Field(default_factory=dict)  # class -> [x0, y0, x1, y1] in image fractions
    scored_at: datetime
    latency_ms: float | None = None  # received_at -> scored_at


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
    """One row of the audit log; `seq` is its place in the hash chain (analytics/audit_chain.py)."""

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
