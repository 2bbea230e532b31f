"""Pipeline health read from Redis alone: per-camera backlog, worker heartbeats, output stream sizes.

Used by ``facestream status`` (and anything else that wants the same picture without Prometheus).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import redis

from facestream.commands import cameras, ft_info, group_info
from facestream.config import Settings
from facestream.feed import is_cluster
from facestream.keys import Keys
from facestream.refusals import CONDITIONS
from facestream.replies import as_dict, text


@dataclass
class CameraStatus:
    camera: str
    frames: int  # entries now in the stream
    lag: int | None  # entries not yet delivered to the group (None: group missing)
    pending: int  # delivered, not yet answered
    consumers: int
    reader: str | None = None  # with tracking: the worker holding the camera's lease
    lost: int = 0  # trimmed from the stream before any worker read them (counted when a worker next reads)


@dataclass
class Status:
    cameras: list[CameraStatus] = field(default_factory=list)
    workers: dict[str, dict[str, str]] = field(default_factory=dict)
    results: int = 0
    events: int = 0
    deadletters: int = 0
    bad_streams: list[bytes] = field(default_factory=list)  # keys under the frames prefix that are no camera id
    gallery_faces: int = 0
    cohort_faces: int = 0
    sightings: int = 0
    visitors: int = 0
    policy: str = "the settings' (no calibration stored)"  # what the workers decide with
    gear: dict[str, str] | None = None  # the in-server gear's registration (RedisGears), if the server has one
    server: ServerHealth | None = None  # the stream tier's memory and whether it refuses writes (None: cannot say)

    @property
    def lost(self) -> int:
        return sum(c.lost for c in self.cameras)

    def lines(self) -> list[str]:
        out = [f"results {self.results}   events {self.events}   dead letters {self.deadletters}   "
               f"lost {self.lost} (trimmed before any worker read them)",
               *([self.server.line()] if self.server is not None else []),
               f"{'camera':20} {'frames':>8} {'lag':>8} {'pending':>8} {'lost':>8} {'consumers':>9}  read by"]
        for c in self.cameras:
            out.append(f"{c.camera:20} {c.frames:8d} {('-' if c.lag is None else c.lag):>8} {c.pending:8d} "
                       f"{c.lost:8d} {c.consumers:9d}  {c.reader or '-'}")
        if self.bad_streams:
            out.append(f"ignored {len(self.bad_streams)} stream key(s) that are not valid camera ids: "
                       + ", ".join(repr(k) for k in self.bad_streams[:5]))
        out.append(f"gallery {self.gallery_faces} faces   cohort {self.cohort_faces} faces   decision policy: {self.policy}")
        deciding = sorted({w["policy"] for w in self.workers.values() if w.get("policy")})
        for said in deciding:  # what the workers decide with now (the stored policy scaled to the gallery)
            out.append(f"workers decide with: {said}")
        out.append(f"sightings {self.sightings}   visitors {self.visitors}")
        if self.gear is not None:
            out.append(f"in-server gear on {self.gear.get('stream')}: {self.gear.get('numTriggered')} runs, "
                       f"{self.gear.get('numFailures')} failed, last error: {self.gear.get('lastError') or '-'}")
        out.append(f"workers alive: {len(self.workers)}")
        for name, w in sorted(self.workers.items()):
            out.append(f"  {name}: results {w.get('results')} (unchanged scene, not searched: {w.get('unchanged', 0)}) "
                       f"dead letters {w.get('deadletters')} "
                       f"skipped {w.get('skipped')} lost {w.get('lost')} errors {w.get('errors')}"
                       + (f" unstored sightings/visitor looks {w['unstored']}" if int(w.get("unstored") or 0) else "")
                       + (f" Redis refusals waited out {w['refusals']}" if int(w.get("refusals") or 0) else ""))
        return out


@dataclass
class ServerHealth:
    """What the stream tier's INFO says: memory against ``maxmemory``, and a condition refusing writes now."""

    used: int
    maxmemory: int
    policy: str
    refusing: str | None  # a code of facestream.refusals.CONDITIONS

    @classmethod
    def of(cls, client: redis.Redis | redis.RedisCluster) -> ServerHealth | None:
        if not isinstance(client, redis.Redis):
            return None  # a cluster: one INFO per node (redis-cli --cluster info)
        try:
            info = client.info()
        except redis.RedisError:  # not allowed to (a worker's ACL user), or the server is away
            return None
        used, top, policy = int(info.get("used_memory", 0)), int(info.get("maxmemory", 0)), str(info.get("maxmemory_policy", "?"))
        refusing = ("LOADING" if info.get("loading") == 1 else "READONLY" if info.get("role") == "slave" else
                    "MISCONF" if info.get("rdb_last_bgsave_status") == "err" else
                    "OOM" if top and used >= top and policy == "noeviction" else None)
        return cls(used, top, policy, refusing)

    def line(self) -> str:
        mb = 1024 * 1024
        limit = f"of {self.maxmemory / mb:.0f} MB maxmemory ({self.policy})" if self.maxmemory else "(no maxmemory set)"
        return (f"redis memory {self.used / mb:.1f} MB {limit}"
                + (f"; REFUSING WRITES: {CONDITIONS[self.refusing]}" if self.refusing else ""))


