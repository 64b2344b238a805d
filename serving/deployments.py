"""Ray Serve edges: the classifier deployment (dynamic batching, CPU/GPU, autoscaling, following the store's
champion live), the shadow slot, the ingress.

The only module that imports Ray. The model is screening's plain Classifier, the routes are serving/api.py's
plain FastAPI app; this module decorates, batches and wires them. `build_app(settings)` is the typed builder
`xscreen serve` uses; `app_builder(args)` is the `import_path` target of serving/deploy.yaml.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import ray
from ray import serve
from ray.serve.handle import DeploymentHandle
from ray.serve.schema import ApplicationStatus

from serving.api import ApiBackend, create_api
from serving.monitor_status import monitoring_health
from serving.parts import make_ingest, store_client, watcher_health, watcher_metrics
from serving.ray_loopback import BIND_ENV, HOOK
from xscreen.errors import ConfigError
from xscreen.health import merge
from xscreen.settings import Settings, load_settings

log = logging.getLogger(__name__)
APP_NAME = "xscreen"
CLASSIFIER = "classifier"
SHADOW = "shadow-classifier"
INGRESS = "ingress"
QUIET_LOGS = {"log_level": "WARNING", "enable_access_log": False}
# Serve checks each replica every 10 s by default; a replica killed by the OOM killer or `kill -9` was then
# replaced only after that. Every 2 s (10 s to answer: the model runs off the replica's event loop).
HEALTH_CHECK = {"health_check_period_s": 2.0, "health_check_timeout_s": 10.0}


@dataclass(frozen=True)
class ModelRef:
    """A verified checkpoint file a replica starts with (resolved from the registry in the driver, so a missing
    champion is an error before Ray starts); replicas then follow the store."""

    path: str
    sha256: str | None
    version: str


def replica_gpus(settings: Settings) -> float:
    """GPUs per classifier replica: the setting, else 1 when CUDA is present. Asking for a missing GPU hangs Serve."""
    if settings.serving.num_gpus is not None:
        return float(settings.serving.num_gpus)
    import torch

    return 1.0 if torch.cuda.is_available() else 0.0


def _count_images(requests: list[Any]) -> int:
    """serve.batch size of a batch of requests, each a pre-batched list of images: the number of images."""
    return sum(len(r) for r in requests)


def _flatten(requests: list[list[Any]]) -> list[Any]:
    return [image for request in requests for image in request]


def _split(results: list[Any], requests: list[list[Any]]) -> list[list[Any]]:
    out, i = [], 0
    for request in requests:
        out.append(results[i : i + len(request)])
        i += len(request)
    return out


@serve.deployment(logging_config=QUIET_LOGS)
class ClassifierDeployment:
    """One replica of the champion (or shadow) slot. It follows the store's model in force for its role
    (serving/follow.py): a promotion, a rollback or new thresholds take effect within `serving.model_poll_s`
    seconds, with the new model loaded beside the old one before the swap. Callers send lists of PreparedScans
    (canvases letterboxed where the file was decoded: the replica only stacks them) or of plain RGB arrays;
    batches form across callers."""

    def __init__(self, role: str, model: ModelRef | None, settings_json: str) -> None:
        from serving.follow import Live, ModelFollower
        from serving.parts import store_client

        settings = Settings.model_validate_json(settings_json)
        s = settings.serving
        self._classes = settings.model.classes
        self._heatmap_size = settings.screening.heatmap_size
        self._batch_max = s.batch_max_size
        self.score.set_max_batch_size(s.batch_max_size)  # type: ignore[attr-defined]  # added by @serve.batch
        self.score.set_batch_wait_timeout_s(s.batch_wait_s)  # type: ignore[attr-defined]
        initial = None if model is None else Live(role, model.version, 0, self._load(model.path, model.sha256))  # type: ignore[arg-type]
        self._store = store_client(settings)
        self._follower = ModelFollower(role, self._store.models_in_force, self._load_in_force, initial)  # type: ignore[arg-type]
        if role == "shadow" or settings.model.name == "champion":  # a pinned version (model.name) is not followed
            self._follower.start(s.model_poll_s)
        self._scored = 0
        self._replica = serve.get_replica_context().replica_id.unique_id

    def _load(self, path: str, sha256: str | None) -> Any:
        import torch

        from screening.classifier import Classifier

        # Decided in the replica: Ray exposes only the GPUs it assigned (none when num_gpus is 0), and a
        # cluster config may give replicas GPUs that the driver building the app does not have.
        device = "cuda" if torch.cuda.is_available() else "cpu"
        return Classifier.from_checkpoint(
            Path(path), device, expected_classes=self._classes, expected_sha256=sha256,
            heatmap_size=self._heatmap_size, batch_size=self._batch_max,
        )

    def _load_in_force(self, model: Any) -> Any:
        return self._load(model.weights_path, model.weights_sha256)

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.005, batch_size_fn=_count_images)
    async def score(self, requests: list[list[Any]]) -> list[list[dict[str, Any]]]:
        """VerdictRecord fields (with `role`) for each image of each request, in order; empty lists when this
        slot has no model in force (no shadow)."""
        from serving.follow import score_routed

        live, scoped = self._follower.live, self._follower.scoped  # read once: each item's model for the batch
        if live is None:
            return [[] for _ in requests]
        images = _flatten(requests)
        # Off the event loop, so the next batch keeps forming while this one runs. One model call per model in
        # the batch: items of a scanner with its own champion go to it, the rest to the fleet champion.
        fields = await asyncio.to_thread(score_routed, images, live, scoped, self._predict)
        self._scored += len(images)
        return _split(fields, requests)

    @staticmethod
    def _predict(model: Any, images: Sequence[Any]) -> list[dict[str, Any]]:
        from screening.classifier import verdict_fields

        return [verdict_fields(p) for p in model.predict(images)]

    def refresh(self) -> bool:
        """Follow the store now instead of at the next poll (tests, and a CLI that wants it at once)."""
        return self._follower.refresh()

    def info(self) -> dict[str, Any]:
        """Which replica answered, its model (None: no model in force for this slot), role, thresholds version,
        the scanners' own champions it serves (`scanner_models`) and why any is not served (`scanner_errors`: that
        scanner is scored by the fleet champion), and how many images it has scored (for tests and health)."""
        live = self._follower.live
        model = live.model if live else None
        return {"replica": self._replica, "role": self._follower.role, "model_version": live.version if live else None,
                "thresholds_version": live.thresholds_version if live else None, "scored": self._scored,
                "swaps": self._follower.swaps, "follow_error": self._follower.last_error,
                "scanner_models": {k: v.version for k, v in self._follower.scoped.items()},
                "scanner_errors": dict(self._follower.scoped_errors),
                "device": str(model.device) if model else None, "input_size": model.input_size if model else None}


@serve.deployment(logging_config=QUIET_LOGS, ray_actor_options={"num_cpus": 0})
@serve.ingress()
class IngressDeployment:
    """The /v1 HTTP API under Serve; scores uploads through the classifier handle, batched with the stream."""

    def __init__(self, classifier: DeploymentHandle, shadow: DeploymentHandle | None, settings_json: str) -> None:
        settings = Settings.model_validate_json(settings_json)
        self._classifier = classifier
        self._store = store_client(settings)
        timeout = settings.serving.score_timeout_s
        self._ingest, self._metrics = make_ingest(settings, handle_scorer(classifier, timeout),
                                                  handle_scorer(shadow, timeout) if shadow else None, self._store)
        self._settings = settings

    def __serve_build_asgi_app__(self) -> Any:
        self._metrics.track_queue_depth(lambda: len(self._store.queue("serving", 1000)))
        backend = ApiBackend(
            ingest=self._ingest, store=self._store, metrics=self._metrics,
            max_upload_bytes=self._settings.serving.max_upload_bytes, health=self._health,
            max_json_bytes=self._settings.serving.max_json_bytes, api_auth=self._settings.serving.api_auth,
            extra_metrics=lambda: watcher_metrics(self._settings),
        )
        return create_api(backend)

    def _health(self) -> dict[str, Any]:
        """ok, or degraded with every reason: the watcher's report, this ingress's uploads, the owner, the model."""
        parts: list[Any] = [self._ingest.health.report(), watcher_health(self._settings),
                            monitoring_health(self._settings.home)]
        try:
            self._store.health()
        except Exception as exc:  # noqa: BLE001 -- any failure to answer is the reason shown
            parts.append({"status": "degraded", "reasons": [f"store owner unreachable: {type(exc).__name__}: {exc}"]})
        extra: dict[str, Any] = {}
        try:
            info = self._classifier.info.remote().result(timeout_s=5)
            extra = {"model_version": info["model_version"], "device": info["device"]}
        except Exception as exc:  # noqa: BLE001
            parts.append({"status": "degraded", "reasons": [f"classifier not answering: {type(exc).__name__}"]})
        return {**merge(*parts), **extra}


def wire_image(image: Any) -> np.ndarray:
    """The array sent to a replica: uint8 when that is lossless (8-bit sources and palette-rendered dual energy,
    whose RGB values are k/255), a quarter of float32's bytes; float32 otherwise (16-bit grayscale)."""
    rgb8 = getattr(image, "rgb8", None)
    if rgb8 is not None:
        return rgb8
    rgb = getattr(image, "rgb", image)
    if rgb.dtype == np.uint8:
        return rgb
    if getattr(image, "bit_depth", 16) == 8 or getattr(image, "dual_energy", False):
        return np.rint(rgb * np.float32(255)).astype(np.uint8)  # (H, W, 3)
    return rgb


