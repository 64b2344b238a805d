"""One typed settings object: defaults < xscreen.toml < XSCREEN_* environment < explicit overrides.

Built once at each edge (CLI, app start, Serve app builder) and passed down explicitly; nothing reads it
from a global. Unknown keys are an error. Every field has a description: docs/SETTINGS.md is generated
from them and a test fails when one is missing.
"""

from __future__ import annotations

import os
import socket
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from xscreen.errors import ConfigError

DEFAULT_CLASSES = ["firearm", "knife", "ammunition", "narcotics", "currency", "lithium_battery"]
ENV_PREFIX = "XSCREEN_"
ENV_NESTED = "__"


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class PathSettings(Section):
    """Where things live. Each path left empty is derived from `home`."""

    db: Path | None = Field(None, description="DuckDB file owned by the store owner (default: HOME/xscreen.duckdb).")
    models: Path | None = Field(None, description="Model weights and certificates (default: HOME/models).")
    spool: Path | None = Field(None, description="Durable spool of verdict batches awaiting the store owner (default: HOME/spool).")
    inbox: Path | None = Field(None, description="Scanner drop folders, one sub-folder per scanner id (default: HOME/inbox).")
    quarantine: Path | None = Field(None, description="Where unreadable or hostile files are moved (default: HOME/quarantine).")
    archive: Path | None = Field(None, description="Where processed scans are moved when serving.archive_processed is on (default: HOME/archive).")
    uploads: Path | None = Field(None, description="Where the bytes of scans uploaded through /v1 are kept, one folder per scanner and day, so officers see their images (default: HOME/uploads).")
    snapshots: Path | None = Field(None, description="Read-only database snapshots for analysts (default: HOME/snapshots).")
    logs: Path | None = Field(None, description="Log files of the services started by `xscreen serve`/`demo` (default: HOME/logs).")
    exports: Path | None = Field(None, description="Training-set exports from the Relabelling page are written only under this folder, one sub-folder per export (default: HOME/exports).")
    backups: Path | None = Field(None, description="Where the store owner writes backups before `xscreen backup DIR` moves them to DIR (default: HOME/backups).")
    library: Path | None = Field(None, description="The threat library's files: signatures cut from regions officers marked on confirmed threats, one per seizure under `seizures/<seizure id>.npz` (default: HOME/library).")
    sample_data: Path = Field(Path("sample_data"), description="Committed sample images used by the demo and tests.")


class NetworkSettings(Section):
    host: str = Field("127.0.0.1", description="Interface every server binds to. Keep loopback unless a proxy fronts it.")
    api_port: int = Field(8000, ge=1, le=65535, description="Ray Serve HTTP port (public /v1 API and metrics).")
    store_port: int = Field(8001, ge=1, le=65535, description="Store owner HTTP port (internal API used by the app, CLI and serving).")
    app_port: int = Field(8501, ge=1, le=65535, description="Streamlit dashboard port.")
    metrics_port: int = Field(8002, ge=1, le=65535, description="Prometheus metrics port of the watcher/ingest process.")


class ModelSettings(Section):
    classes: list[str] = Field(default_factory=lambda: list(DEFAULT_CLASSES), description="Threat classes the model screens for (order is the model's output order).")
    name: str = Field("champion", description="Model used for verdicts: a registered version name or `champion`.")
    input_size: int = Field(288, ge=32, le=2048, description="Side of the square letterboxed canvas the network sees (pixels).")
    width: int = Field(32, ge=4, le=512, description="Channel width of the first convolution stage; later stages double it.")
    embedding_dim: int = Field(64, ge=8, le=1024, description="Length of the per-image embedding stored with each verdict.")
    context_dilations: list[int] = Field(default_factory=lambda: [2, 4], description="Dilations of the residual context convolutions after the last stage (more context per heatmap cell); empty = none.")
    box_weight: float = Field(1.0, ge=0, description="Weight of the dense heatmap loss on training images whose threat boxes are known (synthetic sets, generator manifests); 0 = off.")
    default_epochs: int = Field(14, ge=1, le=500, description="Epochs used when the main job trains the default model.")
    default_train_images: int = Field(3000, ge=50, description="Synthetic training images rendered for the default model.")
    train_style: Literal["train", "reference"] = Field("train", description="Scanner-style family of synthetic training images (xray.styles): `train` draws every image's palette or grey display, tone curve, detector effects, field of view, pitch, size and JPEG at random, so no hue, scale or codec is a shortcut; `reference` is the four vendor palettes alone (what the bundled model's ancestor reference-288-v2 was trained on). The held-out families are never trained on.")
    seed: int = Field(1234, description="Seed for training, sampling and synthetic data made by the main job.")
    bundled: Path | None = Field(Path("sample_data/models/v3-soup-tone/model.pt"), description="A model trained with xscreen (from scratch on a GPU on the earlier renderer, fine-tuned and weight-averaged on a 2-core CPU, then fine-tuned on the 3D-solids renderer's training style family in nine steps and three more with random tone curves, seven of them averaged; lineage in the checkpoint, recipe and figures in docs/MODEL.md) and shipped in the repository. When there is no champion, the main job registers it if its network matches these model settings (classes, input size, width, embedding, context); otherwise, or when empty, it trains a default model on this machine. A relative path is taken from the repository root.")

    @field_validator("bundled", mode="before")
    @classmethod
    def _empty_means_none(cls, v: Any) -> Any:
        # XSCREEN_MODEL__BUNDLED= (empty) or "none": train here; pydantic would read "" as the path "."
        return None if isinstance(v, str) and v.strip().lower() in ("", "none") else v


