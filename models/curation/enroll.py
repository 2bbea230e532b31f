"""Enrollment: folders of ``<Person>/<images or videos>``, single images and videos → gallery faces.

Files are analysed in a process pool (models loaded once per process), a person is written in one
transaction once all of their files are done, so an interrupted run leaves complete people only.
Every file that gives no face is reported with the reason.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path
from typing import Callable, Iterable, Iterator

import cv2
import numpy as np

from facestream.config import Settings
from facestream.errors import BadFrame, ConfigError
from facestream.keys import check_id
from facestream.models.matcher import BLURRY, TOO_SMALL, TURNED, Policy
from facestream.models.store.gallery import FaceEntry, Gallery, display_name
from facestream.models.store.stamp import ModelStamp
from facestream.models.types import Detection, Quality
from facestream.models.vision.analyzer import FaceAnalyzer, main_face
from facestream.models.vision.embed import make_network
from facestream.models.vision.image import IMAGE_SUFFIXES, decode, thumbnail

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"}


@dataclass(frozen=True)
class Item:
    """One file to enroll for one person."""

    person_id: str
    name: str
    path: Path

    @property
    def is_video(self) -> bool:
        return self.path.suffix.lower() in VIDEO_SUFFIXES


@dataclass
class Outcome:
    """What one file gave: faces, or the reason it gave none."""

    item: Item
    faces: list[FaceEntry] = field(default_factory=list)
    skipped: str | None = None
    duplicates: int = 0


@dataclass
class Options:
    video_every_s: float = 0.2  # sample a video frame this often
    max_per_video: int = 15  # keep at most this many faces from one video
    dedupe: float = 0.02  # faces closer than this (squared L2) to one already kept are near-duplicates
    allow_several: bool = False  # several faces in an image: take the one nearest the centre
    still: bool = True  # enrollment quality (fallback detector, enroll_views); False: exactly what live frames get
    gate: bool = True  # refuse faces too small, blurred or turned to name (live's gates); False: keep every face


@dataclass
class Summary:
    enrolled: Counter = field(default_factory=Counter)  # person_id → faces written
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    duplicates: int = 0
    files: int = 0
    interrupted: bool = False

    def lines(self) -> Iterator[str]:
        yield (f"enrolled {sum(self.enrolled.values())} faces of {len(self.enrolled)} people from {self.files} files"
               f"; skipped {len(self.skipped)} files; {self.duplicates} near-duplicate faces dropped")
        for reason, n in Counter(r.split(":")[0] for _, r in self.skipped).most_common():
            yield f"  skipped, {reason}: {n}"
        for path, reason in self.skipped:
            yield f"    {path}: {reason}"
        if self.interrupted:
            yield "interrupted: the person in progress was not written; every person listed above is complete"


def person_id_of(folder_name: str) -> str:
    """A valid person id from a folder name (spaces and punctuation become _)."""
    return check_id("person", re.sub(r"[^A-Za-z0-9_-]+", "_", folder_name).strip("_")[:64] or "person")


def plan(inputs: Iterable[Path], person: str | None = None, name: str | None = None) -> tuple[list[Item], list[tuple[str, str]]]:
    """Expand inputs into items; files that are not images/videos are returned as skipped."""
    items: list[Item] = []
    skipped: list[tuple[str, str]] = []

    def add(pid: str, pname: str, f: Path) -> None:
        if f.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES:
            items.append(Item(pid, pname, f))
        elif not f.name.startswith("."):
            skipped.append((str(f), "not an image or video file"))

    for path in inputs:
        if not path.exists():
            raise ConfigError(f"{path} does not exist")
        if person:
            files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
            for f in files:
                add(check_id("person", person), name or person, f)
        elif path.is_dir() and not any(c.is_dir() for c in path.iterdir()):  # a folder of one person's files
            for f in sorted(p for p in path.iterdir() if p.is_file()):
                add(person_id_of(path.name), path.name.replace("_", " "), f)
        elif path.is_dir():
            for child in sorted(path.iterdir()):
                if child.is_dir():
                    pid = person_id_of(child.name)
                    for f in sorted(p for p in child.rglob("*") if p.is_file()):
                        add(pid, child.name.replace("_", " "), f)
                elif not child.name.startswith("."):
                    skipped.append((str(child), "not inside a <Person>/ folder (or use --person)"))
        else:
            raise ConfigError(f"{path} is a single file: say whose face it is with --person ID")
    items.sort(key=lambda i: (i.person_id, str(i.path)))
    return items, skipped


# --- per-file analysis, run in worker processes ----------------------------------------------------
_analyzer: FaceAnalyzer | None = None
_options = Options()


def _init(settings: Settings, options: Options) -> None:
    global _analyzer, _options
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    _analyzer, _options = FaceAnalyzer(settings), options


CHUNK = 8  # files per task: their photos' faces go through the network in one batch


def analyze_chunk(items: list[Item]) -> list[Outcome]:
    """The outcome of each item: photos detected one by one, then their faces embedded in one batch."""
    assert _analyzer is not None, "call _init first"
    outcomes: list[Outcome] = []
    found: list[tuple[int, np.ndarray, Detection]] = []  # (index in outcomes, photo, its face)
    for item in items:
        try:
            if item.is_video:
                outcomes.append(_analyze_video(item))
                continue
            rgb = decode(item.path.read_bytes())
            face = _find_face(rgb)
        except BadFrame as e:
            face = f"unreadable: {e}"
        outcomes.append(Outcome(item, skipped=face if isinstance(face, str) else None))
        if isinstance(face, Detection):
            found.append((len(outcomes) - 1, rgb, face))
    views = _analyzer.still_views if _options.still else _analyzer.probe_views  # a probe photo: a face's first look
    embedded = _analyzer.embedder.embed_many([(rgb, [det]) for _, rgb, det in found], views)
    for (i, _, det), out in zip(found, embedded):
        poor = _options.gate and poor_face(out.quality[0], _analyzer.settings)
        if poor:
            outcomes[i].skipped = poor
        else:
            outcomes[i].faces.append(FaceEntry(out.vectors[0], outcomes[i].item.path.name, det.score, out.quality[0],
                                               thumbnail(rgb, det.box, _analyzer.settings.thumb_px)))
    return outcomes


def _find_face(rgb: np.ndarray) -> Detection | str:
    """The photo's face to enroll, or why there is none."""
    dets = _analyzer.detect_still(rgb) if _options.still else _analyzer.detect(rgb)
    if not dets:
        return "no face found"
    if len(dets) > 1 and not _options.allow_several:
        return f"several faces ({len(dets)}); crop it or use --main-face"
    return dets[main_face(dets, rgb.shape)]


