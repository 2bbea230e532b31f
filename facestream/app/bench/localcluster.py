"""A Redis Cluster of embedded servers on loopback: ``facestream bench --cluster``, the cluster tests,
and trying the stream tier's cluster layout on one machine (a production cluster is the user's own).

Masters split the 16384 slots evenly; each has ``replicas`` replicas, which take over when it dies
(``cluster-node-timeout`` 2 s). Every node has the same password (one URL serves the whole cluster).
The cluster is built with plain cluster commands (MEET, ADDSLOTSRANGE, REPLICATE): no redis-cli.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from facestream.errors import ServerError
from facestream.server import HOST, EmbeddedRedis, port_in_use

SLOTS = 16384


def free_ports(n: int, first: int = 7100) -> list[int]:
    """``n`` free ports for cluster nodes (each also needs its bus port, 10000 higher, free)."""
    ports, port = [], first
    while len(ports) < n:
        if not port_in_use(port) and not port_in_use(port + 10000):
            ports.append(port)
        port += 1
    return ports


@dataclass
class LocalCluster:
    """``len(ports)`` nodes: the first ``masters`` are masters, the rest their replicas, in turn."""

    ports: list[int]
    data_dir: Path
    masters: int = 3
    nodes: list[EmbeddedRedis] = field(init=False)

    def __post_init__(self) -> None:
        if self.masters < 1 or len(self.ports) < self.masters:
            raise ServerError(f"a cluster of {len(self.ports)} nodes cannot have {self.masters} masters")
        self.nodes = [EmbeddedRedis(p, self.data_dir, cluster=True) for p in self.ports]

    @property
    def url(self) -> str:
        """A URL of one node, with the password: redis-py's RedisCluster finds the others from it."""
        return self.nodes[0].url

    def client(self, port: int) -> redis.Redis:
        return redis.Redis(host=HOST, port=port, password=self.nodes[0].password(), socket_timeout=5)

    def start(self, wait_s: float = 60.0) -> str:
        """Start every node (children of this process), form the cluster, and wait until it serves every
        slot with every replica in sync; returns :attr:`url`."""
        password = self.nodes[0].password()
        for node in self.nodes[1:]:
            node._make_dir()
            node.password_file.write_text(password)
            os.chmod(node.password_file, 0o600)
        for node in self.nodes:
            node.start(attached=True)
        first = self.client(self.ports[0])
        for port in self.ports[1:]:
            first.execute_command("CLUSTER", "MEET", HOST, port)
        per = SLOTS // self.masters
        for i, port in enumerate(self.ports[: self.masters]):
            end = SLOTS - 1 if i == self.masters - 1 else (i + 1) * per - 1
            self.client(port).execute_command("CLUSTER", "ADDSLOTSRANGE", i * per, end)
        ids = [self._wait(lambda p=p: self.client(p).execute_command("CLUSTER", "MYID"), wait_s) for p in self.ports]
        for i, port in enumerate(self.ports[self.masters:]):
            master = ids[i % self.masters].decode()
            self._wait(lambda p=port, m=master: self.client(p).execute_command("CLUSTER", "REPLICATE", m), wait_s)
        self._wait(self._ready, wait_s)
        return self.url

    def _ready(self) -> bool | None:
        for port in self.ports:
            c = self.client(port)
            if c.cluster("info").get("cluster_state") != "ok":
                return None
            role = c.execute_command("ROLE")
            if role[0] == b"slave" and role[3] != b"connected":
                return None
        return True

    @staticmethod
    def _wait(what, wait_s: float):  # noqa: ANN001, ANN205 - a poll of any cluster command
        deadline = time.monotonic() + wait_s
        while True:
            try:
                got = what()
                if got:
                    return got
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                raise ServerError(f"the local cluster did not form within {wait_s:.0f} s")
            time.sleep(0.1)

    def master_of(self, key: str) -> int:
        """The port of the master serving ``key`` now."""
        slot = self.client(self.ports[0]).cluster("keyslot", key)
        for port in self.ports:
            try:
                c = self.client(port)
                if c.execute_command("ROLE")[0] == b"master" and any(
                        s[0] <= slot <= s[1] for s in c.execute_command("CLUSTER", "SLOTS") if s[2][1] == port):
                    return port
            except redis.ConnectionError:
                continue
        raise ServerError(f"no live master serves slot {slot}")

    def kill(self, port: int) -> None:
        """SIGKILL one node: no shutdown, no goodbye (its replica takes over after the node timeout)."""
        node = self.nodes[self.ports.index(port)]
        pid = node.pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)

    def stop(self) -> None:
        for node in self.nodes:
            try:
                node.stop()
            except ServerError:
                self.kill(node.port)