class ScreeningSettings(Section):
    alpha: float = Field(0.05, gt=0, lt=1, description="Target miss rate on threat items for the certified operating point.")
    delta: float = Field(0.05, gt=0, lt=1, description="Allowed probability that the miss-rate guarantee fails (confidence 1-delta).")
    officer_capacity: float = Field(0.10, gt=0, le=1, description="Largest share of mail that may be routed to officers as `uncertain`.")
    audit_rate: float = Field(0.01, ge=0, le=1, description="Share of AI-cleared items sent to officers as random audits.")
    heatmap_size: int = Field(32, ge=4, le=256, description="Side of the stored per-class heatmap grid (cells).")


class AdaptSettings(Section):
    """`xscreen adapt`: fitting a model to one scanner from its own unlabelled images (screening/adapt.py)."""

    epochs: int = Field(2, ge=1, le=100, description="Most fine-tuning epochs of `xscreen adapt` (fewer when adapt.time_budget_s would be exceeded). More epochs lower false alarms on the new scanner further but teach the model what projections look like, and detection of the scanner's own threats and of the original styles falls (docs/BENCHMARKS.md: 6 epochs, benign routed 0.52 but threats 0.61 and in-domain class AP -0.03; 2 epochs, 0.675 / 0.815 / -0.004).")
    time_budget_s: float | None = Field(900.0, gt=0, description="Wall-clock budget of one `xscreen adapt` run (seconds); fine-tuning epochs are cut to fit. Empty = no limit.")
    drop_quantile: float = Field(0.05, ge=0, lt=0.5, description="Share of the scanner's images with the parent model's highest threat scores left out before adapting (likely threats in a stream assumed mostly benign).")
    holdout_fraction: float = Field(0.3, gt=0.05, lt=0.8, description="Share of the kept images held out of training to recalibrate and certify the adapted model (its benign certification images).")
    synthetic_images: int = Field(600, ge=0, description="Synthetic renders (model.train_style) mixed into fine-tuning so other scanners do not regress.")
    library_articles: int = Field(8, ge=1, le=200, description="Threat-library articles per class in each of the training and certification parts.")
    library_poses: int = Field(3, ge=1, le=50, description="Poses rendered per threat-library article.")
    library_split: Literal["train", "heldout", "all"] = Field("all", description="Renderer content split the library's threat variants come from (`all`: every family the renderer knows).")
    frozen_stages: int = Field(3, ge=0, le=8, description="Stages after the stem that `xscreen adapt` keeps frozen: their BatchNorm statistics are re-estimated on the scanner's images (AdaBN), their features computed once and cached, and only the later stages and the heads are fine-tuned (screening/adapt_tail.py). 0 = fine-tune everything after the stem.")
    views: int = Field(2, ge=1, le=8, description="Views of each training image whose frozen-stage features `xscreen adapt` caches: the image as it is plus views - 1 augmented ones (flips, gain, colour jitter, blur, noise); each fine-tuning step draws one.")
    decoy_share: float = Field(0.0, ge=0, le=1, description="Share of the scanner's benign training images into which `xscreen adapt` projects a rendered benign object (a decoy, lookalikes half the time) through the same estimated look as the threats, so that the artefacts of projection are no cue for a threat. Off by default: on the benchmark it lowered detection of projected articles but did not raise detection of the scanner's own threats (docs/BENCHMARKS.md).")
    batch_size: int = Field(32, ge=2, le=1024, description="Fine-tuning batch of `xscreen adapt` (the learning rate of `train --from` scaled by the square root of batch / 8): a step of the unfrozen stages on cached features costs little more at 32 images than at 8 on a CPU.")
    adabn: bool = Field(True, description="Re-estimate the frozen stages' BatchNorm statistics on the adaptation data (the scanner's images, their projections and the synthetic renders mixed in) before caching.")
    distill_weight: float = Field(1.0, ge=0, le=100, description="Weight of the loss that keeps the adapted model's outputs on the synthetic renders mixed in near the parent's (Learning without Forgetting: the parent's probabilities as soft targets), so that adapting to one scanner does not unlearn the styles the parent knows. 0 = off. On the benchmark's four scanner draws, 1 cut the mean in-domain regression of PD at FAR 5% from 6.5 points to 2.0 and of mean class AP from 3.0 to 2.25, and kept held-out PD at FAR 5% where adapting without it lost some on two draws (docs/BENCHMARKS.md).")
    min_images: int = Field(60, ge=20, description="Fewest images `xscreen adapt` accepts (more are needed when the certificate's alpha/delta ask for more held-out backgrounds; the error says how many).")
    recent_verdicts: int = Field(500, ge=20, description="`xscreen adapt --scanner ID`: how many of that scanner's most recent cleared verdicts (low score or officer-cleared) are used.")


