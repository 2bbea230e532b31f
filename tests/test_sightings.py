"""Sightings (kept views, searchable, expiring) and visitors (strangers grouped online), on the real server."""

from __future__ import annotations

import time

import numpy as np
import pytest

from facestream.gears.track import Kept
from facestream.keys import Keys
from facestream.models.evaluation.visitors import pairwise
from facestream.models.store.sightings import SightingIndexes, labelled, load, search, write
from facestream.models.store.visitors import Visitors
from facestream.records import Sighting


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v)).astype(np.float32)


def _person(seed: int, looks: int, noise: float = 0.12) -> list[np.ndarray]:
    """Looks of one synthetic person: a base vector plus noise (same-person squared L2 ~0.02-0.05)."""
    rng = np.random.default_rng(seed)
    base = rng.standard_normal(128)
    return [_unit(base / np.linalg.norm(base) + noise * rng.standard_normal(128) / np.sqrt(128)) for _ in range(looks)]


def test_a_track_keeps_only_its_best_views():
    kept = Kept()
    assert kept.keep(0.5, "a", 2) == (True, None)
    assert kept.keep(0.2, "b", 2) == (True, None)
    assert kept.keep(0.1, "c", 2) == (False, None), "worse than both kept views"
    assert kept.keep(0.9, "d", 2) == (True, "b"), "a better view replaces the worst"
    assert [sid for _, sid in kept.views] == ["d", "a"]


def test_sightings_are_found_by_face_time_and_camera_and_expire_without_a_sweeper(r, settings):
    keys, call = Keys(settings.key_prefix), r.execute_command
    indexes = SightingIndexes(call, keys, bucket_ms=40_000)  # 3 time buckets: a search merges them
    alice, bob = _person(1, 3), _person(2, 1)
    for i, (v, cam, ts) in enumerate([(alice[0], "door", 1_000), (alice[1], "yard", 50_000), (bob[0], "door", 60_000)]):
        indexes.write(Sighting(f"s{i}", cam, ts, visitor="v-000001", vector=v.tobytes(), thumb=b"jpg"), 60_000)
    hits = search(call, keys, alice[2], 3, 200)
    assert {h.sighting.sighting_id for h in hits[:2]} == {"s0", "s1"} and hits[1].distance < hits[2].distance
    assert [h.sighting.sighting_id for h in search(call, keys, alice[2], 3, 200, since_ms=10_000)] == ["s1", "s2"]
    assert [h.sighting.sighting_id for h in search(call, keys, alice[2], 3, 200, camera="door")] == ["s0", "s2"]
    assert sorted(labelled(call, keys, "visitor", "v-000001")) == ["s0", "s1", "s2"], "TAG query escapes the '-'"
    assert load(call, keys, "s0").thumb == b"jpg" and 0 < r.pttl(keys.sighting("s0")) <= 60_000
    # Retention: a sighting written with a short expiry leaves the keyspace and the index on its own.
    write(call, keys, Sighting("old", "door", 2_000, vector=alice[0].tobytes()), 200)
    assert "old" in [h.sighting.sighting_id for h in search(call, keys, alice[0], 5, 200)]
    deadline = time.time() + 10
    while r.exists(keys.sighting("old")) and time.time() < deadline:
        time.sleep(0.2)  # no read touches the key: Redis's own expiry cycle removes it
    assert not r.exists(keys.sighting("old")), "expired without being read"
    assert "old" not in [h.sighting.sighting_id for h in search(call, keys, alice[0], 5, 200)]


def test_visitors_keep_one_stranger_together_and_others_apart_across_restarts(r, settings):
    keys = Keys(settings.key_prefix)
    people = {who: _person(seed, 6) for who, seed in (("ann", 3), ("bo", 4), ("cy", 5))}
    v = Visitors(r.execute_command, keys, settings.visitor_distance, 60_000)
    truth, got = [], []
    for k in range(6):  # interleaved, as on a busy door camera
        for who, looks in people.items():
            truth.append(who)
            got.append(v.assign(looks[k], "door", 1000 * k))
    precision, recall = pairwise(truth, got)
    assert precision == 1.0 and recall == 1.0, list(zip(truth, got))
    assert len(set(got)) == 3 and all(g.startswith("v-") for g in got)
    again = Visitors(r.execute_command, keys, settings.visitor_distance, 60_000)  # a restarted worker
    assert again.assign(_person(3, 7)[6], "yard", 9_000) == got[0], "the same stranger, another camera: same id"
    ann = again.get(got[0])
    assert ann.looks == 7 and ann.cameras == ["door", "yard"] and 0 < r.pttl(keys.visitor(got[0])) <= 60_000
    assert [x.visitor_id for x in again.recent(2)] == [got[0], got[-1]], "newest first"
    again.merge(got[0], got[1])
    assert again.get(got[1]) is None and again.get(got[0]).looks == 13


def test_a_new_face_far_from_every_visitor_starts_a_new_one(r, settings):
    keys = Keys(settings.key_prefix)
    v = Visitors(r.execute_command, keys, settings.visitor_distance, 60_000)
    ids = {v.assign(_person(seed, 1)[0], "door", seed) for seed in range(20)}
    assert len(ids) == 20, "twenty different people, twenty visitors"


@pytest.mark.parametrize("bad", ["v-000001", "v-1234567"])
def test_no_person_id_may_look_like_a_visitor(r, settings, bad):
    from facestream.errors import GalleryError
    from facestream.models.store.gallery import FaceEntry, Gallery

    with pytest.raises(GalleryError, match="visitor id"):
        Gallery(r, settings).add_person(bad, None, [FaceEntry(_person(1, 1)[0], "x")])


def test_untracked_faces_of_one_label_share_one_allowance_per_window(r, settings):
    from facestream.gears.memory import Memory
    from facestream.models.types import Quality
    from facestream.records import Face

    keys = Keys(settings.key_prefix)
    memory = Memory(settings, keys, r.execute_command, 128)
    rgb = np.full((120, 160, 3), 128, np.uint8)
    look = _person(9, 1)[0]
    for k in range(20):  # 20 frames of one stranger without tracking, 0.1 s apart
        face = Face((40, 20, 100, 80), visitor="v-000001")
        for pending in memory.keep(Kept(tracked=False), face, 0, look, Quality(60 + k, 50.0, 0.0), rgb, "door",
                                 1_000 + 100 * k):
            pending()
    kept = labelled(r.execute_command, keys, "visitor", "v-000001")
    assert len(kept) == settings.sightings_per_track, kept
    assert "door-2900-0" in kept, "the biggest (best) view is among those kept"
    for pending in memory.keep(Kept(tracked=False), Face((40, 20, 100, 80), visitor="v-000001"), 0, look,
                             Quality(60, 50.0, 0.0), rgb, "door", 1_000 + settings.untracked_window_ms):
        pending()
    assert len(labelled(r.execute_command, keys, "visitor", "v-000001")) == settings.sightings_per_track + 1