def handle_scorer(handle: DeploymentHandle, timeout_s: float = 60.0) -> Any:
    """A plain `score(images) -> fields` over a Serve handle: one call carries a whole source batch.

    Images are letterboxed here, in the ingest worker that decoded them, to the canvas size the replica's model
    reads (asked of the replica, and asked again after a failed call: a promoted model may read another size):
    replicas receive fixed-size uint8 canvases (3, S, S) + Geometry, ready to stack, and ~4x fewer bytes than the
    decoded scan. A slot with no model in force (no shadow) answers an empty list without being sent images.
    Given `scanners` (one per image, from the ingest), each image travels with its scanner (ScannerImage)."""
    input_size: list[int] = []

    def score(images: list[Any], scanners: Sequence[str] | None = None) -> list[dict[str, Any]]:
        from screening.preprocess import prepare
        from serving.follow import ScannerImage

        if not input_size:
            size = handle.info.remote().result(timeout_s=timeout_s)["input_size"]
            if size is None:
                return []
            input_size.append(int(size))
        prepared: list[Any] = [prepare(im, input_size[0], i) for i, im in enumerate(images)]
        if scanners is not None:  # the replica scores each with its scanner's champion, if one is in force
            prepared = [ScannerImage(sc, p) for sc, p in zip(scanners, prepared, strict=True)]
        try:  # bounded: a hung replica fails this attempt (the watcher retries) instead of stalling the stream
            return list(handle.score.remote(prepared).result(timeout_s=timeout_s))
        except Exception:
            input_size.clear()
            raise

    return score


