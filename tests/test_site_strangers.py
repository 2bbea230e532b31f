"""The site's own strangers: learned into the cohort from the visitors (real Redis), and what they say of the
impostor model (a closer population, wolves) measured on draws from that model."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from facestream.config import load_settings
from facestream.keys import Keys
from facestream.models.curation.library import forget
from facestream.models.impostors import Stranger, distance_at, impostor_tail, learn
from facestream.models.matcher import LIKE_A_STRANGER, NAMED, Policy, StoredPolicy, decide
from facestream.models.store.gallery import FaceEntry, Gallery
from facestream.models.store.knn import nearest_stranger
from facestream.models.store.stamp import ModelStamp, claim
from facestream.models.store.strangers import SiteStrangers
from facestream.models.store.visitors import Visitors
from facestream.replies import text

MODEL = "dlib-resnet-v1"
TAIL = impostor_tail(MODEL)
FACES = 1_000  # a gallery of 500 people, two faces each


def draws(rng: np.random.Generator, n: int, scale: float, people: int = 500) -> list[Stranger]:
    """``n`` strangers' nearest distances to a ``FACES``-face gallery if every face's impostor rate were the
    shipped table's times ``scale`` (inverse of P(min <= d) = 1 - (1 - scale * rate(d)) ** FACES)."""
    u = rng.uniform(size=n)
    return [Stranger(f"p{rng.integers(people)}", distance_at(TAIL, (1 - (1 - x) ** (1 / FACES)) / scale), FACES)
            for x in u]


def test_the_site_model_sees_a_closer_population_and_wolves_but_not_chance():
    rng = np.random.default_rng(7)
    two = lambda pid: 2  # noqa: E731 - every person has two faces
    base = Policy.of(load_settings(), MODEL).for_gallery(FACES)
    same = learn(draws(rng, 400, 1.0), TAIL, 0.0, two)
    assert same.scale == 1.0 and not same.wolves, same  # strangers as the table says: nothing changes
    closer = learn(draws(rng, 400, 8.0), TAIL, 0.0, two)
    assert closer.scale >= 3.0, closer  # 8x closer, a 95% lower bound
    tightened = replace(Policy.of(load_settings(), MODEL), site=closer).for_gallery(FACES)
    assert tightened.threshold < base.threshold - 0.005
    assert tightened.near_strangers(FACES) == pytest.approx(base.near_strangers(FACES), rel=0.05)
    crowd = draws(rng, 400, 1.0)
    crowd[:12] = [s._replace(person_id="wolf") for s in crowd[:12]]  # 12 of 400 nearest one of 500 people: ~1.6 by chance
    site = learn(crowd, TAIL, 0.0, two)
    assert list(site.wolves) == ["wolf"], site.wolves
    policy = replace(base, site=site)
    assert policy.limit("wolf") < policy.threshold - 0.005 and policy.limit("p1") == policy.threshold
    d = (policy.limit("wolf") + policy.threshold) / 2  # named as anyone else, refused as the wolf
    assert decide([("wolf", d)], policy).reason == "below_threshold" and decide([("p1", d)], policy).reason == NAMED
    few = learn(draws(rng, 20, 8.0), TAIL, 0.0, two)
    assert few.scale == 1.0 and few.used == 20  # under learn_min_strangers: no change on a handful


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v)).astype(np.float32)


def _basis(rng: np.random.Generator) -> np.ndarray:
    q, _ = np.linalg.qr(rng.standard_normal((128, 8)))
    return q.T.astype(np.float32)


def test_a_learned_stranger_vetoes_its_look_alike_and_leaves_when_enrolled(r, settings):
    """A far visitor with enough looks joins the cohort; a face between him and an enrolled person (as near to
    both) is then refused like_a_stranger instead of named; a near visitor or a glimpse is not learned; enrolling
    the stranger removes him again; the site model reaches the policy."""
    settings = settings.replace(learn_min_strangers=5)
    keys, call = Keys(settings.key_prefix), r.execute_command
    claim(call, keys, ModelStamp(MODEL, 128))
    e = _basis(np.random.default_rng(1))
    alice = e[0]
    stranger = _unit(0.9 * e[0] + np.sqrt(1 - 0.81) * e[1])  # 0.2 from Alice: beyond every threshold
    Gallery(r, settings).add_person("alice", "Alice", [FaceEntry(alice, "a.jpg")])
    visitors = Visitors.of(call, keys, settings, 128)
    now = 1_700_000_000_000
    for k in range(5):
        visitors.add("v-000001", stranger, "door", now + k)
        visitors.add("v-000002", _unit(e[0] + 0.2 * e[2]), "door", now + k)  # 0.04 from Alice: maybe Alice
    visitors.add("v-000003", e[3], "door", now)  # one glimpse
    site = SiteStrangers(call, keys, settings)
    model = site.learn(now + 10)
    assert model is not None and model.strangers == 1
    assert r.zrange(keys.strangers, 0, -1) == [b"v-000001"]
    assert site.learn(now + 20) is None  # another worker learned this period
    between = _unit(alice + stranger)
    d = float(np.sum((between - alice) ** 2))
    assert decide([("alice", d)], Policy(settings.match_threshold)).reason == NAMED  # without the site's stranger
    near = nearest_stranger(call, keys.cohort_index, between, settings.hnsw_ef_runtime)
    assert near == pytest.approx(d, abs=1e-4)
    assert decide([("alice", d)], Policy(settings.match_threshold, cohort_margin=settings.cohort_margin),
                  near).reason == LIKE_A_STRANGER
    stored = json.loads(r.get(keys.site_policy))
    assert stored["strangers"] == 1
    policy = StoredPolicy(call, keys.policy, keys.site_policy, keys.index, Policy.of(settings, MODEL)).get()
    assert policy.site.strangers == 1 and "learned from 1 of this site's strangers" in policy.describe()
    Gallery(r, settings).add_person("bob", "Bob", [FaceEntry(_unit(stranger + 0.05 * e[4]), "b.jpg")])
    assert r.zcard(keys.strangers) == 0 and not r.exists(keys.stranger("v-000001"))  # he is Bob now
    assert nearest_stranger(call, keys.cohort_index, between, settings.hnsw_ef_runtime) is None
    assert json.loads(r.get(keys.site_policy))["strangers"] == 0


