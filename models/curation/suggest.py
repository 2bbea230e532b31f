"""Suggestions: whom an unnamed face comes nearest among the enrolled, and what kept it from being named.

A visitor (a stranger the cameras keep seeing) or a recent unknown face is compared with the gallery as
the workers compare a face, with the policy in force (given: :func:`facestream.models.evaluation.identify.policy_in_force`):
its nearest people, each with its distance, the distance within which that person is named, and what
stood in the way (:data:`facestream.models.matcher.REASONS`, or ``another_nearer``). A user who knows the
face trains it from there: "this is X" (:func:`facestream.models.curation.library.name_visitor`) or
"not X" (:func:`not_person`: the visitor's best views join the cohort marked ``not_of=X``, the way
``facestream feedback --not`` does, and X leaves its suggestions).

The enrolled faces are listed with what they attract: how many cohort faces (people never enrolled,
feedback, the site's learned strangers) come within the person's naming distance of each. A face many
strangers come near is the usual cause of a stranger being named: the user sees it and deletes it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import redis

from facestream.config import Settings
from facestream.errors import FacestreamError
from facestream.keys import Keys
from facestream.models.matcher import AMBIGUOUS, BELOW_THRESHOLD, Policy, by_person, decide
from facestream.models.store.cohort import Cohort
from facestream.models.store.gallery import EnrolledFace, Gallery
from facestream.models.store.knn import VECTOR_FIELD, search_with
from facestream.models.store.names import Names
from facestream.models.store.sightings import LISTED, labelled, load, tag
from facestream.models.store.visitors import missing
from facestream.records import UNKNOWN, Sighting
from facestream.replies import as_dict, text

#: People suggested per face; neighbours looked at to find them (a person has several faces).
SUGGESTED, NEIGHBOURS = 3, 30
#: Cohort faces looked at around each enrolled face when counting the strangers it attracts.
STRANGERS_K = 10
#: Sightings per visitor whose reasons are counted (its most recent are enough to say what stands in the way).
REASONS_OF = 100
ANOTHER_NEARER = "another_nearer"  # a suggestion that is not the nearest person


@dataclass
class Suggestion:
    person_id: str
    name: str
    distance: float  # squared L2, as the decision measures it
    named_within: float  # the distance within which this person is named (the threshold, or a wolf's)
    blocked: str  # why the face was not named this person (``named``: it would be, today)

    def to_json(self) -> dict[str, Any]:
        return {"person_id": self.person_id, "name": self.name, "distance": round(self.distance, 4),
                "named_within": round(self.named_within, 4), "blocked": self.blocked}


@dataclass
class FaceReport:
    face: EnrolledFace
    strangers_near: int  # cohort faces within the person's naming distance of this face (of the STRANGERS_K nearest)
    nearest_stranger: float | None

    def to_json(self) -> dict[str, Any]:
        return {**self.face.to_json(), "strangers_near": self.strangers_near,
                "nearest_stranger": None if self.nearest_stranger is None else round(self.nearest_stranger, 4)}


@dataclass
class Recent:
    """An unknown face a camera saw lately, with the reason it got and the nearest enrolled person."""

    sighting: Sighting
    suggestions: list[Suggestion] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        x = self.sighting
        return {"sighting_id": x.sighting_id, "camera": x.camera, "ts_ms": x.ts_ms, "visitor": x.visitor,
                "reason": x.reason, "quality": x.quality, "suggestions": [s.to_json() for s in self.suggestions]}


class Advisor:
    """Suggestions over one index tier, with the policy the workers decide with."""

    def __init__(self, client: redis.Redis, settings: Settings, policy: Policy):
        self.r, self.s, self.keys, self.policy = client, settings, Keys(settings.key_prefix), policy
        self.gallery = Gallery(client, settings)
        self.names = Names(client.execute_command, self.keys)

    def suggest(self, looks: Sequence[np.ndarray], exclude: Sequence[str] = ()) -> list[Suggestion]:
        """The people nearest any of ``looks`` (one face's vectors; but ``exclude``), nearest first, each with
        what kept the face from being named them."""
        ranked = by_person([n for v in looks for n in search_with(self.r.execute_command, self.keys.index, v,
                                                                  NEIGHBOURS, self.s.hnsw_ef_runtime)])
        if not ranked:
            return []
        cohort = Cohort(self.r, self.s, dim=len(looks[0]))
        stranger = min((d for d in map(cohort.nearest, looks) if d is not None), default=None)
        decision, best = decide(ranked, self.policy, stranger), ranked[0][1]
        out = []
        for pid, d in ranked:
            if pid in exclude:
                continue
            limit = self.policy.limit(pid)
            if d > limit:
                blocked = BELOW_THRESHOLD
            elif pid == ranked[0][0]:
                blocked = decision.reason
            else:
                blocked = AMBIGUOUS if d - best < self.policy.margin else ANOTHER_NEARER
            out.append(Suggestion(pid, self.names.get(pid), d, limit, blocked))
            if len(out) == SUGGESTED:
                break
        return out

    def visitor(self, vid: str) -> tuple[list[Suggestion], dict[str, int]]:
        """A visitor's suggestions (from its centroid and its distinct looks: a stranger's blurred or turned looks
        come near several people, its best look nearest the right one; people it was said not to be are left
        out) and how often each reason was given to its kept looks."""
        raw = self.r.hmget(self.keys.visitor(vid), VECTOR_FIELD, "exemplars", "not_of")
        if raw[0] is None:
            raise FacestreamError(missing(vid))
        dim = len(raw[0]) // 4
        looks = np.frombuffer(raw[0] + (raw[1] or b""), dtype="<f4").reshape(-1, dim).astype(np.float32)
        ids = labelled(self.r.execute_command, self.keys, "visitor", vid)[:REASONS_OF]
        with self.r.pipeline(transaction=False) as p:
            for sid in ids:
                p.hget(self.keys.sighting(sid), "reason")
            reasons = Counter(text(x) for x in p.execute() if x)
        return self.suggest(list(looks), not_of(raw[2])), dict(reasons.most_common())

    def recent(self, cameras: Sequence[str], per_camera: int = 8) -> list[Recent]:
        """The last faces that stayed unknown on each camera (kept sightings), newest first per camera."""
        out = []
        for camera in cameras:
            reply = self.r.execute_command(
                "FT.SEARCH", self.keys.sightings_index, f"@person_id:{{{UNKNOWN}}} @camera:{{{tag(camera)}}}",
                "SORTBY", "ts_ms", "DESC", "RETURN", str(len(LISTED)), *LISTED, "LIMIT", "0", str(per_camera),
                "DIALECT", "2", "TIMEOUT", "0")
            for i in range(1, len(reply), 2):
                sid = text(reply[i])[len(self.keys.sighting_prefix):]
                x = Sighting.from_fields(sid, as_dict(reply[i + 1]))
                vec = self.r.hget(self.keys.sighting(sid), "vector")
                out.append(Recent(x, self.suggest([np.frombuffer(vec, dtype="<f4").astype(np.float32)]) if vec else []))
        return out

    def faces(self, person_id: str) -> list[FaceReport]:
        """A person's enrolled faces, each with how many strangers of the cohort come within their naming distance."""
        limit = self.policy.limit(person_id)
        out = []
        for face in self.gallery.faces(person_id):
            near = search_with(self.r.execute_command, self.keys.cohort_index,
                               self.gallery.face_vector(person_id, face.face), STRANGERS_K, self.s.hnsw_ef_runtime)
            out.append(FaceReport(face, sum(1 for _, d in near if d <= limit), near[0][1] if near else None))
        return out