def classifier_options(settings: Settings, name: str) -> dict[str, Any]:
    """Deployment options from settings: replicas or autoscaling bounds, CPUs/GPUs per replica, queue limit."""
    s = settings.serving
    options: dict[str, Any] = {
        "name": name,
        "ray_actor_options": {"num_cpus": s.replica_cpus, "num_gpus": replica_gpus(settings)},
        "max_ongoing_requests": max(4 * s.batch_max_size, 64),
        "logging_config": QUIET_LOGS,
        **HEALTH_CHECK,
    }
    if s.min_replicas == s.max_replicas:
        options["num_replicas"] = s.max_replicas
    else:
        options["num_replicas"] = "auto"
        options["autoscaling_config"] = {
            "min_replicas": s.min_replicas, "max_replicas": s.max_replicas,
            "target_ongoing_requests": s.target_ongoing_requests,
            "upscale_delay_s": 5.0, "downscale_delay_s": 60.0,
        }
    return options


def resolve_model(settings: Settings, name: str) -> ModelRef:
    """The registered checkpoint named `name` (a version or `champion`), via the store owner."""
    from screening.registry import resolve

    record = resolve(settings, name)
    return ModelRef(record.weights_path, record.weights_sha256, record.version)


def build_app(settings: Settings, model: ModelRef | None = None) -> Any:
    """The Serve application: the champion slot (+ the shadow slot) behind the ingress. The champion's first model
    defaults to the registry's; after that both slots follow the store (serving/follow.py)."""
    s = settings.serving
    model = model or resolve_model(settings, settings.model.name)
    settings_json = settings.model_dump_json()
    # @serve.deployment adds .options/.bind, which type checkers cannot see.
    deployment: Any = ClassifierDeployment
    classifier = deployment.options(**classifier_options(settings, CLASSIFIER)).bind("champion", model, settings_json)
    shadow_app = None
    if s.shadow_slot:
        options = {**classifier_options(settings, SHADOW), "num_replicas": 1}
        options.pop("autoscaling_config", None)
        shadow_app = deployment.options(**options).bind("shadow", None, settings_json)
    ingress: Any = IngressDeployment
    return ingress.options(name=INGRESS, **HEALTH_CHECK).bind(classifier, shadow_app, settings_json)


