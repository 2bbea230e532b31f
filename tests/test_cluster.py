"""The stream tier on a real Redis Cluster (3 masters + 3 replicas of the embedded redis-server on loopback,
started here), the index tier on the session's Query Engine server; a master killed mid-run."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import defaultdict

import pytest
import redis
import requests
from conftest import REPO
from corpus import jpeg
from test_dashboard import serving, web

from facestream.app.bench.localcluster import LocalCluster, free_ports
from facestream.app.stack.local import LocalPipeline, settings_env
from facestream.feed import newest
from facestream.keys import Keys
from facestream.records import DeadLetter, Frame, FrameResult
from facestream.server import connect
from facestream.status import read_status

CAMERAS = [f"cam{i}" for i in range(6)]
TOKEN = "cluster-test-token"


@pytest.fixture
def cluster(tmp_path):
    c = LocalCluster(free_ports(6, 7300), tmp_path / "cluster")
    c.start()
    yield c
    c.stop()


class ConfirmedProducer:
    """Frames to every camera, each XADD followed by WAIT 1 on the same connection of the slot's master: a
    frame counts as sent once a replica has it too (Redis replicates asynchronously: what a killed master
    acknowledged but had not passed on is gone, and was never promised)."""

    def __init__(self, r: redis.RedisCluster, keys: Keys):
        self.r, self.keys = r, keys
        self.sent: dict[str, set[str]] = defaultdict(set)
        self.errors = 0
        self.stop = threading.Event()

    def run(self, fps: float = 4.0) -> None:
        seq = 0
        while not self.stop.is_set():
            for camera in CAMERAS:
                key = self.keys.frames(camera)
                frame = Frame(camera, seq, int(time.time() * 1000), 96, 72, jpeg(seed=seq % 50)).to_fields()
                try:
                    node = self.r.get_node_from_key(key)
                    with self.r.get_redis_connection(node).pipeline(transaction=False) as p:
                        p.xadd(key, frame, maxlen=1000, approximate=True)
                        p.execute_command("WAIT", 1, 1000)
                        entry, replicas = p.execute()
                    if replicas >= 1:
                        self.sent[camera].add(entry.decode())
                except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
                    self.errors += 1
                    time.sleep(0.2)
                    self.r.nodes_manager.initialize()  # learn the new master
            seq += 1
            time.sleep(1 / fps)


def _sse(port: int, seen: dict[str, list[float]], problems: list[tuple[float, str]], stop: threading.Event) -> None:
    """Read the dashboard's live updates: when each camera's results arrive, and health messages."""
    headers = {"Authorization": f"Bearer {TOKEN}", "Origin": f"http://127.0.0.1:{port}"}
    while not stop.is_set():
        try:
            with requests.get(f"http://127.0.0.1:{port}/stream", headers=headers, stream=True, timeout=10) as resp:
                kind = ""
                for line in resp.iter_lines(decode_unicode=True):
                    if stop.is_set():
                        return
                    if line.startswith("event:"):
                        kind = line.split(":", 1)[1].strip()
                    elif line.startswith("data:") and kind == "result":
                        seen[json.loads(line[5:])["camera"]].append(time.time())
        except requests.RequestException as e:
            problems.append((time.time(), f"dashboard stream: {e}"))
            time.sleep(0.5)


def _status_loop(s, r, index, problems: list[tuple[float, str]], stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            read_status(r, s, index)
        except Exception as e:  # noqa: BLE001 - recorded: a status that fails outside the fail-over is a bug
            problems.append((time.time(), f"status: {type(e).__name__}: {e}"))
        time.sleep(0.5)


def test_six_cameras_three_workers_and_a_master_killed(cluster, settings, redis_server, tmp_path):
    s = web(settings.replace(redis_url=cluster.url, index_url=redis_server.url, claim_idle_ms=3000,
                             camera_lease_ms=3000, block_ms=200, detection="fast"), tmp_path)
    keys = Keys(s.key_prefix)
    r = connect(s)
    assert isinstance(r, redis.RedisCluster)
    index = connect(s, s.index_url)
    assert len({cluster.master_of(keys.frames(c)) for c in CAMERAS}) >= 2, "the cameras spread over the masters"
    producer = ConfirmedProducer(connect(s), keys)
    stop = threading.Event()
    seen: dict[str, list[float]] = defaultdict(list)
    problems: list[tuple[float, str]] = []  # (when, what): only the fail-over's seconds may have any
    with serving(s, TOKEN) as port, LocalPipeline(s, cluster.url, "cluster", workers=3) as local:
        threads = [threading.Thread(target=producer.run, daemon=True),
                   threading.Thread(target=_sse, args=(port, seen, problems, stop), daemon=True),
                   threading.Thread(target=_status_loop, args=(s, r, index, problems, stop), daemon=True)]
        for t in threads:
            t.start()
        local.wait_ready(r, CAMERAS[0])
        time.sleep(8)
        victim = cluster.master_of(keys.frames(CAMERAS[0]))
        cluster.kill(victim)
        killed_at = time.time()
        time.sleep(12)
        producer.stop.set()
        threads[0].join(30)
        deadline = time.monotonic() + 180
        while True:
            answered = _answers(r, keys)
            missing = {c: producer.sent[c] - answered[c] for c in CAMERAS}
            if not any(missing.values()):
                break
            assert time.monotonic() < deadline, f"unanswered: { {c: len(m) for c, m in missing.items()} }"
            local.check_alive()
            time.sleep(0.5)
        time.sleep(1)  # the dashboard's last updates
        stop.set()
        status = subprocess.run([sys.executable, "-m", "facestream", "status"], cwd=REPO, capture_output=True,
                                text=True, timeout=60, env=settings_env(s, cluster.url))
    print(f"sent {sum(map(len, producer.sent.values()))} confirmed frames, {producer.errors} producer errors, "
          f"fail-over problems: {len(problems)}", sorted({what[:80] for _, what in problems}))
    assert cluster.master_of(keys.frames(CAMERAS[0])) != victim, "a replica took over"
    assert producer.errors > 0, "the kill was felt by the producer"
    for camera in CAMERAS:
        ids = [FrameResult.from_fields(f).frame_id for _, f in r.xrange(keys.results(camera))]
        assert len(ids) == len(set(ids)), f"{camera}: a result written twice"
        assert len(producer.sent[camera]) > 20 and producer.sent[camera] <= answered[camera]
        assert any(t > killed_at + 5 for t in seen[camera]), f"the dashboard showed no {camera} result after the kill"
    outside = [what for when, what in problems if not killed_at <= when <= killed_at + 10]
    assert not outside, outside
    assert status.returncode == 0 and all(c in status.stdout for c in CAMERAS), status.stdout + status.stderr


def _answers(r: redis.RedisCluster, keys: Keys) -> dict[str, set[str]]:
    """camera -> the frame ids answered by a result or a dead letter."""
    out: dict[str, set[str]] = defaultdict(set)
    for e in newest(r, keys, "results", 10**6):
        res = FrameResult.from_fields(e.fields)
        out[res.camera].add(res.frame_id)
    for e in newest(r, keys, "deadletter", 10**6):
        letter = DeadLetter.from_fields(e.fields)
        out[letter.camera].add(letter.entry_id)
    return out


def test_acl_roles_on_every_node_of_a_cluster(cluster, settings, tmp_path):
    from facestream.acl import apply

    s = settings.replace(redis_url=cluster.url)
    keys = Keys(s.key_prefix)
    name = apply(connect(s), keys, "producer", tmp_path / "producer")
    producer = connect(s.replace(redis_username=name, redis_password_file=tmp_path / "producer"))
    assert isinstance(producer, redis.RedisCluster)  # the slot map is readable with the role's own rights
    for camera in CAMERAS:  # cameras on every master: the user exists on each
        producer.xadd(keys.frames(camera), Frame(camera, 0, 1, 96, 72, jpeg()).to_fields())
    with pytest.raises(redis.exceptions.NoPermissionError):
        producer.xrange(keys.frames(CAMERAS[0]))
