"""``facestream mqtt``: identity events and presence on MQTT, with Home Assistant discovery.

The bridge reads every camera's events stream in its own consumer group (``mqtt``): an entry is acknowledged only
once the broker has acknowledged its message (QoS 1), so a restarted bridge publishes what it had not
finished, and only that; a re-published entry says ``"redelivered": true``. After each event it publishes
the camera's and the person's state from the workers' presence hashes (``fs:present:{<camera>}``), retained.
Topics (``mqtt_topic_prefix``, default ``facestream``; docs/streams.md has the payloads):

- ``<p>/events/<camera>``                 every appear/leave, not retained
- ``<p>/cameras/<camera>/people``         who is in view now (retained JSON), ``.../count``, ``.../stranger`` ON/OFF
- ``<p>/cameras/<camera>/availability``   ``online`` while the camera's frames are answered, else ``offline``
- ``<p>/people/<person_id>/state``        ON while in view on any camera (retained), ``.../attributes``: where, when
- ``<p>/health``                          the pipeline's counts (retained, every ``HEALTH_S``)
- ``<p>/status``                          ``online``; ``offline`` as the last will

Home Assistant discovery (``mqtt_discovery_prefix``, empty: off): one device per facestream key prefix, a
presence binary sensor per enrolled person (removed when the person is deleted; ``off`` until first seen),
per camera a "people in view" sensor (``state_class: measurement``: Home Assistant keeps its statistics) and a
"stranger in view" binary sensor, available while the bridge is online and the camera's frames are answered.
Entity ids are set with ``default_entity_id`` (current Home Assistant) and ``object_id`` (before 2025.10;
newer releases drop it from the discovery schema, as they drop any key they do not know), so they are the
same on every release; each config names its ``origin``.

The bridge also ends the presence of a camera that fell silent (:func:`facestream.presence.sweep`, every
second): its people leave with reason ``camera_silent`` even when no worker runs.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from importlib.metadata import version
from typing import Any

import redis

from facestream.commands import cameras
from facestream.config import Settings
from facestream.errors import BadRecord, FacestreamError
from facestream.feed import Feed
from facestream.keys import VISITOR_RE, Keys
from facestream.presence import sweep
from facestream.refusals import condition
from facestream.retry import Patience
from facestream.models.store.gallery import Gallery
from facestream.records import UNKNOWN, IdentityEvent
from facestream.replies import text
from facestream.status import read_status

log = logging.getLogger("facestream.mqtt")
GROUP = "mqtt"
HEALTH_S, SYNC_S, SWEEP_S, PUBLISH_TIMEOUT_S = 30.0, 10.0, 1.0, 30.0
VERSION = version("facestream")
ORIGIN = {"name": "facestream", "sw_version": VERSION}


class MqttBridge:
    """Events stream → MQTT; ``run`` until ``stop()``."""

    def __init__(self, client: redis.Redis | redis.RedisCluster, settings: Settings, index: redis.Redis | None = None,
                 name: str = "bridge"):
        import paho.mqtt.client as mqtt

        self.r, self.s, self.keys, self.name = client, settings, Keys(settings.key_prefix), name
        self.index = index or client  # the index tier: who is enrolled
        # Every camera's events from the moment the bridge is made (a bridge added to a running pipeline
        # does not replay history); first what an earlier run read but did not finish (its pending entries).
        self.feed = Feed(client, self.keys, ("events",), "$", group=GROUP, name=name)
        self.p, self.node = settings.mqtt_topic_prefix.rstrip("/"), f"facestream_{settings.key_prefix}"
        self.mqtt = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{self.node}_{name}",
                                protocol=mqtt.MQTTv311)
        if settings.mqtt_username:
            self.mqtt.username_pw_set(settings.mqtt_username, _password(settings))
        if settings.mqtt_tls:
            self.mqtt.tls_set()
        self.mqtt.will_set(f"{self.p}/status", "offline", qos=1, retain=True)
        self.mqtt.reconnect_delay_set(1, 30)
        self.mqtt.on_connect = self._on_connect
        self._connected, self._refused = threading.Event(), ""
        self._stop = threading.Event()
        self._next_sync = self._next_health = self._next_sweep = 0.0
        self.people: set[str] = set()
        self.cameras: set[str] = set()
        self.online: dict[str, bool] = {}  # camera -> the availability last published
        self.published = 0

    # --- connection -----------------------------------------------------------------------------------
    def _on_connect(self, client, userdata, flags, reason, properties) -> None:  # paho's signature
        if reason.is_failure:
            self._refused = str(reason)
            return
        self._connected.set()
        client.publish(f"{self.p}/status", "online", qos=1, retain=True)

    def connect(self, timeout_s: float = 15.0) -> None:
        """Connect (paho reconnects by itself afterwards); FacestreamError in one line if refused."""
        where = f"{self.s.mqtt_host}:{self.s.mqtt_port}"
        try:
            self.mqtt.connect(self.s.mqtt_host, self.s.mqtt_port, keepalive=30)
        except OSError as e:
            raise FacestreamError(f"cannot reach the MQTT broker at {where}: {e.strerror or e}") from None
        self.mqtt.loop_start()
        deadline = time.monotonic() + timeout_s
        while not self._connected.is_set() and not self._refused and time.monotonic() < deadline:
            time.sleep(0.05)
        if not self._connected.is_set():
            self.mqtt.loop_stop()
            why = self._refused or f"no answer within {timeout_s:.0f} s"
            raise FacestreamError(f"the MQTT broker at {where} refused the connection: {why}")

    def stop(self, *_: object) -> None:
        self._stop.set()

    # --- the loop -------------------------------------------------------------------------------------
    def run(self, max_idle_s: float | None = None) -> int:
        """Publish events until stopped (or idle for ``max_idle_s``); returns the messages published. Redis away or
        refusing (:mod:`facestream.refusals`) is waited out, said once; the events wait in the group meanwhile."""
        idle_since = time.monotonic()
        patience = Patience(log, "MQTT bridge", sleep=self._stop.wait)
        while not self._stop.is_set():
            try:
                moved = self._round()
                patience.ok()
            except Exception as e:  # noqa: BLE001
                if condition(e) is None:
                    raise
                self.feed.restart()
                patience.waited(e)
                continue
            if moved:
                idle_since = time.monotonic()
            elif max_idle_s is not None and time.monotonic() - idle_since > max_idle_s:
                break
        self.mqtt.publish(f"{self.p}/status", "offline", qos=1, retain=True).wait_for_publish(5)
        self.mqtt.disconnect()
        self.mqtt.loop_stop()
        return self.published

    def _round(self) -> int:
        """Discovery and health when due, then the events that came (each acked once the broker has it)."""
        now = time.monotonic()
        if now >= self._next_sync:
            self.sync_discovery()
            self._next_sync = now + SYNC_S
        if now >= self._next_health:
            self._publish(f"{self.p}/health", json.dumps(self._health()), retain=True)
            self._next_health = now + HEALTH_S
        if now >= self._next_sweep:
            self._sweep()
            self._next_sweep = now + SWEEP_S
        entries = self.feed.poll(100, 1000)
        for e in entries:
            self._forward(e.entry_id, e.fields, e.redelivered)
            self.feed.ack(e)
        return len(entries)

    def _sweep(self) -> None:
        """Silent cameras' people leave (their leave events come back through the feed) and each camera's
        availability follows whether its frames are answered."""
        for x in sweep(self.r.execute_command, self.keys, sorted(self.cameras), self.s.absent_after_s,
                       self.s.events_maxlen):
            if self.online.get(x.camera) != x.online:
                self.online[x.camera] = x.online
                self._publish(f"{self.p}/cameras/{x.camera}/availability", "online" if x.online else "offline", True)

    def _forward(self, entry_id: str, fields: dict, redelivered: bool) -> None:
        """Publish one event and the states it changes, waiting until the broker has them (the caller then
        acknowledges the entry)."""
        try:
            ev = IdentityEvent.from_fields(fields)
        except BadRecord as e:
            log.warning("events entry %s skipped: %s", entry_id, e)
            return
        visitor = bool(VISITOR_RE.match(ev.person_id))
        payload = {"id": entry_id, "kind": ev.kind, "camera": ev.camera, "person_id": "" if visitor else ev.person_id,
                   "name": UNKNOWN if visitor else ev.name, "visitor": ev.person_id if visitor else "",
                   "ts_ms": ev.ts_ms, "frame_id": ev.frame_id, "reason": ev.reason, "redelivered": redelivered}
        infos = [self._publish(f"{self.p}/events/{ev.camera}", json.dumps(payload))]
        self._announce_camera(ev.camera)
        present = {cam: self._present(cam) for cam in self.cameras}  # read once for both states
        infos += self._camera_state(ev.camera, present[ev.camera])
        if not visitor:
            infos += self._person_state(ev.person_id, present)
        for info in infos:
            info.wait_for_publish(PUBLISH_TIMEOUT_S)
            if not info.is_published():
                raise FacestreamError("the MQTT broker did not acknowledge a message in time")

    def _publish(self, topic: str, payload: str, retain: bool = False):  # -> paho MQTTMessageInfo
        self.published += 1
        return self.mqtt.publish(topic, payload, qos=1, retain=retain)

    # --- states ---------------------------------------------------------------------------------------
    def _present(self, camera: str) -> dict[str, tuple[int, str]]:
        """Who the workers list as in view on ``camera``: id -> (last seen ms, name)."""
        out = {}
        for k, v in self.r.hgetall(self.keys.presence(camera)).items():
            ms, _, name = text(v).partition("|")
            out[text(k)] = (int(ms or 0), name)
        return out

    def _camera_state(self, camera: str, here: dict[str, tuple[int, str]]) -> list:
        people = sorted(name for pid, (_, name) in here.items() if not VISITOR_RE.match(pid))
        strangers = sorted(pid for pid in here if VISITOR_RE.match(pid))
        base = f"{self.p}/cameras/{camera}"
        return [self._publish(f"{base}/people", json.dumps({"people": people, "visitors": strangers}), True),
                self._publish(f"{base}/count", str(len(here)), True),
                self._publish(f"{base}/stranger", "ON" if strangers else "OFF", True)]

    def _person_state(self, person_id: str, present: dict[str, dict[str, tuple[int, str]]]) -> list:
        seen = [(here[person_id][0], cam) for cam, here in present.items() if person_id in here]
        base = f"{self.p}/people/{person_id}"
        last = max(seen) if seen else None
        attrs = {"camera": last[1], "last_seen_ms": last[0]} if last else {}
        return [self._publish(f"{base}/state", "ON" if seen else "OFF", True),
                self._publish(f"{base}/attributes", json.dumps(attrs), True)]

    def _health(self) -> dict[str, Any]:
        st = read_status(self.r, self.s, self.index)
        return {"results": st.results, "events": st.events, "deadletters": st.deadletters, "workers": len(st.workers),
                "cameras": {c.camera: {"lag": c.lag, "pending": c.pending, "lost": c.lost} for c in st.cameras}}

    # --- Home Assistant discovery -----------------------------------------------------------------------
    def _discovery(self, kind: str, object_id: str, config: dict[str, Any] | None, camera: str = "") -> None:
        """Announce one entity (``config`` None: withdraw it); a camera's entities are available only while the
        camera's frames are answered."""
        prefix = self.s.mqtt_discovery_prefix.rstrip("/")
        if not prefix:
            return
        device = {"identifiers": [self.node], "name": f"facestream {self.s.key_prefix}", "manufacturer": "facestream",
                  "sw_version": VERSION}
        available = [{"topic": f"{self.p}/status"}] + ([{"topic": f"{self.p}/cameras/{camera}/availability"}]
                                                        if camera else [])
        entity = f"{self.node}_{object_id}"
        body = "" if config is None else json.dumps({
            **config, "unique_id": entity, "default_entity_id": f"{kind}.{entity}", "object_id": entity,
            "availability": available, "availability_mode": "all", "device": device, "origin": ORIGIN})
        self._publish(f"{prefix}/{kind}/{self.node}/{object_id}/config", body, retain=True)

    def _announce_camera(self, camera: str) -> None:
        if camera in self.cameras:
            return
        self.cameras.add(camera)
        base = f"{self.p}/cameras/{camera}"
        self._discovery("sensor", f"{camera}_people", {
            "name": f"{camera} people in view", "state_topic": f"{base}/count", "json_attributes_topic": f"{base}/people",
            "icon": "mdi:account-group", "state_class": "measurement", "unit_of_measurement": "people"}, camera)
        self._discovery("binary_sensor", f"{camera}_stranger", {
            "name": f"{camera} stranger in view", "state_topic": f"{base}/stranger", "device_class": "occupancy"}, camera)
        self._camera_state(camera, self._present(camera))  # a state from the start, not "unknown" until an event

    def sync_discovery(self) -> None:
        """Announce every enrolled person and camera, each with its current state (a person not in view: off);
        withdraw people deleted since."""
        for camera in cameras(self.r, self.keys)[0]:
            self._announce_camera(camera)
        people = {p.person_id: p.name for p in Gallery(self.index, self.s).people()}
        new = set(people) - self.people
        present = {cam: self._present(cam) for cam in self.cameras} if new else {}
        for pid, name in people.items():
            base = f"{self.p}/people/{pid}"
            self._discovery("binary_sensor", f"{pid}_presence", {
                "name": f"{name} in view", "state_topic": f"{base}/state", "json_attributes_topic": f"{base}/attributes",
                "device_class": "presence"})
            if pid in new:
                self._person_state(pid, present)
        for pid in self.people - set(people):
            self._discovery("binary_sensor", f"{pid}_presence", None)
            self._publish(f"{self.p}/people/{pid}/state", "", retain=True)  # an empty retained message clears it
            self._publish(f"{self.p}/people/{pid}/attributes", "", retain=True)
        self.people = set(people)


def _password(s: Settings) -> str:
    if s.mqtt_password_file is None:
        raise FacestreamError("mqtt_username needs mqtt_password_file (the password is read from a file, never a setting)")
    try:
        return s.mqtt_password_file.read_text().strip()
    except OSError as e:
        raise FacestreamError(f"cannot read mqtt_password_file {s.mqtt_password_file}: {e.strerror}") from None