def app_builder(args: dict[str, Any]) -> Any:
    """`import_path` target of serving/deploy.yaml. Settings: args["settings_json"] (a full dump), else the TOML
    file args["config"], else the environment (XSCREEN_* in the runtime_env)."""
    if args.get("settings_json"):
        return build_app(Settings.model_validate_json(args["settings_json"]))
    config = args.get("config")
    return build_app(load_settings(Path(config) if config else None))


def local_config_from_yaml(path: Path, settings: Settings, *, replicas: int, app_name: str,
                           route_prefix: str) -> Any:
    """serving/deploy.yaml adapted to this machine: CPU-only, fixed replicas, settings passed inline."""
    import yaml
    from ray.serve.schema import ServeDeploySchema

    raw = yaml.safe_load(path.read_text())
    app = raw["applications"][0]
    app.update(name=app_name, route_prefix=route_prefix, args={"settings_json": settings.model_dump_json()})
    for dep in app["deployments"]:
        dep.pop("autoscaling_config", None)
        dep["ray_actor_options"] = {"num_cpus": 0.5 if dep["name"] == CLASSIFIER else 0, "num_gpus": 0}
        dep["num_replicas"] = replicas if dep["name"] == CLASSIFIER else 1
    raw["http_options"] = {"host": settings.network.host, "port": settings.network.api_port}
    return ServeDeploySchema.model_validate(raw)


def run_config(config: Any, app_name: str, timeout_s: float = 120.0) -> DeploymentHandle:
    """Deploy a Serve config on the connected instance (what `serve deploy` asks the cluster to do)."""
    from ray.serve.context import _get_global_client

    client = _get_global_client()
    if client is None:
        raise ConfigError("Serve is not running on the connected Ray instance")
    # Not `_blocking=True`: Ray's own wait is a fixed 60 s, and on a busy 2-core machine two fresh replica
    # processes can take longer to import torch and load the model. Ours waits `timeout_s` and says what is stuck.
    client.deploy_apps(config)
    deadline = time.monotonic() + timeout_s
    while True:  # bounded by the deadline
        app = serve.status().applications.get(app_name)
        state = ApplicationStatus(app.status) if app is not None else ApplicationStatus.NOT_STARTED
        if state == ApplicationStatus.RUNNING:
            return serve.get_deployment_handle(CLASSIFIER, app_name=app_name)
        if state == ApplicationStatus.DEPLOY_FAILED or time.monotonic() > deadline:
            detail = {name: (str(d.status), d.message) for name, d in app.deployments.items()} if app else {}
            raise ConfigError(f"Serve application {app_name!r} is {state.value} after {timeout_s:.0f} s: {detail}")
        time.sleep(0.5)