class ServingSettings(Section):
    batch_max_size: int = Field(32, ge=1, le=1024, description="Largest dynamic batch the classifier deployment forms.")
    batch_wait_s: float = Field(0.005, ge=0, le=5, description="How long the classifier waits to fill a batch (seconds).")
    min_replicas: int = Field(1, ge=0, le=1000, description="Autoscaling lower bound of classifier replicas.")
    max_replicas: int = Field(1, ge=1, le=1000, description="Autoscaling upper bound of classifier replicas.")
    target_ongoing_requests: float = Field(8.0, gt=0, description="Autoscaling target: in-flight requests per replica.")
    replica_cpus: float = Field(1.0, gt=0, description="CPUs reserved per classifier replica.")
    num_gpus: float | None = Field(None, ge=0, description="GPUs per classifier replica; empty = 1 if CUDA is available, else 0.")
    ray_address: str | None = Field(None, description="Address of an existing Ray cluster; empty = start a local instance.")
    ray_num_cpus: int | None = Field(None, ge=1, description="CPUs given to the local Ray instance; empty = all.")
    orphan_exit_s: float = Field(60.0, ge=0, description="The children of `xscreen serve` (store owner, Ray head, serving worker, dashboard) keep running when the supervisor itself dies, so the one a service manager starts again adopts them and scoring never stops; they stop by themselves once the supervisor's heartbeat (HOME/run/heartbeat) has been silent this long (seconds; the Ray head 5 s and the store owner 10 s later). 0: they are stopped with the supervisor (PR_SET_PDEATHSIG) and every restart starts the whole stack cold.")
    shadow_slot: bool = Field(True, description="Deploy a shadow slot: the model the store marks `shadow` (xscreen models promote NAME --state shadow) scores the same traffic, its verdicts stored with role shadow and never shown or queued.")
    shadow_threat_items: int = Field(300, ge=1, description="The shadow stops (back to candidate, awaiting the gate and a promotion) once it has scored this many items whose truth is a threat: enough for its certificate (a conformal miss bound at alpha 0.05 needs 59 at the least).")
    auto_promote: bool = Field(False, description="When the shadow has scored serving.shadow_threat_items threat items and holds a passing gate report against the champion in force (`xscreen gate`), promote it to champion automatically (audited as automatic, naming the report); off: it goes back to candidate and a supervisor promotes it. Rollback stays one command either way.")
    model_poll_s: float = Field(2.0, gt=0, le=300, description="How often each classifier replica asks the store which models are in force (champion, shadow, thresholds) and follows a promotion, rollback or threshold change without a restart (seconds).")
    archive_processed: bool = Field(True, description="Move processed scans out of the inbox into the archive folder (HOME/archive/<scanner>/<day>/); the store records each image's location. Off: scans stay in the inbox.")
    size_stable_s: float = Field(0.5, ge=0, description="For writers that do not rename: a file is done once its size is unchanged this long (seconds).")
    move_pairing_s: float = Field(0.02, ge=0.001, le=0.5, description="How long the scanner-folder watcher holds the first half of a rename to pair it with the second (watchdog's default 0.5 s stalls every later event whenever the halves are read apart; both come from one rename call).")
    source_batch_max: int = Field(32, ge=1, description="Files that arrive together are sent to the model in one call, up to this many.")
    max_upload_bytes: int = Field(64 * 1024 * 1024, ge=1024, description="Largest accepted image file or upload (bytes).")
    max_image_pixels: int = Field(40_000_000, ge=1024, description="Largest accepted image (width x height); bigger is a decompression bomb.")
    max_decoded_bytes: int = Field(512 * 2**20, ge=2**20, description="Largest decoded image in memory (bytes: pixels x channels x bytes per sample, read from the header before decoding). A float64 4-channel TIFF under the pixel limit would otherwise take over a gigabyte.")
    max_json_bytes: int = Field(64 * 1024, ge=1024, le=16 * 2**20, description="Largest JSON body the /v1 API reads (bytes); bigger is refused with 413.")
    truncated_wait_s: float = Field(10.0, ge=0, description="A file that reads as truncated but was modified less than this long ago is waited for (a scanner writing in place and pausing), not quarantined (seconds).")
    quarantine_max_files: int = Field(1000, ge=1, description="Most refused uploads kept on disk under quarantine/_uploads for forensics; the oldest are deleted beyond it (their records stay).")
    quarantine_max_bytes: int = Field(256 * 2**20, ge=2**20, description="Most bytes of refused uploads kept under quarantine/_uploads; the oldest are deleted beyond it.")
    retry_base_s: float = Field(0.5, gt=0, le=60, description="First backoff before a file whose batch failed (scoring, store or spool error) is handed on again (seconds); doubles on each failure.")
    retry_max_s: float = Field(10.0, gt=0, le=600, description="Longest backoff between retries of a failed file (seconds). Files are never dropped.")
    ignored_after_s: float = Field(60.0, gt=0, description="A hidden or temporary file name (`.x.png`, `x.tmp`) left unchanged this long in a scanner folder is quarantined with reason `ignored_name`, so it is on record (seconds).")
    stall_alert_s: float = Field(60.0, gt=0, description="/healthz says degraded when the oldest file not yet scored has waited longer than this (seconds).")
    score_timeout_s: float = Field(60.0, gt=0, description="Longest one scoring call to the classifier may take before it counts as failed and its files are retried (seconds).")
    archive_retention_days: float = Field(30.0, ge=0, description="Archived scans and kept uploads older than this are deleted, whole day folders at a time, after the store is told their images expired; 0 keeps them forever.")
    uploads_max_bytes: int = Field(2 * 2**30, ge=2**20, description="Most bytes of kept uploads (paths.uploads); beyond it the oldest day folders are deleted first (the store is told their images expired).")
    scanner_ids: list[str] = Field(default_factory=list, description="Known scanner ids; empty = any folder name under the inbox is accepted.")
    api_auth: bool = Field(True, description="The /v1 API requires bearer tokens: scanner tokens (`xscreen scanners add ID`) to post scans, user sessions (`POST /v1/login`) to read the queue and post decisions. Turning it off (a warning is logged at start) lets anyone who can reach the port act as an admin.")


