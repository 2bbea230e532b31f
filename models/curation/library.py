"""What a user does with what the cameras saw: search it by face, name a visitor, forget someone.

- :func:`find`: the sightings nearest a photo's face (or another sighting's), within a time window and
  on one camera if asked, as a timeline.
- :func:`name_visitor`: a visitor becomes a person (new, or an enrolled one): their best *diverse*
  sightings that pass enrollment's quality gates are enrolled (so a gallery grows past one photo), their
  sightings are relabelled, and the visitor is removed so that their next appearance is named.
- :func:`forget`: a person's or a visitor's sightings (thumbnails and vectors), visitor record, gallery
  faces and presence entries are deleted: a data-protection erasure. ``people delete`` does it too.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import redis

from facestream.commands import cameras, delete_keys, drop_index
from facestream.config import Settings
from facestream.errors import FacestreamError, GalleryError
from facestream.keys import VISITOR_RE, Keys
from facestream.models.curation import audit
from facestream.models.matcher import Policy
from facestream.models.store import sightings
from facestream.models.store.cohort import Cohort
from facestream.models.store.strangers import SiteStrangers
from facestream.models.store.gallery import FaceEntry, Gallery
from facestream.models.store.sightings import Hit, buckets, labelled, load, vector_of, view_score
from facestream.models.store.stamp import check, prefix_dim
from facestream.models.store.visitors import Visitors
from facestream.models.types import Quality
from facestream.records import UNKNOWN, Sighting
from facestream.replies import text

if TYPE_CHECKING:
    from facestream.models.curation.enroll import Summary

#: Sightings enrolled when a visitor is named, at most; two closer than DIVERSE (squared L2) count as one view.
NAME_VIEWS = 5
DIVERSE = 0.02


DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")


def since_ms(since: str | None) -> int | None:
    """``24h`` / ``90m`` / ``7d`` before now, in ms since the epoch; FacestreamError for anything else."""
    if since is None:
        return None
    m = DURATION.match(since.strip())
    if not m:
        raise FacestreamError(f"--since {since!r}: give a duration such as 30m, 24h or 7d")
    seconds = float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    return int((time.time() - seconds) * 1000)


def person_id_for(name: str) -> str:
    """The person id a display name gets when none is given ("Lin-Manuel Miranda" -> Lin-Manuel_Miranda)."""
    pid = re.sub(r"[^A-Za-z0-9_-]+", "_", name.strip()).strip("_")[:64]
    if not pid:
        raise FacestreamError(f"cannot make a person id from {name!r}: give one")
    return pid


def visitors_of(r: redis.Redis, s: Settings) -> Visitors:
    keys = Keys(s.key_prefix)
    return Visitors.of(r.execute_command, keys, s, prefix_dim(r.execute_command, keys))


def photo_vector(path: Path, s: Settings) -> np.ndarray:
    """The main face of a photo, embedded as enrollment does; FacestreamError if it has none."""
    from facestream.models.curation.enroll import embed_files

    if not path.is_file():
        raise FacestreamError(f"{path}: no such file")
    got = embed_files([path], s, workers=1, still=True)[path]
    if isinstance(got, str):
        raise FacestreamError(f"{path}: {got}")
    return got.vector


def enroll_photo(r: redis.Redis, s: Settings, path: Path, person_id: str, name: str | None) -> int:
    """Enroll one photo's main face for ``person_id`` through enrollment's gates; FacestreamError saying
    why if it gave no face."""
    from facestream.models.curation.enroll import Item, enroll

    summary = enroll(Gallery(r, s), [Item(person_id, name or person_id, path)], s)
    if not summary.enrolled:
        reason = summary.skipped[0][1] if summary.skipped else "no face found"
        raise FacestreamError(f"not enrolled: {reason}")
    return sum(summary.enrolled.values())


def sighting_vector(r: redis.Redis, s: Settings, sighting_id: str) -> np.ndarray:
    found = load(r.execute_command, Keys(s.key_prefix), sighting_id)
    if found is None:
        raise FacestreamError(f"no sighting {sighting_id!r} (expired or erased?)")
    return vector_of(found)


def find(r: redis.Redis, s: Settings, vector: np.ndarray, limit: int = 20, since_ms: int | None = None,
         camera: str | None = None, max_distance: float | None = None) -> list[Hit]:
    """Sightings within ``max_distance`` (default ``search_max_distance``) of ``vector``, nearest first."""
    cut = s.search_max_distance if max_distance is None else max_distance
    hits = sightings.search(r.execute_command, Keys(s.key_prefix), vector, limit, s.hnsw_ef_runtime, since_ms, camera)
    return [h for h in hits if h.distance <= cut]


def enroll(r: redis.Redis, s: Settings, paths: list[str | Path], person: str | None = None,
           name: str | None = None) -> Summary:
    """Enroll the faces under ``paths``: folders named by person id (``gallery/<person_id>/*.jpg``), or
    photos and clips of one ``person``. The summary says what was enrolled and why a file was skipped."""
    from facestream.models.curation.enroll import enroll_paths

    return enroll_paths(Gallery(r, s), [Path(p) for p in paths], s, person, name)


def search(r: redis.Redis, s: Settings, photo: str | Path, limit: int = 20, since: str | None = None,
           camera: str | None = None) -> list[Hit]:
    """Every sighting of the face in ``photo`` (``since``: 30m, 24h, 7d), nearest first."""
    from facestream.models.curation.enroll import model_stamp

    check(r.execute_command, Keys(s.key_prefix), model_stamp(s))  # another model's sightings: no answer, an error
    return find(r, s, photo_vector(Path(photo), s), limit, since_ms(since), camera)


@dataclass
class Named:
    person_id: str
    enrolled: int  # faces added to the gallery
    relabelled: int  # sightings now under the person's id


def diverse_views(sightings: list[Sighting], policy: Policy, limit: int = NAME_VIEWS) -> list[Sighting]:
    """The best views that pass the quality gates, skipping any nearly identical to one already chosen."""
    def score(x: Sighting) -> float:
        q = x.quality
        return view_score(q.get("size", 0), q.get("sharpness", 0), q.get("yaw", 0))

    fit = [x for x in sightings if x.quality and policy.gate(int(x.quality.get("size", 0)), x.quality.get("sharpness"),
                                                             x.quality.get("yaw")) is None]
    chosen: list[Sighting] = []
    for x in sorted(fit, key=score, reverse=True):
        v = vector_of(x)
        if all(float(np.sum((v - vector_of(c)) ** 2)) > DIVERSE for c in chosen):
            chosen.append(x)
        if len(chosen) == limit:
            break
    return chosen


def as_face(x: Sighting, source: str) -> FaceEntry:
    """A sighting as a face to enroll: its vector, quality and thumbnail."""
    return FaceEntry(vector_of(x), source, quality=Quality.from_json(x.quality), thumb=x.thumb)


def name_visitor(r: redis.Redis, s: Settings, vid: str, person_id: str, new_name: str | None) -> Named:
    """Enroll visitor ``vid`` as ``person_id`` (created with ``new_name``, or an existing person if None)."""
    keys, gallery = Keys(s.key_prefix), Gallery(r, s)
    if new_name is None:
        gallery.person(person_id)  # GalleryError naming the command to list people
    elif r.exists(keys.person(person_id)):
        raise GalleryError(f"person {person_id!r} exists already; use --as {person_id} to add to them")
    ids = labelled(r.execute_command, keys, "visitor", vid)
    sightings = [x for x in (load(r.execute_command, keys, i) for i in ids) if x is not None]
    views = diverse_views(sightings, Policy.of(s))
    if not views:
        raise FacestreamError(f"visitor {vid} has no sighting fit to enroll ({len(sightings)} sighting(s), all too "
                              "small, blurred or turned, or none left: see facestream visitors show)")
    n = gallery.add_person(person_id, new_name, [as_face(x, f"visitor:{vid}/{x.sighting_id}") for x in views])
    with r.pipeline(transaction=False) as p:
        for x in sightings:
            p.hset(keys.sighting(x.sighting_id), mapping={"person_id": person_id, "visitor": ""})
        p.delete(keys.visitor(vid))
        p.execute()
    SiteStrangers(r.execute_command, keys, s).leave([vid])  # someone now: no longer a stranger of the site
    Cohort(r, s).remove(f"visitor:{vid}/")  # "not X" feedback on them: their faces would veto their own name
    return Named(person_id, n, len(sightings))


def name_sighting(r: redis.Redis, s: Settings, sighting_id: str, person_id: str) -> int:
    """One kept face is ``person_id`` (enrolled): it joins their gallery if it passes the naming gates, and the
    sighting is relabelled. Returns the faces added (1); FacestreamError saying why not."""
    keys, gallery = Keys(s.key_prefix), Gallery(r, s)
    gallery.person(person_id)
    x = load(r.execute_command, keys, sighting_id)
    if x is None:
        raise FacestreamError(f"no sighting {sighting_id!r} (expired or erased?)")
    if not diverse_views([x], Policy.of(s)):
        q = x.quality
        raise FacestreamError(f"not added to {person_id}: this face is too small, blurred or turned to name "
                              f"({int(q.get('size', 0))} px, sharpness {q.get('sharpness', 0):.0f}, yaw {q.get('yaw', 0):+.2f})")
    n = gallery.add_person(person_id, None, [as_face(x, f"sighting:{sighting_id}")])
    r.hset(keys.sighting(sighting_id), mapping={"person_id": person_id, "visitor": ""})
    return n


@dataclass
class Forgotten:
    sightings: int
    faces: int  # gallery faces
    visitor: bool
    presence: int  # cameras they were listed as present on
    entries: int = 0  # results, events and audit entries that named them (deleted: stream entries cannot be edited)


def forget(r: redis.Redis, s: Settings, who: str, streams: redis.Redis | redis.RedisCluster | None = None) -> Forgotten:
    """Erase everything kept of a person or visitor (``v-NNNNNN``): gallery faces, sightings, visitor, presence,
    the cohort's "not them" marks, a visitor's learned stranger face, and every results, events and audit entry that names them (a frame's
    result goes with its other faces). ``r``: the index tier, ``streams``: the stream tier (default the
    same server). FacestreamError if nothing was kept."""
    keys = Keys(s.key_prefix)
    streams = streams or r
    label = "visitor" if VISITOR_RE.match(who) else "person_id"
    if who == UNKNOWN:
        raise FacestreamError("'unknown' is everyone not named; forget a person id or a visitor id (v-000123)")
    ids = labelled(r.execute_command, keys, label, who)
    faces = Gallery(r, s).delete(who) if label == "person_id" and r.exists(keys.person(who)) else 0
    presence = [k for k in streams.scan_iter(match=keys.camera_pattern("present"), count=1000) if streams.hdel(k, who)]
    with r.pipeline(transaction=False) as p:
        delete_keys(p, [keys.sighting(i) for i in ids])
        p.delete(keys.visitor(who))
        visitor = bool(p.execute()[-1])
    if label == "visitor":
        visitor = bool(SiteStrangers(r.execute_command, keys, s).leave([who])) or visitor  # their learned face too
        visitor = bool(Cohort(r, s).remove(f"visitor:{who}/")) or visitor  # their looks given as "not X" feedback
    for k in r.scan_iter(match=keys.cohort_prefix + "*", count=1000):
        if text(r.hget(k, "not_of") or b"") == who:
            r.hset(k, "not_of", "")
    for k in r.scan_iter(match=keys.visitor_prefix + "*", count=1000):  # "not X" marks on visitors
        marks = text(r.hget(k, "not_of") or b"").split(",")
        if who in marks:
            r.hset(k, "not_of", ",".join(m for m in marks if m != who))
    entries = _erase_entries(streams, keys, who) + audit.erased(r, keys, who)
    out = Forgotten(len(ids), faces, visitor, len(presence), entries)
    if not (out.sightings or out.faces or out.visitor or out.presence or out.entries):
        raise FacestreamError(f"nothing is kept of {who!r} (no sighting, face, visitor or presence)")
    return out


def _erase_entries(r: redis.Redis | redis.RedisCluster, keys: Keys, who: str) -> int:
    """Delete the entries of every camera's results and events naming ``who``; returns how many."""
    mark, deleted = who.encode(), 0
    outputs = [(keys.camera_key(kind, c), field) for kind, field in (("results", b"faces"), ("events", b"person_id"))
               for c in cameras(r, keys, kind)[0]]
    for stream, field in outputs:
        start = "-"
        while batch := r.xrange(stream, min=start, count=1000):
            doomed = [eid for eid, f in batch if mark in f.get(field, b"") and _names(f, field, who)]
            deleted += r.xdel(stream, *doomed) if doomed else 0
            start = "(" + text(batch[-1][0])
    return deleted


def _names(fields: dict, field: bytes, who: str) -> bool:
    if field == b"person_id":
        return text(fields[field]) == who
    try:
        return any(who in (face.get("person_id"), face.get("visitor")) for face in json.loads(fields[field]))
    except (ValueError, AttributeError, TypeError):
        return True  # unreadable, and it contains the id: erased all the same


def clear_vectors(r: redis.Redis, s: Settings) -> int:
    """Drop every vector under the key prefix (enrolled people, cohort and its learned strangers, sightings,
    visitors), the policy calibrated or learned on them and the model stamp: what switching to another
    embedding model needs. Returns the number of people removed."""
    keys, gallery = Keys(s.key_prefix), Gallery(r, s)
    people = len(gallery.people())
    gallery.clear()
    Cohort(r, s, dim=gallery.dim).clear()
    drop_visitors(r, keys, sightings=True)
    r.delete(keys.policy, keys.site_policy, keys.strangers, keys.model)
    return people


def drop_visitors(r: redis.Redis, keys: Keys, sightings: bool) -> None:
    """Drop every visitor (and, with ``sightings``, every sighting) under ``keys``' prefix, index included."""
    drop_index(r, keys.visitors_index, keys.visitor_prefix + "*")
    if sightings:
        for _, _, index in buckets(r.execute_command, keys):
            r.execute_command("FT.DROPINDEX", index)
        drop_index(r, keys.sightings_index, keys.sighting_prefix + "*")
    r.delete(keys.visitor_counter)