def not_of(raw: Any) -> list[str]:
    """The person ids a visitor was said not to be (stored comma-separated on the visitor)."""
    return [p for p in text(raw or b"").split(",") if p]


def not_person(r: redis.Redis, s: Settings, vid: str, person_id: str) -> int:
    """Visitor ``vid`` is not ``person_id``: its best views join the cohort marked ``not_of`` (the decision then
    leaves faces like them unnamed) and ``person_id`` leaves its suggestions. Returns the cohort faces added."""
    from facestream.models.curation.library import as_face, diverse_views

    keys = Keys(s.key_prefix)
    Gallery(r, s).person(person_id)  # a typo is an error, not a silent no-op
    before = r.hget(keys.visitor(vid), "not_of")
    if before is None and not r.exists(keys.visitor(vid)):
        raise FacestreamError(missing(vid))
    looks = [x for x in (load(r.execute_command, keys, i) for i in labelled(r.execute_command, keys, "visitor", vid))
             if x is not None]
    views = diverse_views(looks, Policy.of(s)) or looks[:1]
    added = Cohort(r, s).add([as_face(x, f"visitor:{vid}/{x.sighting_id}") for x in views], not_of=person_id)
    r.hset(keys.visitor(vid), "not_of", ",".join(dict.fromkeys(not_of(before) + [person_id])))
    return added