def poor_face(q: Quality, s: Settings) -> str | None:
    """Why a photo's face is too poor to enroll ("too_small: ..."), or None: the live naming gates
    (:meth:`facestream.models.matcher.Policy.gate`), with the measured value and the setting it failed."""
    reason = Policy.of(s).gate(q.size, q.sharpness, q.yaw)
    detail = {TOO_SMALL: f"face of {q.size} px, under name_min_face_px={s.name_min_face_px}",
              BLURRY: f"sharpness {q.sharpness:.1f}, under name_min_sharpness={s.name_min_sharpness}",
              TURNED: f"yaw {q.yaw:+.2f}, beyond name_max_yaw={s.name_max_yaw}"}
    return f"{reason}: {detail[reason]}" if reason else None


def _analyze_video(item: Item) -> Outcome:
    cap = cv2.VideoCapture(str(item.path))
    if not cap.isOpened():
        return Outcome(item, skipped="unreadable: cannot open video")
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    step = max(1, round(fps * _options.video_every_s))
    out = Outcome(item)
    kept: list[np.ndarray] = []
    idx = 0
    try:
        while len(out.faces) < _options.max_per_video:
            ok = cap.grab()
            if not ok:
                break
            if idx % step == 0:
                ok, bgr = cap.retrieve()
                if ok:
                    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                    dets = _analyzer.detect(rgb)
                    if len(dets) == 1:  # a frame with several people cannot say which one is the person
                        emb = _analyzer.embed_still(rgb, dets)
                        vec = emb.vectors[0]
                        if poor_face(emb.quality[0], _analyzer.settings):
                            pass  # the next sampled frame may show the face better
                        elif kept and min(float(((k - vec) ** 2).sum()) for k in kept) < _options.dedupe:
                            out.duplicates += 1
                        else:
                            kept.append(vec)
                            out.faces.append(FaceEntry(vec, f"{item.path.name}@{idx / fps:.2f}s", dets[0].score,
                                                       emb.quality[0], thumbnail(rgb, dets[0].box, _analyzer.settings.thumb_px)))
            idx += 1
    finally:
        cap.release()
    if not out.faces:
        out.skipped = "no usable face (need frames with exactly one face)"
    return out