class StoreSettings(Section):
    write_batch_max: int = Field(5000, ge=1, description="Most records committed in one group-commit transaction.")
    write_batch_wait_ms: float = Field(5.0, ge=0, description="How long the writer waits to gather a group commit (milliseconds).")
    checkpoint_wal_mb: float = Field(4.0, gt=0, le=4096, description="DuckDB checkpoints once its write-ahead log passes this size (MiB); writers wait for each checkpoint, so smaller means shorter, more frequent waits.")
    snapshot_max_age_s: float = Field(30.0, ge=0, description="Analyst SQL reuses a snapshot younger than this (seconds).")
    sql_row_limit: int = Field(10_000, ge=1, description="Most rows analyst SQL returns to the CLI or app.")
    sql_timeout_s: float = Field(30.0, gt=0, description="Analyst SQL is stopped after this long (seconds).")
    claim_ttl_s: float = Field(600.0, gt=0, description="How long an officer's claim on a queue item lasts without a decision (seconds).")
    max_request_mb: float = Field(64.0, gt=0, le=4096, description="Largest request body the store owner accepts (MiB); bigger is refused with 413 before it is read.")


class AppSettings(Section):
    session_ttl_minutes: float = Field(480.0, gt=0, description="Signed-in sessions expire after this long without activity (minutes).")
    refresh_s: float = Field(2.0, gt=0, description="How often the live triage queue refreshes (seconds).")
    queue_page_size: int = Field(50, ge=1, le=1000, description="Items shown in the triage queue.")
    relabel_budget: int = Field(50, ge=1, le=10000, description="Items the Relabelling page's active queue offers a day: disagreements, label-error suspects, uncertain items, and a random slice.")
    relabel_random_share: float = Field(0.1, ge=0, le=1, description="Share of the relabel budget drawn at random from scored, unlabelled scans, so that accuracy estimated from relabels stays unbiased.")


class LabellingSettings(Section):
    """Who reads which relabel items, and how the active queue samples them (docs/APP.md, Relabelling)."""

    double_read_min_score: float | None = Field(None, ge=0, le=1, description="Relabel items whose champion any-threat score is at least this are high risk: they need two blind readings by two different people (the second reader never sees the first's label), and when the readings differ a supervisor adjudicates. Empty: no score rule. Off by default, like `double_read_classes`: turning either on makes such items cost two readings of the relabel budget.")
    double_read_classes: list[str] = Field(default_factory=list, description="Relabel items whose champion top class is one of these (e.g. `firearm` and `ammunition`) are high risk and need two blind readings, as with `double_read_min_score`. Names must be model classes.")
    borderline_share: float = Field(0.3, ge=0, le=1, description="Share of the relabel budget reserved for AI-cleared scans nobody looked at, nearest their clear threshold first: where the model's misses are likeliest (flagged items are labelled by the officer's decision already). Places it cannot fill go to the other sources.")
    drift_share: float = Field(0.2, ge=0, le=1, description="Share of the relabel budget reserved for recent unlabelled scans from drifted regions of embedding space, new clusters first (analytics.diversity); places it cannot fill go to the other sources.")
    drift_recent_days: float = Field(1.0, gt=0, description="The recent window the diversity policy samples from (days before now).")
    drift_reference_days: float = Field(7.0, gt=0, description="The reference window the recent one is compared with: this many days before the recent window.")
    drift_max_scans: int = Field(2000, ge=50, le=100_000, description="Scans drawn from each window (a fixed pseudo-random sample) for the diversity policy: bounds its cost.")


