"""``facestream bench --gears``: the same clip through the in-server gear and through the runner, in one run.

One embedded server with RedisGears loaded (:class:`facestream.gearsbuild.GearsBuild`) holds both:
the runner's keys under ``<key_prefix>_runner`` (one ``facestream work`` process), the gear's under
``<key_prefix>_gear`` (registered by :func:`facestream.gears.loader.load`). The same people are enrolled
into both, the clip's frames are pushed at full speed into each in turn, and each result is compared
frame by frame (by ``seq``). The gear answers every frame alone (its Python 3.7 has no supervision or
trackers: no tracks, no balanced scan), so both run with tracking off and the ``fast`` profile: each
frame searched whole, every face embedded and named from that frame only. They should agree.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import redis

from facestream.app.bench.clip import Figures, answered_figures
from facestream.app.bench.localcluster import free_ports
from facestream.app.stack.local import Answers, LocalPipeline, enroll_people, wait_answers
from facestream.commands import ensure_group
from facestream.config import Settings
from facestream.errors import FacestreamError
from facestream.gears.loader import load
from facestream.gearsbuild import GearsBuild
from facestream.keys import Keys
from facestream.models.store.gallery import Gallery
from facestream.producer.capture import Producer
from facestream.records import Face, FrameResult
from facestream.server import EmbeddedRedis, connect

CAMERA = "clip"
BOX_PX = 2  #: boxes may differ by this much: the gear's Python 3.7 has older OpenCV/onnxruntime builds
DISTANCE = 0.01  #: and distances by this much (the threshold margin of a named face is ~0.1)
LATE_MARGIN_MS = 0.01  #: results keep their timings to 0.01 ms: a queue time this close to late_ms is not told apart


@dataclass
class GearComparison:
    runner: Figures
    gear: Figures
    runner_results: list[FrameResult]
    gear_results: list[FrameResult]
    differences: list[str] = field(default_factory=list)  #: one line per frame where they disagree
    uncompared: list[int] = field(default_factory=list)  #: seqs late on one path only (not comparable)

    def lines(self) -> list[str]:
        ratio = self.gear.fps / self.runner.fps if self.runner.fps else float("nan")
        return [*self.runner.lines(), *self.gear.lines(),
                f"gear / runner frames/s: {ratio:.2f}x; {self.agreement()} (late on one path: {self.uncompared[:10]})",
                *[f"  {d}" for d in self.differences[:10]]]

    def agreement(self) -> str:
        return (f"frames whose faces differ (count, box > {BOX_PX} px, person, reason, distance > {DISTANCE}): "
                f"{len(self.differences)} of {len(self.gear_results) - len(self.uncompared)} compared "
                f"({len(self.uncompared)} decided late on one path only, set aside: one view per face by design)")


def gear_vs_runner(settings: Settings, build: GearsBuild, clip: Path, people: list[Path],
                   max_frames: int | None = None, say: Callable[[str], None] = print) -> GearComparison:
    """Both paths on ``clip`` on a gear server of their own (started here, stopped after)."""
    with tempfile.TemporaryDirectory(prefix="facestream-gears-") as tmp:
        server = EmbeddedRedis(free_ports(1, 7400)[0], Path(tmp), gears=build)
        url = server.start(attached=True, wait_s=60)
        try:
            base = settings.replace(redis_url=url, index_url=None, data_dir=Path(tmp), tracking=False,
                                 detection="fast")
            runner_s, gear_s = (base.replace(key_prefix=f"{settings.key_prefix}_{p}") for p in ("runner", "gear"))
            client = connect(base, url)
            for s in (runner_s, gear_s):
                enroll_people(Gallery(client, s), people, s, say)
            runner, runner_got = _through_runner(runner_s, url, client, clip, max_frames, say)
            gear, gear_got = _through_gear(gear_s, client, clip, max_frames, say)
        finally:
            server.stop()
    runner_results = sorted((r for _, r in runner_got.results), key=lambda r: r.seq)
    gear_results = sorted((r for _, r in gear_got.results), key=lambda r: r.seq)
    uncompared = late_on_one_path(runner_got, gear_got, settings.late_ms)
    compared = [r for r in runner_results if r.seq not in uncompared]
    return GearComparison(runner, gear, runner_results, gear_results, differences(compared, gear_results), uncompared)


def _through_runner(s: Settings, url: str, client: redis.Redis, clip: Path, max_frames: int | None,
                    say: Callable[[str], None]) -> tuple[Figures, Answers]:
    ensure_group(client, Keys(s.key_prefix).frames(CAMERA), s.group)
    with LocalPipeline(s, url, "gears-bench-runner") as local:
        local.wait_ready(client, CAMERA)
        say("runner: playing the clip")
        sent = Producer(client, s, CAMERA, str(clip), realtime=False).run(max_frames).sent
        got = local.wait_answers(client, CAMERA, sent)
    return _checked("runner", s, got, sent)


def _through_gear(s: Settings, client: redis.Redis, clip: Path, max_frames: int | None,
                  say: Callable[[str], None]) -> tuple[Figures, Answers]:
    say("gear: " + load(client, s))
    keys = Keys(s.key_prefix)
    warm = Producer(client, s, "warmup", str(clip), realtime=False).run(1).sent  # models loaded before timing
    wait_answers(client, keys, "warmup", warm, timeout_s=120)
    say("gear: playing the clip")
    sent = Producer(client, s, CAMERA, str(clip), realtime=False).run(max_frames).sent
    return _checked("gear", s, wait_answers(client, keys, CAMERA, sent), sent)


def _checked(path: str, s: Settings, got: Answers, sent: int) -> tuple[Figures, Answers]:
    if len(got) < sent or not got.results:
        raise FacestreamError(f"{path}: {len(got.results)} results and {got.deadletters} dead letters for {sent} frames")
    fig = answered_figures(s, 1, None, got)
    fig.label = {"gear": "gear: RedisGears 1.2 inside redis-server",
                 "runner": f"runner: 1 facestream work process, {s.detect_threads} detect threads"}[path]
    return fig, got


def late_on_one_path(runner: Answers, gear: Answers, late_ms: int) -> list[int]:
    """Seqs of frames that one path decided late (taken up over ``late_ms`` after the frame was appended:
    one view per face, the result's ``queue`` timing) and the other on time (several views), or either too
    close to tell: their distances differ by design, not by the path."""
    def late(r: FrameResult) -> int:
        waited = r.timings.get("queue", 0.0)
        return 0 if waited < late_ms - LATE_MARGIN_MS else 1 if waited > late_ms + LATE_MARGIN_MS else -1

    gear_late = {r.seq: late(r) for _, r in gear.results}
    return sorted(r.seq for _, r in runner.results
                  if r.seq in gear_late and (late(r) != gear_late[r.seq] or gear_late[r.seq] < 0))


def differences(runner: list[FrameResult], gear: list[FrameResult]) -> list[str]:
    """Frames (by seq) whose faces differ: count, box beyond :data:`BOX_PX`, person, reason, or distance
    beyond :data:`DISTANCE`. Visitor ids and timings are left out (numbering and clocks of each run)."""
    by_seq = {r.seq: r for r in gear}
    out = [f"frame {r.seq}: no gear result" for r in runner if r.seq not in by_seq]
    for r in runner:
        g = by_seq.get(r.seq)
        if g is not None and not _same_faces(r.faces, g.faces):
            out.append(f"frame {r.seq}: runner {_show(r.faces)} / gear {_show(g.faces)}")
    return out


def _same_faces(a: list[Face], b: list[Face]) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(sorted(a, key=lambda f: f.box), sorted(b, key=lambda f: f.box)):
        if max(abs(p - q) for p, q in zip(x.box, y.box)) > BOX_PX or (x.person_id, x.reason) != (y.person_id, y.reason):
            return False
        if (x.distance is None) != (y.distance is None) or (x.distance is not None and y.distance is not None
                                                            and abs(x.distance - y.distance) > DISTANCE):
            return False
    return True


def _show(faces: list[Face]) -> str:
    return ", ".join(f"{f.person_id}/{f.reason}@{f.box}" + (f" d={f.distance}" if f.distance is not None else "")
                     for f in faces) or "no face"