def _dedupe(faces: list[FaceEntry], threshold: float) -> tuple[list[FaceEntry], int]:
    kept: list[FaceEntry] = []
    for f in faces:
        if any(float(((k.vector - f.vector) ** 2).sum()) < threshold for k in kept):
            continue
        kept.append(f)
    return kept, len(faces) - len(kept)


def analyze_all(items: list[Item], settings: Settings, options: Options, workers: int,
                progress: Callable[[Outcome], None] | None = None,
                on_model: Callable[[ModelStamp], None] | None = None) -> Iterator[Outcome]:
    """Outcomes in item order, computed by ``workers`` processes (1: in this process), :data:`CHUNK` files
    per task. ``on_model`` is told the analysing model before the first outcome is yielded (it may refuse)."""
    chunks = [items[i: i + CHUNK] for i in range(0, len(items), CHUNK)]
    if workers <= 1 or len(chunks) < 2:
        _init(settings, options)
        model: Future[ModelStamp] = Future()
        model.set_result(_model())
        done: Iterable[list[Outcome]] = map(analyze_chunk, chunks)
        pool = None
    else:
        pool = ProcessPoolExecutor(workers, initializer=_init, initargs=(settings, options))
        model = pool.submit(_model)  # read where the model is loaded anyway: no extra load here
        done = pool.map(analyze_chunk, chunks)
    try:
        if on_model is not None:
            on_model(model.result())
        for outcomes in done:
            for o in outcomes:
                progress and progress(o)
                yield o
    except BaseException:
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        if pool is not None:
            pool.shutdown()


def embed_files(paths: list[Path], settings: Settings, workers: int, still: bool,
                progress: Callable[[Outcome], None] | None = None) -> dict[Path, FaceEntry | str]:
    """The main face of each image (vector and quality, ungated), or the reason there is none.

    ``still``: the enrollment path (fallback detector, ``enroll_views``); otherwise the live path of a
    face's first look (``probe_views``).
    """
    items = [Item("eval", "eval", p) for p in paths]
    out: dict[Path, FaceEntry | str] = {}
    for o in analyze_all(items, settings, Options(allow_several=True, still=still, gate=False), workers, progress):
        out[o.item.path] = o.faces[0] if o.faces else (o.skipped or "no face")
    return out


def model_stamp(settings: Settings) -> ModelStamp:
    """The model the settings embed with, as the gallery records it (the network is loaded to read it)."""
    network = make_network(settings)
    return ModelStamp(network.model_id, network.dim)


def _model() -> ModelStamp:
    assert _analyzer is not None, "call _init first"
    return ModelStamp(_analyzer.embedder.model_id, _analyzer.dim)


def enroll(gallery: Gallery, items: list[Item], settings: Settings, options: Options | None = None,
           workers: int = 1, progress: Callable[[Outcome], None] | None = None) -> Summary:
    """Analyse every item and write each person's faces atomically once their files are done; refused as
    soon as the model is loaded if the gallery holds another model's vectors."""
    options = options or Options()
    summary = Summary(files=len(items))

    def use(model: ModelStamp) -> None:
        gallery.use_model(model)
        gallery.ensure_index()

    outcomes = analyze_all(items, settings, options, workers, progress, use)
    try:
        for pid, group in groupby(outcomes, key=lambda o: o.item.person_id):
            group = list(group)
            faces = [f for o in group for f in o.faces]
            faces, dups = _dedupe(faces, options.dedupe)
            summary.duplicates += dups + sum(o.duplicates for o in group)
            summary.skipped += [(str(o.item.path), o.skipped) for o in group if o.skipped]
            if faces:
                summary.enrolled[pid] += gallery.add_person(pid, group[0].item.name, faces)
    except KeyboardInterrupt:
        summary.interrupted = True
    return summary


def enroll_paths(gallery: Gallery, paths: Iterable[Path], settings: Settings, person: str | None = None,
                 name: str | None = None, options: Options | None = None, workers: int = 1,
                 progress: Callable[[Outcome], None] | None = None,
                 planned: Callable[[int], object] | None = None) -> Summary:
    """``facestream enroll``: plan the files under ``paths``, enroll them and report every skipped file.

    ``planned`` is told how many files will be analysed (to size a progress bar); a ``name`` given
    with ``person`` also renames a person enrolled before.
    """
    if name is not None:
        name = display_name(name)  # refused before minutes of analysis, not after
    items, skipped = plan(paths, person, name)
    if planned:
        planned(len(items))
    summary = enroll(gallery, items, settings, options, workers, progress)
    summary.skipped = skipped + summary.skipped
    if name and person and summary.enrolled:
        gallery.rename(person, name)
    return summary