class AuthSettings(Section):
    max_failed_logins: int = Field(5, ge=1, description="Failed sign-ins for one username within auth.login_window_s before that username is locked out for auth.lockout_s.")
    max_failed_logins_per_source: int = Field(20, ge=1, description="Failed sign-ins from one source (a /v1 client address) within auth.login_window_s before that source is locked out.")
    login_window_s: float = Field(900.0, gt=0, description="Window over which failed sign-ins are counted (seconds).")
    lockout_s: float = Field(120.0, gt=0, description="How long a locked-out username or source must wait before trying again (seconds).")
    require_sessions: bool = Field(True, description="A caller of the store owner without a signed-in person's session may act only under a process name (`cli:<user>`, `system`, `serving`, `setup`, `demo`, `monitoring`, or any `<kind>:<name>`), never under a person's name: people act through their sessions (the app and /v1 forward them). Off only for a harness that must name people without signing them in.")


class SimulatorSettings(Section):
    rate: float = Field(2.0, gt=0, description="Scans per second the demo's scanner simulator drops.")
    scanners: int = Field(2, ge=1, le=64, description="Number of simulated scanners in the demo.")
    scenario: str = Field("baseline", description="Drift scenario the demo's simulator plays (see docs/DATA.md).")
    threat_rate: float = Field(0.15, ge=0, le=1, description="Share of simulated parcels that contain a threat.")
    formats: list[str] = Field(default_factory=lambda: ["png", "npz"], description="Image format of each simulated scanner, cyclic (scanner k writes entry k-1): `png`/`jpeg` pseudo-colour, `npz`/`tiff` raw dual-energy high/low (so the organic/inorganic/metal views and statistics appear).")
    scanner_scenarios: dict[str, str] = Field(default_factory=lambda: {"scanner-1": "scanner_ageing"}, description="Scanner id -> drift scenario that simulated scanner plays instead of `scenario`, ramping in over the first 10 minutes (the demo's drifting scanner; `scanner_ageing` acts on scanner-1 only, see docs/DATA.md); ids beyond `scanners` are an error.")


