"""``facestream mqtt`` against a real broker (Debian's mosquitto, started here on a free loopback port)."""

from __future__ import annotations

import getpass
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pytest
from conftest import free_port

from facestream.keys import Keys
from facestream.records import IdentityEvent

FACESTREAM = [sys.executable, "-m", "facestream"]
USER, PASSWORD = "cams", "broker-secret-1"


@dataclass
class Broker:
    port: int
    folder: Path
    proc: subprocess.Popen | None = None

    def start(self) -> None:
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.proc = subprocess.Popen([exe, "-c", str(self.folder / "mosquitto.conf")], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                import socket

                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("mosquitto did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture
def broker(tmp_path) -> Iterator[Broker]:
    if not (shutil.which("mosquitto") or os.path.exists("/usr/sbin/mosquitto")):
        pytest.skip("mosquitto not installed (scripts/setup.sh --test installs it as root)")
    b = Broker(free_port(), tmp_path / "broker")
    b.folder.mkdir()
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(b.folder / "passwd"), USER, PASSWORD], check=True)
    (b.folder / "mosquitto.conf").write_text(
        f"listener {b.port} 127.0.0.1\nallow_anonymous false\npassword_file {b.folder / 'passwd'}\npersistence false\n"
        f"user {getpass.getuser()}\n")  # as root it would switch to 'mosquitto', who cannot read the test's folder
    b.start()
    yield b
    b.stop()


@dataclass
class Heard:
    """Every message seen on ``#`` by a subscriber that resubscribes after each reconnect."""

    messages: list[tuple[str, bytes, bool, bool]] = field(default_factory=list)  # topic, payload, retain, dup

    def on(self, prefix: str) -> list[tuple[str, bytes, bool, bool]]:
        return [m for m in list(self.messages) if m[0].startswith(prefix)]

    def last(self, topic: str) -> bytes | None:
        said = [m[1] for m in list(self.messages) if m[0] == topic]
        return said[-1] if said else None

    def events(self, camera: str) -> list[dict]:
        return [json.loads(m[1]) for m in self.on(f"facestream/events/{camera}")]


@pytest.fixture
def heard(broker) -> Iterator[Heard]:
    import paho.mqtt.client as mqtt

    h = Heard()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="listener")
    c.username_pw_set(USER, PASSWORD)
    c.on_connect = lambda client, *_: client.subscribe("#", qos=1)
    c.on_message = lambda _c, _u, m: h.messages.append((m.topic, m.payload, m.retain, m.dup))
    c.reconnect_delay_set(0.2, 1)
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    yield h
    c.loop_stop()
    c.disconnect()


def _env(settings, broker: Broker, tmp_path: Path, password: str = PASSWORD) -> dict[str, str]:
    pw = tmp_path / "mqtt-password"
    pw.write_text(password + "\n")
    return {**os.environ, "FACESTREAM_REDIS_URL": settings.redis_url, "FACESTREAM_KEY_PREFIX": settings.key_prefix,
            "FACESTREAM_DATA_DIR": str(tmp_path / "data"), "FACESTREAM_MQTT_PORT": str(broker.port),
            "FACESTREAM_MQTT_USERNAME": USER, "FACESTREAM_MQTT_PASSWORD_FILE": str(pw)}


def _until(what: str, ok, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ok():
            return
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout_s:.0f} s: {what}")


def test_the_clip_gives_documented_events_presence_and_discovery(r, settings, faces_dir, broker, heard, tmp_path):
    from facestream.consumer.mqtt import MqttBridge
    from facestream.gears.worker import Worker
    from facestream.models.curation.enroll import enroll, plan
    from facestream.models.store.gallery import Gallery
    from facestream.models.vision.analyzer import FaceAnalyzer
    from facestream.producer.capture import Producer

    lin = "Lin-Manuel_Miranda"
    s = settings.replace(block_ms=200, absent_after_s=1.5, mqtt_port=broker.port, mqtt_username=USER,
                         mqtt_password_file=tmp_path / "pw")
    (tmp_path / "pw").write_text(PASSWORD)
    enroll(Gallery(r, s), plan([faces_dir / "gallery" / lin])[0], s)
    bridge = MqttBridge(r, s)
    bridge.connect()
    worker = Worker(r, s, FaceAnalyzer(s), name="mqtt-w")
    producer = Producer(r, s, "stage", str(faces_dir / "videos" / "hamilton_white_house_2009.mp4"), fps=6, loop=True)
    threads = [threading.Thread(target=t.run, daemon=True) for t in (bridge, worker, producer)]
    for t in threads:
        t.start()
    node = f"facestream_{s.key_prefix}"
    try:
        kinds = lambda who: [e["kind"] for e in heard.events("stage") if who(e)]  # noqa: E731
        _until("Miranda appears and leaves", lambda: {"appear", "leave"} <= set(kinds(lambda e: e["person_id"] == lin)), 120)
        _until("a stranger appears and leaves", lambda: {"appear", "leave"} <= set(kinds(lambda e: e["visitor"])), 60)
        flags = lambda: [m[1] for m in heard.on("facestream/cameras/stage/stranger")]  # noqa: E731
        _until("the stranger sensor on, then off", lambda: b"ON" in flags() and b"OFF" in flags()[flags().index(b"ON"):], 120)
    finally:
        for x in (producer, worker, bridge):
            x.stop()
        for t in threads:
            t.join(30)
    events = heard.events("stage")
    first = next(e for e in events if e["person_id"] == lin)
    assert set(first) == {"id", "kind", "camera", "person_id", "name", "visitor", "ts_ms", "frame_id", "reason", "redelivered"}
    assert (first["kind"], first["name"], first["camera"], first["redelivered"]) == ("appear", "Lin-Manuel Miranda", "stage", False)
    stranger = next(e for e in events if e["visitor"])
    assert stranger["name"] == "unknown" and stranger["person_id"] == "" and stranger["visitor"].startswith("v-")
    assert len({e["id"] for e in events}) == len(events), "an event published twice"
    states = [m[1] for m in heard.on(f"facestream/people/{lin}/state")]
    assert b"ON" in states and b"OFF" in states[states.index(b"ON"):], states  # in view, then not
    config = {m[0]: json.loads(m[1]) for m in heard.on("homeassistant/") if m[1]}
    presence = config[f"homeassistant/binary_sensor/{node}/{lin}_presence/config"]
    assert presence["state_topic"] == f"facestream/people/{lin}/state" and presence["device"]["identifiers"] == [node]
    assert presence["availability"] == [{"topic": "facestream/status"}]
    assert config[f"homeassistant/binary_sensor/{node}/stage_stranger/config"]["state_topic"] == "facestream/cameras/stage/stranger"
    assert config[f"homeassistant/sensor/{node}/stage_people/config"]["state_topic"] == "facestream/cameras/stage/count"
    assert heard.last("facestream/status") == b"offline"  # said when it stopped


