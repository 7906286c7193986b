"""Start a private, loopback-only Ray cluster on this machine.

`ray.init(_node_ip_address="127.0.0.1")` alone is not enough on Linux: Ray replaces a loopback
node address with the machine's routable address (`services.resolve_ip_for_localhost`) and its
GCS, raylet and workers then listen on every interface. Ray only keeps loopback addresses when
its "cluster mode" is off (`RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`, read by every Ray process at
import). A private single-machine cluster is what tests, benchmarks and `prover eval --ray`
without `--address` want, so this module switches cluster mode off for it and checks the result.
Connecting to a real multi-node cluster (`--address`) does not go through here.
"""

from __future__ import annotations

import os
from typing import Any

from prover.errors import ConfigError

LOOPBACK = "127.0.0.1"
CLUSTER_MODE_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def init_local_ray(*, num_cpus: int | None = None, object_store_memory: int | None = None, **kwargs: Any) -> None:
    """`ray.init` a fresh local cluster whose processes listen on 127.0.0.1 only.

    Raises:
        ConfigError: Ray still chose a non-loopback node address (the cluster is shut down).
    """
    os.environ[CLUSTER_MODE_ENV] = "0"  # inherited by the GCS, raylet and worker processes
    import ray
    from ray._private import ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = False  # this process imported Ray before the variable was set
    ray.init(
        _node_ip_address=LOOPBACK,
        include_dashboard=False,
        num_cpus=num_cpus,
        object_store_memory=object_store_memory,
        **kwargs,
    )
    address = ray.util.get_node_ip_address()
    if address != LOOPBACK:
        ray.shutdown()
        raise ConfigError(f"Ray chose node address {address} instead of {LOOPBACK}; refusing to run off loopback")