def _shown(v: bytes | str) -> str:
    """A key or value for display: never raises on bytes that are not UTF-8."""
    return v if isinstance(v, str) else bytes(v).decode("utf-8", "replace")


def _policy_line(raw: bytes) -> str:
    """The stored policy in one line (a malformed one is shown as such: the workers then use the settings)."""
    try:
        p = json.loads(raw)
        return (f"threshold {float(p['threshold']):.4f}, margin {float(p['margin']):.4f}, cohort margin "
                f"{float(p['cohort_margin']):.4f} for {int(p.get('gallery_faces', 0))} gallery faces ({p.get('source', '?')})")
    except (ValueError, KeyError, TypeError) as e:
        return f"malformed ({type(e).__name__}), so the settings' is used"


def read_status(client: redis.Redis | redis.RedisCluster, settings: Settings, index: redis.Redis | None = None) -> Status:
    """The picture from the stream tier ``client`` and the index tier ``index`` (default: the same server)."""
    keys = Keys(settings.key_prefix)
    found, bad = cameras(client, keys)
    st = Status(results=_total(client, keys, "results"), events=_total(client, keys, "events"),
                deadletters=_total(client, keys, "deadletter"), bad_streams=bad)
    for camera in found:
        key = keys.frames(camera)
        group = group_info(client, key, settings.group)
        reader = client.get(keys.lease(camera))
        st.cameras.append(CameraStatus(
            camera, client.xlen(key),
            None if group is None else int(group.get("lag") or 0),
            0 if group is None else int(group["pending"]),
            0 if group is None else int(group["consumers"]),
            None if reader is None else _shown(reader),
            int(client.get(keys.lost(camera)) or 0),
        ))
    index = index or client
    st.gallery_faces, st.cohort_faces, st.sightings, st.visitors = (
        int(text((ft_info(index, i) or {}).get("num_docs", 0)))
        for i in (keys.index, keys.cohort_index, keys.sightings_index, keys.visitors_index))
    raw = index.get(keys.policy)
    if raw is not None:
        st.policy = _policy_line(raw)
    st.gear = gear_registration(client, keys)
    st.server = ServerHealth.of(client)
    for wkey in client.scan_iter(match=keys.worker_pattern, count=1000):
        st.workers[_shown(wkey).rsplit(":", 1)[-1]] = {_shown(k): _shown(v) for k, v in client.hgetall(wkey).items()}
    return st


def _total(client: redis.Redis | redis.RedisCluster, keys: Keys, kind: str) -> int:
    """Entries in every camera's ``kind`` stream together."""
    return sum(client.xlen(keys.camera_key(kind, c)) for c in cameras(client, keys, kind)[0])


def gear_registration(client: redis.Redis | redis.RedisCluster, keys: Keys) -> dict[str, str] | None:
    """The counters of the gear registered on this prefix's frame streams (RG.DUMPREGISTRATIONS; its
    RegistrationData and args flattened), None without RedisGears, without one, or without the right.
    A Redis Cluster has no gear (it runs on one server), and RG.* have no key to route by."""
    if is_cluster(client):
        return None
    try:
        registrations = client.execute_command("RG.DUMPREGISTRATIONS")
    except redis.ResponseError:  # no RedisGears here, or a role without RG.* (every one but admin)
        return None
    for reg in registrations:
        data = as_dict(as_dict(reg).get("RegistrationData"))
        args = as_dict(data.get("args"))
        if _shown(args.get("stream", b"")) == keys.frames_prefix + "*":
            return {k: "" if v is None else _shown(v) if isinstance(v, (bytes, str)) else str(v)
                    for k, v in {**data, **args}.items() if not isinstance(v, list)}
    return None

