"""The main job on the embedded default: a whole pipeline on a sample video, no camera, no Docker.

Sample data, first found wins:
1. the shared Hamilton clip + gallery (the ``faces_dir`` setting, default ``../shared/data/faces``);
2. the photos that ship in the face_recognition 1.3.0 sdist (scripts/setup.sh puts them in
   ``.facestream/samples``), from which a short video is built here: faces of Obama and Biden
   alternate, both enrolled from other photos of them.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import redis

from facestream.app.stack.local import Answers, LocalPipeline, enroll_people
from facestream.config import Settings
from facestream.consumer.auth import Users, login_hint
from facestream.errors import FacestreamError
from facestream.keys import Keys
from facestream.models.store.gallery import Gallery
from facestream.producer.capture import Producer
from facestream.records import IdentityEvent
from facestream.server import connect, connect_index, port_in_use, redis_cli, resolve_url

REPO = Path(__file__).resolve().parents[3]  # facestream/app/stack/demo.py -> the checkout
SAMPLES = REPO / ".facestream" / "samples"
CLIP_PEOPLE = ("Lin-Manuel_Miranda", "Alex_Lacamoire", "Barack_Obama")
CAMERA = "demo"


@dataclass
class Sample:
    video: Path
    people: list[Path]  # one folder of images per person
    description: str


@dataclass
class DemoReport:
    frames: int = 0
    results: int = 0
    deadletters: int = 0
    named: dict[str, int] = field(default_factory=dict)  # name → frames
    events: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, frames: int, got: Answers, events: list[str]) -> DemoReport:
        named: dict[str, int] = {}
        for _, res in got.results:
            for name in set(res.names):
                named[name] = named.get(name, 0) + 1
        return cls(frames, len(got.results), got.deadletters, named, events)

    @property
    def complete(self) -> bool:
        return self.results + self.deadletters >= self.frames

    def lines(self) -> list[str]:
        return [f"frames {self.frames}: {self.results} results, {self.deadletters} dead letters",
                *(f"  {name}: in {n} frames" for name, n in sorted(self.named.items(), key=lambda kv: -kv[1])),
                "events: " + ("; ".join(self.events) or "none")]


def find_sample(faces: Path) -> Sample:
    """The shared Hamilton clip and its people under ``faces``, else a sample built from the sdist photos."""
    clip = faces / "videos" / "hamilton_white_house_2009.mp4"
    if clip.is_file() and all((faces / "gallery" / p).is_dir() for p in CLIP_PEOPLE):
        return Sample(clip, [faces / "gallery" / p for p in CLIP_PEOPLE], f"Hamilton clip from {faces}")
    return build_sdist_sample(SAMPLES)


def clip_people(clip: Path, faces: Path) -> list[Path]:
    """The gallery folders of the people a clip's ``labels.json`` (beside it) says are enrolled: what
    ``facestream bench CLIP`` enrolls when no ``--enroll`` is given. Empty without labels."""
    labels = clip.parent / "labels.json"
    try:
        names = json.loads(labels.read_text()).get(clip.name, {}).get("enrolled_identities", [])
    except (OSError, ValueError, AttributeError):
        return []
    return [faces / "gallery" / n for n in names if (faces / "gallery" / n).is_dir()]


def build_sdist_sample(root: Path) -> Sample:
    """A 6 s video from face_recognition's own test photos, and a gallery from other photos of the same people."""
    imgs = root / "test_images"
    need = ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg"]
    if not all((imgs / n).is_file() for n in need):
        raise FacestreamError(f"no sample data: neither the shared faces nor {imgs} (run scripts/setup.sh)")
    gallery = root / "gallery"
    for person, src in (("Barack_Obama", "obama.jpg"), ("Joe_Biden", "biden.jpg")):
        (gallery / person).mkdir(parents=True, exist_ok=True)
        (gallery / person / src).write_bytes((imgs / src).read_bytes())
    video = root / "sample.mp4"
    if not video.is_file():
        w, h, fps = 640, 360, 15
        out = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
        for name in ("obama2.jpg", "biden.jpg", "obama3.jpg"):
            img = cv2.imread(str(imgs / name))
            for i in range(2 * fps):  # 2 s per photo with a slow zoom, so frames differ
                zoom = 1.0 + 0.1 * i / (2 * fps)
                canvas = np.full((h, w, 3), 40, np.uint8)
                s = min(w / img.shape[1], h / img.shape[0]) * zoom * 0.9
                small = cv2.resize(img, (int(img.shape[1] * s), int(img.shape[0] * s)))
                y, x = max(0, (h - small.shape[0]) // 2), max(0, (w - small.shape[1]) // 2)
                crop = small[: h - y, : w - x]
                canvas[y : y + crop.shape[0], x : x + crop.shape[1]] = crop
                out.write(canvas)
        out.release()
    return Sample(video, [gallery / "Barack_Obama", gallery / "Joe_Biden"], "photos from the face_recognition sdist")


def run_demo(settings: Settings, say: Callable[[str], None], workers: int = 1, dashboard_port: int = 8080,
             keep_running: bool = True, live_fps: float = 4.0) -> DemoReport:
    """Enroll the sample gallery, start workers and the dashboard, play the sample video once and wait
    for every answer; then, unless ``keep_running`` is False, loop the video at ``live_fps`` until Ctrl-C."""
    url = resolve_url(settings)
    client = connect(settings, url)
    keys = Keys(settings.key_prefix)
    sample = find_sample(settings.faces_dir)
    say(f"sample: {sample.description}")
    enroll_people(Gallery(connect_index(settings, client), settings), sample.people, settings, say)
    client.delete(keys.frames(CAMERA), keys.presence(CAMERA))
    since = str(int(time.time() * 1000))  # entries of this run: ids are append times in ms
    if dashboard_port and port_in_use(dashboard_port):
        raise FacestreamError(f"the dashboard's port {dashboard_port} is in use; choose another with --port (0: no dashboard)")
    say(f"inspect the results: {redis_cli(settings)} XREVRANGE '{keys.results(CAMERA)}' + - COUNT 1")
    report = DemoReport()
    with LocalPipeline(settings, url, "demo", workers, dashboard_port) as local:
        say(f"logs of the worker(s) and dashboard: {local.logs}/demo-*.log")
        dash_url = f"http://127.0.0.1:{dashboard_port}/"
        if dashboard_port:
            users = Users.of(settings)
            users.ensure_admin()
            say(f"dashboard: {dash_url}  {login_hint(users, True)}")
        try:
            say(f"playing {sample.video.name} into {keys.frames(CAMERA)} with {workers} worker(s)")
            sent = Producer(client, settings, CAMERA, str(sample.video)).run().sent
            report = DemoReport.of(sent, local.wait_answers(client, CAMERA, sent, since, timeout_s=180),
                                   _events(client, keys, since))
            for line in report.lines():
                say(line)
            if keep_running:
                say(f"looping the sample at {live_fps:g} fps until Ctrl-C; watch it live at {dash_url}")
                Producer(client, settings, CAMERA, str(sample.video), fps=live_fps, loop=True).run()
        except KeyboardInterrupt:
            pass
    return report


def _events(client: redis.Redis, keys: Keys, since: str) -> list[str]:
    events = (IdentityEvent.from_fields(f) for _, f in client.xrange(keys.events(CAMERA), since))
    return [f"{ev.kind} {ev.name}" for ev in events]