class MonitoringSettings(Section):
    """Thresholds and rates of the monitoring statistics (analytics/monitoring, docs/MONITORING.md)."""

    psi_alert: float = Field(0.2, gt=0, description="Population stability index above which a drift alert is raised.")
    reference_days: float = Field(7.0, gt=0, description="Length of the reference window for drift statistics (days).")
    page_arl: float = Field(100_000.0, gt=1, description="Each paging detector (certificate watch per scanner, accuracy page per stream) alarms falsely at most once per this many in-distribution outcomes on average (items for the certificate watch, known threats for the accuracy page); its threshold is ln(page_arl). With k detectors fed by the same items, false pages come at most k / page_arl per item.")
    certificate_margin: float = Field(0.03, gt=0, lt=1, description="Share of benign mail routed to officers tolerated above the certificate's expected share before the certificate watch may alarm (absorbs undecided flagged threats and held-out variation).")
    accuracy_margin: float = Field(0.03, gt=0, lt=1, description="Miss rate tolerated above the certified miss rate (alpha) before the accuracy page may alarm.")
    stat_effect_alert: float = Field(0.5, gt=0, description="Standardised mean difference |d| of an image statistic (current window against the scanner's reference) from which it counts as moved: the least change that matters; its KS test must also pass at the level drift_arl_items sets.")
    stat_fdr: float = Field(0.01, gt=0, lt=1, description="Benjamini-Hochberg false-discovery rate for the KS tests of per-class score distributions (output drift: a drifted class must also be a discovery). Input drift checks take their level from drift_arl_items.")
    fleet_share: float = Field(0.5, gt=0, le=1, description="Input drift on at least two scanners and at least this share of them is content drift (the mail changed), not scanner drift.")
    scanner_dominance: float = Field(2.0, ge=1, description="A scanner alone in drifting is judged scanner drift when its largest detector-statistic effect (noise, attenuation, dynamic range) is at least this many times its largest content effect.")
    drift_window: int = Field(500, ge=20, description="Scans per scanner in each windowed drift check (image statistics, embeddings).")
    drift_arl_items: float = Field(50_000.0, gt=1, description="Scans between false flags of input drift on in-distribution data, per scanner and signal (the stated run length). Each windowed check (image statistics: KS with Benjamini-Hochberg; embeddings: MMD permutation test and domain classifier, Bonferroni between the two) runs at level drift_window / drift_arl_items, which its distribution-free p-value holds on any scanner's own data; the reconstruction-outlier watch is a sequential detector with this average run length. stat_effect_alert, mmd_alert and domain_auc_alert are the least effect that counts on top.")
    page_on_drift: bool = Field(False, description="Also page (not only record and show) when input or output drift is flagged; drift explains, accuracy and certificate alarms page.")
    mmd_components: int = Field(10, ge=1, description="Principal components the embeddings are reduced to before the MMD test.")
    mmd_max_samples: int = Field(300, ge=10, description="Scans per window the MMD test subsamples to (its cost grows with the square).")
    mmd_permutations: int = Field(400, ge=0, description="Label permutations of the MMD test's p-value (its least p-value is 1 / (permutations + 1): it must be under the MMD test's level, drift_window / drift_arl_items, halved when the domain classifier runs).")
    mmd_alert: float = Field(0.01, ge=0, description="MMD^2 (median-heuristic RBF kernel on PCA-reduced embeddings) from which embeddings count as moved, given a permutation p-value under the level drift_arl_items sets (in-distribution 99th percentile 0.007 at 300 a side on the bundled model; measure a new model with bench.embedding_drift).")
    domain_auc_alert: float = Field(0.60, gt=0.5, le=1, description="Cross-validated AUC of a classifier telling current from reference embeddings from which they count as moved, given its Mann-Whitney p-value under the level drift_arl_items sets (run when both windows hold 200 scans; in-distribution 99th percentile 0.58 at 300 a side on the bundled model, bench.embedding_drift).")
    reconstruction_quantile: float = Field(0.99, ge=0.5, lt=1, description="Quantile of the reference's held-out PCA reconstruction errors a scan must exceed to count as an outlier (null outlier rate 1 - quantile).")
    reconstruction_margin: float = Field(0.01, gt=0, lt=1, description="Outlier share tolerated above 1 - reconstruction_quantile before the reconstruction detector alarms.")
    cbpe_bootstrap: int = Field(200, ge=0, description="Bootstrap draws of the label-free (CBPE) accuracy interval.")
    audit_floor: float = Field(0.002, gt=0, le=1, description="Smallest audit inclusion probability of any stratum of AI-cleared mail (> 0 keeps the Horvitz-Thompson estimate unbiased).")
    audit_rates: dict[str, float] = Field(default_factory=dict, description="Audit inclusion probability per stratum of AI-cleared mail, overriding screening.audit_rate: a key is `scanner|band` (e.g. `scanner-1|0-0.01`), a scanner id alone or a score band alone; the most specific key wins, and every rate is raised to audit_floor. The probability used is stored with each audited item.")
    audit_score_bands: list[float] = Field(default_factory=lambda: [0.01], description="Increasing any-threat scores in (0, 1) that cut AI-cleared mail into audit strata (bands named `0-0.01`, `0.01-1`, ...).")
    canary_rate: float = Field(0.02, ge=0, le=1, description="Share of live benign scans that get a library threat projected in and are scored as hidden known-answer canaries.")
    canary_seizure_share: float = Field(0.5, ge=0, le=1, description="Share of canaries that project a signature cut from a real seizure (the library's canary part, usable for the scanner: raw dual-energy ones into any scanner, colour/grey ones only into their own) instead of a rendered threat, where the scanner has any; recorded with article `seizure:<id>`. 0 = rendered threats only.")
    canary_seizure_refresh_min: float = Field(10.0, gt=0, description="Minutes between re-reads of the seizure records (and loads of new signatures) by the canary thread; a missing or unreadable signature is skipped and tried again at the next re-read.")
    officer_tip_share: float = Field(0.0, ge=0, le=1, description="Share of canaries also shown to officers as TIP tests: queued and opened exactly like flagged mail (image under `<home>/tips`), revealed to the officer after the decision, recorded as a TIP outcome (never a decision or a label); 0 = canaries stay hidden.")
    interval_s: float = Field(300.0, ge=0, description="Seconds between runs of the monitoring job under `xscreen serve` / `demo` (0 = off; `xscreen monitor` runs it once).")
    webhook_url: str | None = Field(None, description="URL each newly raised alert is POSTed to as JSON (failures are logged, never retried or blocking); none = store and app only.")
    noninferiority_margin: float = Field(0.02, gt=0, lt=1, description="Promotion gate: largest drop in per-class detection (candidate minus champion, paired) a candidate may show, judged on the lower bound of Newcombe's interval.")
    retrain_on: list[Literal["accuracy", "certificate", "content_drift", "score_drift", "scanner_drift"]] = Field(default_factory=list, description="Alert kinds whose newly raised alert makes `xscreen monitor` run `xscreen retrain` at once (and the scheduled monitoring of `serve`/`demo` ask the supervisor's retrain runner for one) (base folders `retrain_base` plus the live labels; a candidate only, which the gate and a person promote); empty = off, retraining by hand.")
    retrain_base: list[Path] = Field(default_factory=list, description="Labelled training folders (`labels.csv` + images) an alert-triggered retrain trains on besides the store's live labels.")

    @property
    def drift_alpha(self) -> float:
        """Level of each windowed input-drift check: a check on `drift_window` new in-distribution scans alarms
        with probability at most this, so false flags come once per drift_arl_items scans or less often."""
        return self.drift_window / self.drift_arl_items

    @model_validator(mode="after")
    def _run_length_exceeds_window(self) -> MonitoringSettings:
        if self.drift_arl_items <= self.drift_window:
            raise ValueError(f"drift_arl_items ({self.drift_arl_items:g}) must exceed drift_window "
                             f"({self.drift_window}): a run length shorter than one window alarms on every check")
        return self

    @field_validator("audit_score_bands")
    @classmethod
    def _bands_increase(cls, v: list[float]) -> list[float]:
        if any(not 0 < e < 1 for e in v) or any(b <= a for a, b in zip(v, v[1:], strict=False)):
            raise ValueError(f"audit score bands must be increasing scores strictly between 0 and 1, got {v}")
        return v

    @field_validator("audit_rates")
    @classmethod
    def _rates_are_probabilities(cls, v: dict[str, float]) -> dict[str, float]:
        bad = {k: r for k, r in v.items() if not 0 <= r <= 1}
        if bad:
            raise ValueError(f"audit rates must be probabilities in [0, 1], got {bad}")
        return v


