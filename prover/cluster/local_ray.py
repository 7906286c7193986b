"""Start a private, loopback-only Ray cluster on this machine.

`ray.init(_node_ip_address="127.0.0.1")` alone is not enough on Linux: Ray replaces a loopback
node address with the machine's routable address (`services.resolve_ip_for_localhost`) and its
GCS, raylet and workers then listen on every interface. Ray only keeps loopback addresses when
its "cluster mode" is off (`RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`, read by every Ray process at
import). A private single-machine cluster is what tests, benchmarks and `prover eval --ray`
without `--address` want, so this module switches cluster mode off for it and checks the result.
Connecting to a real multi-node cluster (`--address`) does not go through here.

`LocalRayCluster` starts several raylets (nodes) on this machine, all on 127.0.0.1, for tests and
benchmarks that need a real multi-node cluster: nodes with their own resources that can be added
and killed mid-run.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from prover.errors import ConfigError

LOOPBACK = "127.0.0.1"
CLUSTER_MODE_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
HEALTH_CHECKS_MISSED = 3
"""Missed health checks after which `LocalRayCluster(failure_detection_s=...)` declares a node dead."""


def _cluster_mode_off() -> None:
    os.environ[CLUSTER_MODE_ENV] = "0"  # inherited by the GCS, raylet and worker processes
    from ray._private import ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = False  # this process imported Ray before the variable was set


def _require_loopback() -> None:
    import ray

    addresses = {ray.util.get_node_ip_address(), *(n["NodeManagerAddress"] for n in ray.nodes())}
    if addresses != {LOOPBACK}:
        ray.shutdown()
        raise ConfigError(f"Ray chose node address(es) {sorted(addresses)} instead of {LOOPBACK}; refusing to run off loopback")


def init_local_ray(*, num_cpus: int | None = None, object_store_memory: int | None = None, **kwargs: Any) -> None:
    """`ray.init` a fresh local cluster whose processes listen on 127.0.0.1 only.

    Raises:
        ConfigError: Ray still chose a non-loopback node address (the cluster is shut down).
    """
    _cluster_mode_off()
    import ray

    ray.init(
        # "local": always a fresh cluster, never one a `ray start` or another process left running
        address="local",
        _node_ip_address=LOOPBACK,
        include_dashboard=False,
        num_cpus=num_cpus,
        object_store_memory=object_store_memory,
        **kwargs,
    )
    _require_loopback()


class LocalRayCluster:
    """A multi-node Ray cluster on this machine: a head and worker raylets, all on 127.0.0.1.

    Example:
        with LocalRayCluster(head_cpus=1) as cluster:
            victim = cluster.add_node(num_cpus=2)
            cluster.add_node(num_cpus=2)
            ...                      # ray is initialised and connected to the cluster
            cluster.kill_node(victim)  # the node's raylet and every actor on it die

    Args:
        head_cpus: CPUs the head node offers (the driver's node; 0 keeps work off it).
        object_store_memory: per node, in bytes (small: only messages travel through it).
        failure_detection_s: how long a node may stop answering before the cluster declares it
            dead and restarts its actors elsewhere (None: Ray's default, tens of seconds; tests of
            node deaths use about a second).
    """

    def __init__(
        self,
        *,
        head_cpus: int = 1,
        object_store_memory: int = 100 * 1024 * 1024,
        failure_detection_s: float | None = None,
    ) -> None:
        self.head_cpus = head_cpus
        self.object_store_memory = object_store_memory
        self.failure_detection_s = failure_detection_s
        self._cluster: Any = None
        self.nodes: list[Any] = []

    def __enter__(self) -> LocalRayCluster:
        _cluster_mode_off()
        import ray
        from ray.cluster_utils import Cluster

        head = self._node_args(self.head_cpus)
        if self.failure_detection_s is not None:
            period_ms = max(100, int(self.failure_detection_s * 1000 / HEALTH_CHECKS_MISSED))
            head["_system_config"] = {
                "health_check_initial_delay_ms": 0,
                "health_check_period_ms": period_ms,
                "health_check_timeout_ms": period_ms,
                "health_check_failure_threshold": HEALTH_CHECKS_MISSED,
            }
        self._cluster = Cluster(initialize_head=True, head_node_args=head)
        ray.init(address=self._cluster.address, _node_ip_address=LOOPBACK, log_to_driver=False)
        _require_loopback()
        return self

    def _node_args(self, num_cpus: int, **resources: float) -> dict[str, Any]:
        args: dict[str, Any] = {
            "num_cpus": num_cpus,
            "node_ip_address": LOOPBACK,
            "include_dashboard": False,
            "object_store_memory": self.object_store_memory,
        }
        if resources:
            args["resources"] = dict(resources)
        return args

    def add_node(self, *, num_cpus: int = 1, **resources: float) -> Any:
        """Start one more raylet with these resources; returns its handle (for `kill_node`)."""
        node = self._cluster.add_node(**self._node_args(num_cpus, **resources))
        self._cluster.wait_for_nodes()
        _require_loopback()
        self.nodes.append(node)
        return node

    @property
    def address(self) -> str:
        """The head's GCS address (`127.0.0.1:<port>`), for drivers in other processes (`--address`)."""
        return str(self._cluster.address)

    def node_id(self, node: Any) -> str:
        """Ray's NodeID of a node handle (for scheduling on it, or checking where actors run)."""
        return node.node_id

    def kill_node(self, node: Any) -> None:
        """Kill a worker node as a dead machine would: every process on it at once (SIGKILL), the
        actors' workers and their children (e.g. Lean REPLs) included, then its raylet. Removing
        the raylet alone would leave its workers answering calls until they notice it is gone."""
        import psutil
        from ray._private import ray_constants

        raylet = node.all_processes[ray_constants.PROCESS_TYPE_RAYLET][0].process.pid
        try:
            processes = psutil.Process(raylet).children(recursive=True)
        except psutil.Error:
            processes = []
        for process in processes:
            with contextlib.suppress(psutil.Error):
                process.kill()
        self._cluster.remove_node(node, allow_graceful=False)
        self.nodes.remove(node)

    def __exit__(self, *exc: object) -> None:
        import ray

        ray.shutdown()
        if self._cluster is not None:
            self._cluster.shutdown()
            self._cluster = None
