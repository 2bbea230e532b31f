"""A real Home Assistant (Core 2024.3.3, pinned in its own venv by ``scripts/setup.sh --test``) against the MQTT
bridge, a real mosquitto and the pipeline on the Hamilton clip: the entity ids docs/home-assistant.md documents, their
device classes, presence on when Miranda appears and off once the camera falls silent (no worker left to
say so), the stranger sensor, and no word in Home Assistant's log about facestream's payloads."""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest
from conftest import REPO, free_port
from test_mqtt import PASSWORD, USER, broker, heard  # noqa: F401 - the broker fixture and its listener

from facestream.keys import Keys
from facestream.presence import CAMERA_SILENT
from facestream.records import IdentityEvent

HA_VENV = Path(os.environ.get("FACESTREAM_HA_VENV", Path.home() / ".cache/facestream/homeassistant-2024.3.3"))
LIN = "Lin-Manuel_Miranda"
CAMERA = "door"  # the README's examples: key prefix fs, camera door


class HomeAssistant:
    """``hass`` on a free loopback port with the MQTT integration pointed at the test's broker, onboarded
    (an owner and an access token, as the first-run page makes them)."""

    def __init__(self, folder: Path, broker_port: int):
        self.folder, self.port, self.token = folder, free_port(), ""
        (folder / ".storage").mkdir(parents=True)
        (folder / "configuration.yaml").write_text(
            "homeassistant:\n  name: facestream test\n  latitude: 0\n  longitude: 0\n  elevation: 0\n"
            "  unit_system: metric\n  time_zone: UTC\n  country: GB\n  currency: EUR\n"
            f"http:\n  server_host: 127.0.0.1\n  server_port: {self.port}\napi:\nonboarding:\n"
            "logger:\n  default: warning\n")
        entry = {"entry_id": "facestreamtestmqtt", "version": 1, "minor_version": 1, "domain": "mqtt",
                 "title": "127.0.0.1", "options": {}, "pref_disable_new_entities": False, "pref_disable_polling": False,
                 "source": "user", "unique_id": None, "disabled_by": None,
                 "data": {"broker": "127.0.0.1", "port": broker_port, "username": USER, "password": PASSWORD,
                          "discovery": True, "discovery_prefix": "homeassistant"}}
        (folder / ".storage" / "core.config_entries").write_text(json.dumps(
            {"version": 1, "minor_version": 1, "key": "core.config_entries", "data": {"entries": [entry]}}))
        self.log = folder / "hass.out"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout_s: float = 180) -> None:
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen([str(HA_VENV / "bin" / "hass"), "-c", str(self.folder), "--skip-pip"],
                                         stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            try:
                urllib.request.urlopen(self.url("/api/onboarding"), timeout=2).read()
                break
            except OSError:
                time.sleep(0.5)
        else:
            raise AssertionError(f"Home Assistant did not answer within {timeout_s:.0f} s")
        owner = self._post("/api/onboarding/users", json.dumps({
            "client_id": self.url("/"), "name": "owner", "username": "owner", "password": "owner-password-1",
            "language": "en"}).encode(), "application/json")
        token = self._post("/auth/token", f"grant_type=authorization_code&code={owner['auth_code']}&client_id="
                           f"{self.url('/')}".encode(), "application/x-www-form-urlencoded")
        self.token = token["access_token"]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _post(self, path: str, body: bytes, kind: str) -> dict:
        req = urllib.request.Request(self.url(path), body, {"Content-Type": kind})
        return json.loads(urllib.request.urlopen(req, timeout=10).read())

    def states(self) -> dict[str, dict]:
        req = urllib.request.Request(self.url("/api/states"), headers={"Authorization": f"Bearer {self.token}"})
        return {s["entity_id"]: s for s in json.loads(urllib.request.urlopen(req, timeout=10).read())}

    def state(self, entity_id: str) -> str | None:
        got = self.states().get(entity_id)
        return got["state"] if got else None

    def complaints(self) -> list[str]:
        """Home Assistant's warnings and errors about MQTT discovery or facestream's entities."""
        return [line for line in self.log.read_text(errors="replace").splitlines()
                if re.search(r"\b(WARNING|ERROR)\b", line) and re.search(r"facestream|components\.mqtt", line)]


@pytest.fixture
def home_assistant(broker, tmp_path) -> Iterator[HomeAssistant]:  # noqa: F811 - the broker fixture
    if not (HA_VENV / "bin" / "hass").exists():
        why = f"Home Assistant not installed at {HA_VENV} (scripts/setup.sh --test installs it)"
        if os.environ.get("CI"):
            pytest.fail(why)  # CI installs it: its absence is a failure
        pytest.skip(why)
    ha = HomeAssistant(tmp_path / "ha", broker.port)
    ha.start()
    yield ha
    ha.stop()


def _until(what: str, ok, timeout_s: float) -> float:
    """Wait for ``ok()``; the seconds it took."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if ok():
            return time.monotonic() - t0
        time.sleep(0.25)
    raise AssertionError(f"not within {timeout_s:.0f} s: {what}")


def _documented_entity_ids() -> set[str]:
    text = (REPO / "docs" / "home-assistant.md").read_text()
    return set(re.findall(r"\b(?:binary_sensor|sensor)\.facestream_fs_[a-z0-9_]+\b", text))


def test_home_assistant_sees_the_documented_entities_and_presence_that_ends(
        r, settings, faces_dir, broker, home_assistant, tmp_path):  # noqa: F811 - the broker fixture
    from facestream.consumer.mqtt import MqttBridge
    from facestream.gears.worker import Worker
    from facestream.models.curation.enroll import enroll, plan
    from facestream.models.store.gallery import Gallery
    from facestream.models.vision.analyzer import FaceAnalyzer
    from facestream.producer.capture import Producer

    ha = home_assistant
    (tmp_path / "pw").write_text(PASSWORD)
    s = settings.replace(key_prefix="fs", block_ms=200, absent_after_s=1.5, mqtt_port=broker.port, mqtt_username=USER,
                         mqtt_password_file=tmp_path / "pw")
    keys = Keys(s.key_prefix)
    for key in r.scan_iter(match="fs:*"):
        r.delete(key)
    documented = _documented_entity_ids()
    presence, people, stranger = (f"binary_sensor.facestream_fs_{LIN.lower().replace('-', '_')}_presence",
                                  f"sensor.facestream_fs_{CAMERA}_people", f"binary_sensor.facestream_fs_{CAMERA}_stranger")
    assert {presence, people, stranger} <= documented, f"docs/home-assistant.md documents {sorted(documented)}"
    enroll(Gallery(r, s), plan([faces_dir / "gallery" / LIN])[0], s)
    producer = Producer(r, s, CAMERA, str(faces_dir / "videos" / "hamilton_white_house_2009.mp4"), fps=6, loop=True)
    bridge = MqttBridge(r, s)
    bridge.connect()
    worker = Worker(r, s, FaceAnalyzer(s), name="ha-w")
    threads = {x: threading.Thread(target=x.run, daemon=True) for x in (bridge, worker, producer)}
    try:
        threads[bridge].start()
        _until("his presence entity, off before he is first seen", lambda: ha.state(presence) == "off", 60)
        threads[producer].start()
        _until("Home Assistant has every documented entity", lambda: documented <= set(ha.states()), 60)
        states = ha.states()
        assert states[presence]["attributes"]["device_class"] == "presence"
        assert states[stranger]["attributes"]["device_class"] == "occupancy"
        assert states[people]["attributes"]["state_class"] == "measurement"
        threads[worker].start()
        took = _until("Miranda in view", lambda: ha.state(presence) == "on", 120)
        print(f"presence on {took:.1f} s after the worker started")
        _until("the stranger sensor on", lambda: ha.state(stranger) == "on", 120)
        _until("the newest frame names him", lambda: ha.state(presence) == "on" and _newest_names(r, keys, LIN), 120)
        for x in (producer, worker):  # the camera falls silent and no worker is left: only the bridge can tell
            x.stop()
            threads[x].join(30)
        stopped = time.monotonic()
        _until("presence off once the camera is silent", lambda: ha.state(presence) == "off", s.absent_after_s + 5)
        print(f"presence off {time.monotonic() - stopped:.1f} s after the producer and the worker stopped")
        _until("the camera's entities unavailable", lambda: ha.state(people) == "unavailable", 10)
        leaves = [IdentityEvent.from_fields(f) for _, f in r.xrange(keys.events(CAMERA))]
        last = [e for e in leaves if e.person_id == LIN][-1]
        assert (last.kind, last.reason) == ("leave", CAMERA_SILENT), last
        assert "Skipping pip installation" in ha.log.read_text(), "Home Assistant's warnings are read from here"
        assert not ha.complaints(), ha.complaints()
    finally:
        for x in (producer, worker, bridge):
            x.stop()
        for t in threads.values():
            if t.is_alive():
                t.join(30)
        for key in r.scan_iter(match="fs:*"):
            r.delete(key)



def _newest_names(r, keys: Keys, person_id: str) -> bool:
    """Whether the camera's newest answered frame names ``person_id`` (stopped now, no later frame can say he left)."""
    from facestream.records import FrameResult

    newest = r.xrevrange(keys.results(CAMERA), count=1)
    return bool(newest) and person_id in {f.person_id for f in FrameResult.from_fields(newest[0][1]).faces}


NEWEST = "2026.2.3"  # the newest Home Assistant on PyPI here (Python 3.13: its wheel is read, not run)


def _vocabulary() -> tuple[set[str], set[str], set[str]]:
    """The keys MQTT discovery knows in the newest release: entity, device and origin keys (its abbreviations
    module lists every one)."""
    import ast
    import zipfile

    wheels = sorted((Path.home() / ".cache/facestream/homeassistant-wheels").glob(f"homeassistant-{NEWEST}-*.whl"))
    if not wheels:
        why = f"Home Assistant {NEWEST}'s wheel not in ~/.cache/facestream/homeassistant-wheels (setup.sh --test)"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    with zipfile.ZipFile(wheels[0]) as z:
        source = z.read("homeassistant/components/mqtt/abbreviations.py").decode()
    tables = {n.targets[0].id: ast.literal_eval(n.value) for n in ast.parse(source).body if isinstance(n, ast.Assign)}
    return tuple(set(tables[t].values()) for t in ("ABBREVIATIONS", "DEVICE_ABBREVIATIONS", "ORIGIN_ABBREVIATIONS"))


def test_discovery_payloads_use_only_keys_the_newest_home_assistant_knows(r, settings, broker, heard, tmp_path):  # noqa: F811
    """Home Assistant drops the keys it does not know without a word (its discovery schemas remove extras): a
    key it no longer knows is a feature silently lost. ``object_id`` alone may go (2026.4 drops it; it is sent
    for the releases before ``default_entity_id``)."""
    from facestream.consumer.mqtt import MqttBridge
    from facestream.models.store.gallery import FaceEntry, Gallery

    import numpy as np

    entity_keys, device_keys, origin_keys = _vocabulary()
    assert {"default_entity_id", "origin", "state_class", "availability_mode"} <= entity_keys
    (tmp_path / "pw").write_text(PASSWORD)
    s = settings.replace(mqtt_port=broker.port, mqtt_username=USER, mqtt_password_file=tmp_path / "pw")
    Gallery(r, s).add_person("ann", "Ann", [FaceEntry(np.eye(128, dtype=np.float32)[0], "ann.jpg")])
    r.xadd(Keys(s.key_prefix).frames(CAMERA), {"x": "1"})  # a camera to announce
    bridge = MqttBridge(r, s)
    bridge.connect()
    bridge.sync_discovery()
    deadline = time.monotonic() + 10
    while len([m for m in heard.on("homeassistant/") if m[1]]) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    bridge.stop()
    bridge.run()  # stops at once: says offline and disconnects
    configs = {m[0]: json.loads(m[1]) for m in heard.on("homeassistant/") if m[1]}
    assert len(configs) == 3, sorted(configs)
    for topic, config in configs.items():
        assert set(config) - {"object_id"} <= entity_keys, (topic, set(config) - entity_keys)
        assert set(config["device"]) <= device_keys and set(config["origin"]) <= origin_keys, topic
        assert all(set(a) <= entity_keys for a in config["availability"]), topic
        kind = topic.split("/")[1]
        assert config["default_entity_id"] == f"{kind}.{config['object_id']}", topic