class Settings(BaseSettings):
    """Every path, port, threshold and model choice of one xscreen instance."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter=ENV_NESTED, extra="forbid", validate_assignment=True
    )

    home: Path = Field(Path("var"), description="Folder holding everything this instance writes (XSCREEN_HOME).")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Logging level of xscreen's own loggers.")
    paths: PathSettings = Field(default_factory=PathSettings, description="File locations.")
    network: NetworkSettings = Field(default_factory=NetworkSettings, description="Bind address and ports.")
    model: ModelSettings = Field(default_factory=ModelSettings, description="Network, classes and the model in force.")
    screening: ScreeningSettings = Field(default_factory=ScreeningSettings, description="Operating-point guarantees and audits.")
    adapt: AdaptSettings = Field(default_factory=AdaptSettings, description="Adapting a model to one scanner (`xscreen adapt`).")
    serving: ServingSettings = Field(default_factory=ServingSettings, description="Ray Serve batching, scaling and ingest.")
    store: StoreSettings = Field(default_factory=StoreSettings, description="DuckDB store owner.")
    app: AppSettings = Field(default_factory=AppSettings, description="Streamlit dashboard.")
    labelling: LabellingSettings = Field(default_factory=LabellingSettings, description="Blind double reading and the relabel queue's diversity sampling.")
    auth: AuthSettings = Field(default_factory=AuthSettings, description="Sign-in limits and who may act under which name.")
    simulator: SimulatorSettings = Field(default_factory=SimulatorSettings, description="Demo scanner stream.")
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings, description="Drift and accuracy monitoring.")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Only what the constructor is given: load_settings reads the file and the environment it is handed and
        # passes the merged values, so building settings never depends on (or touches) this process's state.
        return (init_settings,)

    @model_validator(mode="after")
    def _derive_paths(self) -> Settings:
        home = self.home
        p = self.paths
        defaults = {
            "db": home / "xscreen.duckdb",
            "models": home / "models",
            "spool": home / "spool",
            "inbox": home / "inbox",
            "quarantine": home / "quarantine",
            "archive": home / "archive",
            "uploads": home / "uploads",
            "snapshots": home / "snapshots",
            "logs": home / "logs",
            "exports": home / "exports",
            "backups": home / "backups",
            "library": home / "library",
        }
        for name, default in defaults.items():
            if getattr(p, name) is None:
                object.__setattr__(p, name, default)
        if len(set(self.model.classes)) != len(self.model.classes):
            raise ValueError("model.classes has duplicates")
        unknown = sorted(set(self.labelling.double_read_classes) - set(self.model.classes))
        if unknown:
            raise ValueError(f"labelling.double_read_classes names classes the model does not screen for: {unknown}")
        return self

    # Typed accessors: derived paths are always set after validation.
    @property
    def db_path(self) -> Path:
        assert self.paths.db is not None
        return self.paths.db

    @property
    def models_dir(self) -> Path:
        assert self.paths.models is not None
        return self.paths.models

    @property
    def spool_dir(self) -> Path:
        assert self.paths.spool is not None
        return self.paths.spool

    @property
    def inbox_dir(self) -> Path:
        assert self.paths.inbox is not None
        return self.paths.inbox

    @property
    def quarantine_dir(self) -> Path:
        assert self.paths.quarantine is not None
        return self.paths.quarantine

    @property
    def archive_dir(self) -> Path:
        assert self.paths.archive is not None
        return self.paths.archive

    @property
    def uploads_dir(self) -> Path:
        assert self.paths.uploads is not None
        return self.paths.uploads

    @property
    def snapshots_dir(self) -> Path:
        assert self.paths.snapshots is not None
        return self.paths.snapshots

    @property
    def backups_dir(self) -> Path:
        assert self.paths.backups is not None
        return self.paths.backups

    @property
    def logs_dir(self) -> Path:
        assert self.paths.logs is not None
        return self.paths.logs

    @property
    def exports_dir(self) -> Path:
        assert self.paths.exports is not None
        return self.paths.exports

    @property
    def library_dir(self) -> Path:
        assert self.paths.library is not None
        return self.paths.library

    @property
    def store_url(self) -> str:
        return f"http://{self.network.host}:{self.network.store_port}"

    @property
    def api_url(self) -> str:
        return f"http://{self.network.host}:{self.network.api_port}"

    @property
    def app_url(self) -> str:
        return f"http://{self.network.host}:{self.network.app_port}"


# XSCREEN_* variables that are not settings: the config file's path, and the loopback address serving exports to
# its Ray workers (serving/ray_loopback.py BIND_ENV), which stays set in a process that started Ray.
NOT_SETTINGS = frozenset({"XSCREEN_CONFIG", "XSCREEN_RAY_BIND_HOST"})


def _unknown_env_keys(environ: Mapping[str, str]) -> list[str]:
    """XSCREEN_* variables that name no setting (pydantic-settings would silently ignore them)."""
    unknown = []
    for key in environ:
        if not key.startswith(ENV_PREFIX) or key in NOT_SETTINGS:
            continue
        parts = key[len(ENV_PREFIX):].lower().split(ENV_NESTED)
        model: Any = Settings
        for part in parts:
            fields = getattr(model, "model_fields", None)
            if fields is None or part not in fields:
                unknown.append(key)
                break
            model = fields[part].annotation
    return unknown


def _format_validation_error(err: ValidationError, source: str) -> str:
    first = err.errors()[0]
    loc = ".".join(str(x) for x in first["loc"]) or "settings"
    kind = first["type"]
    if kind == "extra_forbidden":
        return f"unknown setting '{loc}' ({source})"
    return f"setting '{loc}': {first['msg']} (got {first.get('input')!r}; {source})"


class _Environ(EnvSettingsSource):
    """XSCREEN_* values from a given mapping instead of os.environ (same parsing: nesting with __, JSON for
    lists and sections)."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {k if self.case_sensitive else k.lower(): v for k, v in self._environ.items()}