def _events(r, keys: Keys, n: int, start: int) -> list[str]:
    ids = []
    for i in range(start, start + n):
        ev = IdentityEvent("appear" if i % 2 == 0 else "leave", "door", "ann", "Ann", 1_700_000_000_000 + i, f"{i}-0")
        ids.append(r.xadd(keys.events("door"), ev.to_fields()).decode())
    return ids


def test_bridge_and_broker_restarts_lose_nothing_and_a_bad_password_is_one_line(r, settings, broker, heard, tmp_path):
    env = _env(settings, broker, tmp_path)
    keys = Keys(settings.key_prefix)

    def start() -> subprocess.Popen:
        p = subprocess.Popen([*FACESTREAM, "mqtt"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        _until("the bridge is online", lambda: heard.last("facestream/status") == b"online")
        return p

    heard.messages.clear()
    bridge = start()
    sent = _events(r, keys, 200, 0)  # a camera the bridge finds while running: its events from the first
    _until("its consumer group exists", lambda: any(g["name"] == b"mqtt" for g in r.xinfo_groups(keys.events("door"))))
    _until("some events published", lambda: len(heard.events("door")) >= 20)
    bridge.kill()  # mid-run: what it had read but not acknowledged is published by the next one
    bridge.wait()
    bridge = start()
    sent += _events(r, keys, 50, 200)
    try:
        _until("every event published", lambda: {e["id"] for e in heard.events("door")} >= set(sent), 60)
    except AssertionError:
        bridge.kill()
        missing = set(sent) - {e["id"] for e in heard.events("door")}
        raise AssertionError(f"{len(missing)} of {len(sent)} unpublished; bridge said: {bridge.communicate()[0][-3000:]}")
    broker.stop()
    time.sleep(1)
    broker.start()
    _until("the bridge is back online", lambda: heard.last("facestream/status") == b"online", 30)
    sent += _events(r, keys, 20, 250)
    _until("events after the broker restart", lambda: {e["id"] for e in heard.events("door")} >= set(sent), 60)
    bridge.send_signal(signal.SIGTERM)
    out = bridge.communicate(timeout=30)[0]
    assert bridge.returncode == 0, out
    by_id: dict[str, list[dict]] = {}
    for e in heard.events("door"):
        by_id.setdefault(e["id"], []).append(e)
    twice = {i: es for i, es in by_id.items() if len(es) > 1}
    assert all(any(e["redelivered"] for e in es) for es in twice.values()), "published twice without saying so"
    assert len(twice) <= 100, f"{len(twice)} redelivered: more than one read batch"
    assert r.xpending(keys.events("door"), "mqtt")["pending"] == 0
    # A wrong password: one line, non-zero, the password nowhere.
    bad = subprocess.run([*FACESTREAM, "mqtt"], env=_env(settings, broker, tmp_path, "wrong-password-9"),
                         capture_output=True, text=True, timeout=60)
    said = (bad.stdout + bad.stderr).strip()
    assert bad.returncode != 0 and "refused the connection" in said and "Traceback" not in said, said
    assert "wrong-password-9" not in said and PASSWORD not in said


def test_a_deleted_person_s_entity_is_withdrawn(r, settings, broker, heard, tmp_path):
    import numpy as np

    from facestream.consumer.mqtt import MqttBridge
    from facestream.models.store.gallery import FaceEntry, Gallery

    (tmp_path / "pw").write_text(PASSWORD)
    s = settings.replace(mqtt_port=broker.port, mqtt_username=USER, mqtt_password_file=tmp_path / "pw")
    Gallery(r, s).add_person("ann", "Ann", [FaceEntry(np.eye(128, dtype=np.float32)[0], "x")])
    bridge = MqttBridge(r, s)
    bridge.connect()
    topic = f"homeassistant/binary_sensor/facestream_{s.key_prefix}/ann_presence/config"
    bridge.sync_discovery()
    _until("ann announced", lambda: any(m[0] == topic and m[1] for m in heard.messages), 10)
    Gallery(r, s).delete("ann")
    bridge.sync_discovery()
    _until("ann withdrawn, her state cleared", lambda: heard.last(topic) == b"" and
           heard.last("facestream/people/ann/state") == b"", 10)
    bridge.stop()
    bridge.run()  # stops at once: says offline and disconnects
