"""Ray worker set-up hook that keeps each Serve replica's internal gRPC server on the loopback interface.

Ray Serve opens every replica's inter-deployment gRPC server on "[::]:0" (hard-coded in
ray/serve/_private/replica.py via ray._common.tls_utils.add_port_to_grpc_server), so even with
RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 a replica listens on all interfaces. `setup` runs in every worker
process before any task (ray.init(runtime_env={"worker_process_setup_hook": "serving.ray_loopback.setup"}))
and rewrites that bind address to $XSCREEN_RAY_BIND_HOST (default 127.0.0.1). This module must stay
importable by workers without the rest of the project being configured: it imports only Ray.
"""

from __future__ import annotations

import functools
import os
import sys
from typing import Any

HOOK = "serving.ray_loopback.setup"
BIND_ENV = "XSCREEN_RAY_BIND_HOST"
WILDCARDS = ("[::]:", "0.0.0.0:")


def loopback_address(address: str, host: str) -> str:
    """'[::]:0' -> '127.0.0.1:0'; any specific address is left alone."""
    for wildcard in WILDCARDS:
        if address.startswith(wildcard):
            return f"{host}:{address[len(wildcard):]}"
    return address


def _wrap(original: Any, host: str) -> Any:
    if getattr(original, "_xscreen_loopback", False):
        return original

    @functools.wraps(original)
    def add_port(server: Any, address: str) -> Any:
        return original(server, loopback_address(address, host))

    add_port._xscreen_loopback = True  # type: ignore[attr-defined]
    return add_port


def setup() -> None:
    """Patch the helper before Serve's replica module binds it (and in it, if it is already imported)."""
    host = os.environ.get(BIND_ENV, "127.0.0.1")
    from ray._common import tls_utils

    tls_utils.add_port_to_grpc_server = _wrap(tls_utils.add_port_to_grpc_server, host)
    replica = sys.modules.get("ray.serve._private.replica")
    if replica is not None and hasattr(replica, "add_port_to_grpc_server"):
        setattr(replica, "add_port_to_grpc_server", _wrap(replica.add_port_to_grpc_server, host))  # noqa: B010