def _merged(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """Later layers win; sections (nested mappings) are merged key by key, not replaced."""
    out: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
                out[key] = _merged(out[key], value)
            else:
                out[key] = value
    return out


def _config_file(config_file: Path | None, env: Mapping[str, str]) -> Path | None:
    """`config_file`, else $XSCREEN_CONFIG, else ./xscreen.toml if present; ConfigError for a bad file."""
    path = config_file or (Path(env["XSCREEN_CONFIG"]) if env.get("XSCREEN_CONFIG") else None)
    if path is None and Path("xscreen.toml").exists():
        path = Path("xscreen.toml")
    if path is None:
        return None
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    return path


def load_settings(config_file: Path | None = None, environ: Mapping[str, str] | None = None,
                  **overrides: Any) -> Settings:
    """Build the settings: defaults < TOML file < XSCREEN_* variables < `overrides`.

    The TOML file is `config_file`, else $XSCREEN_CONFIG, else ./xscreen.toml if present. `environ`: the
    variables to read (default: this process's environment, read, never changed). Raises ConfigError with one
    line naming the offending setting."""
    env = dict(os.environ if environ is None else environ)
    path = _config_file(config_file, env)
    unknown = _unknown_env_keys(env)
    if unknown:
        raise ConfigError(f"unknown setting in environment variable {unknown[0]}")
    source = f"from {path}" if path else "from environment/defaults"
    try:
        toml = TomlConfigSettingsSource(Settings, toml_file=path)() if path else {}
        return Settings(**_merged(toml, _Environ(Settings, env)(), overrides))
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, source)) from None
    except ValueError as exc:  # a value pydantic-settings could not decode (bad JSON in a list variable)
        raise ConfigError(f"{exc} ({source})") from None


def probe_writable(folder: Path) -> None:
    """Create `folder` and prove a file can be written in it; raises OSError otherwise."""
    folder.mkdir(parents=True, exist_ok=True)
    probe = folder / ".xscreen-write-probe"
    probe.write_bytes(b"")
    probe.unlink()


def ensure_home(settings: Settings) -> None:
    """Create the folders this instance writes to; ConfigError naming the setting if one is unwritable."""
    for name in ("models", "spool", "inbox", "quarantine", "archive", "uploads", "snapshots", "logs", "backups"):
        folder = getattr(settings.paths, name)
        try:
            probe_writable(folder)
        except OSError as exc:
            raise ConfigError(f"setting 'paths.{name}': folder {folder} is not writable ({exc.strerror})") from None
    try:
        settings.db_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"setting 'paths.db': folder {settings.db_path.parent} is not writable ({exc.strerror})") from None


def check_port_free(settings: Settings, which: Literal["api_port", "store_port", "app_port", "metrics_port"]) -> None:
    """ConfigError naming the setting when its port is already taken on the bind address."""
    port = getattr(settings.network, which)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Like the servers themselves (uvicorn, Ray, Streamlit): a port held only by TIME_WAIT connections of a
        # previous run is free; one with a listener is not.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((settings.network.host, port))
        except OSError:
            raise ConfigError(
                f"setting 'network.{which}': port {port} on {settings.network.host} is already in use"
            ) from None


def iter_setting_docs(model: type[BaseModel] = Settings, prefix: str = "") -> list[tuple[str, str, str]]:
    """(dotted name, default, description) of every leaf setting, for docs/SETTINGS.md and its test."""
    rows: list[tuple[str, str, str]] = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        dotted = f"{prefix}{name}"
        if isinstance(ann, type) and issubclass(ann, Section):
            rows.extend(iter_setting_docs(ann, dotted + "."))
            continue
        default = field.default_factory() if field.default_factory is not None else field.default  # type: ignore[call-arg]
        rows.append((dotted, repr(default), field.description or ""))
    return rows