def _loopback_env(settings: Settings) -> dict[str, Any]:
    return {"worker_process_setup_hook": HOOK, "env_vars": {BIND_ENV: settings.network.host}}


def start_ray(settings: Settings, address: str | None = None, *, own: bool = False) -> None:
    """Connect to `address` (or settings.serving.ray_address), else start a quiet local instance bound to loopback.
    `own`: the instance at `address` is xscreen's own (started by the supervisor on this host), so its workers
    get the loopback hook like a local instance's; a cluster someone else runs is joined as it is."""
    address = address or settings.serving.ray_address
    if ray.is_initialized():
        return
    if address:
        os.environ.setdefault(BIND_ENV, settings.network.host)
        ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING, namespace=APP_NAME,
                 runtime_env=_loopback_env(settings) if own else None)
        return
    # Ray reads this once, at import, to decide that the node's address is loopback; with it every core
    # listener (GCS, raylet, workers) binds 127.0.0.1 (FACTS.md). Set both the variable (children) and the
    # already-imported constant (this process), so the import order of `ray` does not matter.
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    from ray._private import ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = False
    os.environ.setdefault(BIND_ENV, settings.network.host)
    ray.init(
        num_cpus=settings.serving.ray_num_cpus, include_dashboard=False, log_to_driver=False,
        logging_level=logging.WARNING, namespace=APP_NAME, runtime_env=_loopback_env(settings),
    )


def start_serve(settings: Settings) -> None:
    """Serve's HTTP proxy on network.host:network.api_port."""
    serve.start(http_options={"host": settings.network.host, "port": settings.network.api_port},
                logging_config=QUIET_LOGS)


def deploy(settings: Settings, model: ModelRef | None = None) -> DeploymentHandle:
    """Run the application (blocking until replicas are up) and return the classifier's handle."""
    try:
        serve.run(build_app(settings, model), name=APP_NAME, route_prefix="/")
    except (RuntimeError, ValueError) as exc:
        raise ConfigError(f"Ray Serve could not deploy the application: {exc}") from exc
    return serve.get_deployment_handle(CLASSIFIER, app_name=APP_NAME)


def deployed_version(timeout_s: float = 10.0) -> str | None:
    """The model version the running application serves, or None when it is not running (or not answering)."""
    try:
        status = serve.status().applications.get(APP_NAME)
        if status is None or status.status != ApplicationStatus.RUNNING:
            return None
        info = serve.get_deployment_handle(CLASSIFIER, app_name=APP_NAME).info.remote().result(timeout_s=timeout_s)
        return str(info["model_version"])
    except Exception as exc:  # noqa: BLE001 -- any doubt means "deploy it"
        log.info("Serve application not usable as it is (%s): deploying", exc)
        return None


def ensure_deployed(settings: Settings, model: ModelRef) -> DeploymentHandle:
    """The running application's classifier handle when it serves `model` already (a restarted watcher finds
    it in seconds; a running application follows the store's champion itself), else deploy it."""
    if deployed_version() == model.version:
        return serve.get_deployment_handle(CLASSIFIER, app_name=APP_NAME)
    return deploy(settings, model)


def disconnect() -> None:
    """Leave the Ray instance without stopping Serve or Ray (a cluster, or the supervisor's own Ray head)."""
    if ray.is_initialized():
        ray.shutdown()


def shadow_handle() -> DeploymentHandle:
    return serve.get_deployment_handle(SHADOW, app_name=APP_NAME)


def shutdown() -> None:
    """Stop Serve and Ray (idempotent)."""
    if ray.is_initialized():
        try:
            serve.shutdown()
        finally:
            ray.shutdown()


__all__ = ["ModelRef", "app_builder", "build_app", "deploy", "deployed_version", "disconnect", "ensure_deployed",
           "handle_scorer", "shutdown", "start_ray", "start_serve"]