def test_learning_is_bounded_and_forget_erases_a_learned_stranger(r, settings):
    settings = settings.replace(learn_strangers=2, learn_every_s=1)
    keys, call = Keys(settings.key_prefix), r.execute_command
    claim(call, keys, ModelStamp(MODEL, 128))
    e = _basis(np.random.default_rng(2))
    Gallery(r, settings).add_person("alice", "Alice", [FaceEntry(e[0], "a.jpg")])
    visitors, site = Visitors.of(call, keys, settings, 128), SiteStrangers(call, keys, settings)
    now = 1_700_000_000_000
    for n in range(1, 5):  # four strangers, far from Alice and from each other, learned one period apart
        for k in range(settings.learn_looks):
            visitors.add(f"v-00000{n}", e[n], "door", now + k)
        r.delete(keys.strangers + ":lock")
        site.learn(now + 10)
        now += 2_000
    assert sorted(r.zrange(keys.strangers, 0, -1)) == [b"v-000003", b"v-000004"]  # the oldest left first
    assert not r.exists(keys.stranger("v-000001")) and r.exists(keys.stranger("v-000004"))
    assert r.pttl(keys.stranger("v-000004")) > 0  # expires with the visitors' retention
    out = forget(r, settings, "v-000004")
    assert out.visitor and not r.exists(keys.stranger("v-000004")) and r.zrange(keys.strangers, 0, -1) == [b"v-000003"]
    settings_off = settings.replace(learn_strangers=0)
    assert SiteStrangers(call, keys, settings_off).learn(now + 10) is None


def test_a_visitor_often_near_an_enrolled_person_is_not_learned_and_one_that_becomes_so_leaves(r, settings):
    """An enrolled person's poorer looks form a visitor whose centroid lies beyond the ceiling while many of its
    looks come within it (the demo clip's Lin-Manuel Miranda: 0.142 from his faces, one look in two within
    0.13): learned, it vetoed his own close-up. Such a visitor is not learned; a learned stranger whose looks
    then come near as often leaves the cohort; a stranger with the odd near look stays learned."""
    from facestream.gears.memory import Memory
    from facestream.gears.track import Kept
    from facestream.models.matcher import BELOW_THRESHOLD, CONFIRMING, Match
    from facestream.records import UNKNOWN

    keys, call = Keys(settings.key_prefix), r.execute_command
    claim(call, keys, ModelStamp(MODEL, 128))
    e = _basis(np.random.default_rng(3))
    at = lambda d, axis: _unit((1 - d / 2) * e[0] + np.sqrt(1 - (1 - d / 2) ** 2) * e[axis])  # noqa: E731 - d from Alice
    Gallery(r, settings).add_person("alice", "Alice", [FaceEntry(e[0], "a.jpg")])
    memory, now = Memory(settings, keys, call, 128), 1_700_000_000_000
    looks = {"v-1": [0.12, 0.30] * 3, "v-2": [0.30] * 6, "v-3": [0.30] * 5 + [0.12]}  # v-1 near Alice every other look
    for axis, (name, ds) in enumerate(looks.items(), 1):  # one track each, as a worker notes its unknown looks
        kept = Kept()
        for k, d in enumerate(ds):
            match = Match(UNKNOWN, d, 0.0, reason=CONFIRMING if d <= settings.match_threshold else BELOW_THRESHOLD)
            for write in memory.note(kept, UNKNOWN, match, at(d, axis), at(d, axis), "door", now + k):
                write()
        looks[name] = kept.visitor
    v1 = memory.visitors.get(looks["v-1"])
    assert (v1.looks, v1.near) == (6, 3), v1
    centroid = np.frombuffer(r.hget(keys.visitor(v1.visitor_id), "vector"), dtype="<f4")
    assert float(np.sum((centroid - e[0]) ** 2)) > settings.match_threshold  # beyond the ceiling, yet maybe Alice
    site = SiteStrangers(call, keys, settings)
    site.learn(now + 10)
    learned = lambda: sorted(text(v) for v in r.zrange(keys.strangers, 0, -1))  # noqa: E731
    assert learned() == [looks["v-2"], looks["v-3"]]  # v-3: one near look in six, the odd look a cohort vetoes
    for k in range(3):  # v-2 now comes within the ceiling of Alice on 3 looks of 9
        memory.visitors.add(looks["v-2"], at(0.12, 2), "door", now + 20 + k, near=True)
    r.delete(keys.strangers + ":lock")
    model = site.learn(now + 30)
    assert learned() == [looks["v-3"]] and not r.exists(keys.stranger(looks["v-2"]))
    assert model is not None and model.strangers == 1
