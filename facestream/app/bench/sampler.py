"""Sampling the processes of a bench run while it goes on: CPU and RSS of the workers, CPU of
redis-server, and the consumer group's lag."""

from __future__ import annotations

import threading

import psutil
import redis

from facestream.commands import group_info


class Sampler(threading.Thread):
    """Samples worker/Redis processes (CPU, RSS) and the consumer group's lag while a run goes on."""

    def __init__(self, client: redis.Redis, stream: str, group: str, workers: list[int]):
        super().__init__(daemon=True)
        self.client, self.stream, self.group = client, stream, group
        server = redis_pid(client)
        self.procs = {pid: psutil.Process(pid) for pid in workers}
        self.redis = psutil.Process(server) if server else None
        self.redis_cpu0 = cpu_seconds(self.redis)
        self.cpu0 = {pid: cpu_seconds(p) for pid, p in self.procs.items()}  # start-up (loading models) is not counted
        self.cpu: dict[int, float] = {}
        self.rss_max = 0.0
        self.lag_max = 0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.1):
            for pid, p in self.procs.items():
                try:
                    self.rss_max = max(self.rss_max, p.memory_info().rss / 2**20)
                    self.cpu[pid] = cpu_seconds(p) - self.cpu0[pid]
                except psutil.NoSuchProcess:
                    pass
            g = group_info(self.client, self.stream, self.group)
            if g and g.get("lag") is not None:
                self.lag_max = max(self.lag_max, int(g["lag"]))

    def stop(self) -> None:
        self._done.set()
        self.join()

    @property
    def redis_cpu(self) -> float:
        return cpu_seconds(self.redis) - self.redis_cpu0


def cpu_seconds(p: psutil.Process | None) -> float:
    """User + system CPU seconds of ``p`` so far (0 for none)."""
    if p is None:
        return 0.0
    t = p.cpu_times()
    return t.user + t.system


def redis_pid(client: redis.Redis) -> int | None:
    try:
        pid = int(client.info("server")["process_id"])
        return pid if psutil.pid_exists(pid) else None
    except (redis.RedisError, KeyError, ValueError):  # no INFO access: its CPU is not ours to sample
        return None
