"""``facestream bench --strangers 10,100,1000``: how many faces and tracks of strangers get named, by gallery size.

A 1080p walk-by of strangers only (the synthetic camera of :mod:`facestream.app.bench.detection`: faces
of ``probes/_unknown/`` pasted onto real scenes, moving, 32-192 px, ~5 at a time, 15 fps) is played like
a camera through the live pipeline (``facestream work``, default settings) against galleries of N
people enrolled from ``verification/``, none of them anyone in the clip (identities from
``manifest.csv``). Every face named is a false name. Galleries grow in place: the first 10 people,
then 90 more, and so on, so each person is enrolled once. Everything runs under a scratch key prefix
(``<key_prefix>_bench``), wiped before and after.
"""

from __future__ import annotations

import csv
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from facestream.app.bench.clip import CAMERA, all_answered, scratch
from facestream.app.bench.detection import synthetic, write_video
from facestream.app.stack.local import LocalPipeline
from facestream.commands import ensure_group
from facestream.config import Settings
from facestream.errors import FacestreamError
from facestream.keys import Keys
from facestream.models.curation.enroll import Item, enroll
from facestream.models.evaluation.identify import UNKNOWN_DIR, identity_of
from facestream.producer.capture import Producer
from facestream.records import UNKNOWN, FrameResult


@dataclass
class StrangerFigures:
    """One gallery size: what the walk-by of strangers came to."""

    people: int  # enrolled
    gallery_faces: int
    faces: int  # faces in the results
    named: int  # of them named (all falsely)
    tracks: int
    named_tracks: int  # tracks with a face named on at least one frame
    frames: int
    worst: list[str] = field(default_factory=list)  # the tracks named: as whom, on how many frames, how close

    def line(self) -> str:
        return (f"{self.people:6d} people ({self.gallery_faces} faces): {self.named}/{self.faces} stranger faces named "
                f"({self.named / max(1, self.faces):.2%}), {self.named_tracks}/{self.tracks} tracks named, "
                f"{self.frames} frames" + "".join(f"\n        {w}" for w in self.worst))


def distractors(faces_dir: Path) -> dict[str, list[Path]]:
    """The ``verification/`` photos by identity, less anyone among the strangers' photos (``probes/_unknown/``)."""
    rows = list(csv.DictReader((faces_dir / "manifest.csv").open()))
    strangers = {identity_of(r) for r in rows if r["identity"] == UNKNOWN_DIR}
    people: dict[str, list[Path]] = {}
    for r in rows:
        path = faces_dir / r["path"]
        if r["split"] == "pair_only" and identity_of(r) not in strangers and path.is_file():
            people.setdefault(identity_of(r), []).append(path)
    return people


def score(people: int, gallery_faces: int, results: list[FrameResult]) -> StrangerFigures:
    faces = [f for r in results for f in r.faces]
    tracks: dict[int, list] = {}
    for f in faces:
        if f.track_id is not None:
            tracks.setdefault(f.track_id, []).append(f)
    named = {t: [f for f in fs if f.person_id != UNKNOWN] for t, fs in tracks.items()}
    worst = [f"track {t}: named {fs[0].person_id} on {len(fs)} of {len(tracks[t])} frames, nearest "
             f"{min(f.distance for f in fs):.4f}" for t, fs in named.items() if fs]
    return StrangerFigures(people, gallery_faces, len(faces), sum(f.person_id != UNKNOWN for f in faces),
                           len(tracks), len(worst), len(results), worst)


def strangers_bench(settings: Settings, faces_dir: Path, sizes: list[int], frames: int = 150,
                    say: Callable[[str], None] = print) -> list[StrangerFigures]:
    """The walk-by of strangers against a gallery of each of ``sizes`` people (ascending)."""
    if not (faces_dir / "manifest.csv").is_file():
        raise FacestreamError(f"{faces_dir}: needs manifest.csv, verification/ and probes/_unknown/ (the shared faces)")
    pool = sorted(distractors(faces_dir).items())
    if max(sizes) > len(pool):
        raise FacestreamError(f"{faces_dir} has {len(pool)} people to enroll; asked for {max(sizes)}")
    out: list[StrangerFigures] = []
    with scratch(settings) as (s, url, client, keys, gallery), \
            tempfile.TemporaryDirectory(prefix="facestream-strangers-") as tmp:
        say(f"composing {frames} 1080p frames of strangers walking by")
        video = write_video(synthetic(s, faces_dir, frames)[0], Path(tmp) / "strangers.mp4")
        enrolled, faces = 0, 0
        for n in sorted(sizes):
            items = [Item(f"p{k:05d}", who, p) for k, (who, paths) in enumerate(pool[enrolled:n], enrolled)
                     for p in paths]
            faces += sum(enroll(gallery, items, s, workers=2).enrolled.values())
            enrolled = n
            say(f"enrolled {n} people ({faces} faces); playing the walk-by")
            out.append(score(n, faces, _play(s, url, client, keys, video)))
            say(out[-1].line())
    return out


def _play(s: Settings, url: str, client, keys: Keys, video: Path) -> list[FrameResult]:
    """The clip at its own 15 fps through one worker, like a camera; every frame's result, in order."""
    for key in (keys.frames(CAMERA), keys.results(CAMERA), keys.events(CAMERA), keys.presence(CAMERA)):
        client.delete(key)
    ensure_group(client, keys.frames(CAMERA), s.group)
    with LocalPipeline(s, url, "strangers") as local:
        local.wait_ready(client, CAMERA)
        sent = Producer(client, s, CAMERA, str(video), realtime=True).run().sent
        got = all_answered(local.wait_answers(client, CAMERA, sent), sent)
    return sorted((r for _, r in got.results), key=lambda r: r.seq)
