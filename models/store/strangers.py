"""The site's own strangers: visitors nobody enrolled, learned into the cohort and the impostor model.

The faces a site's cameras see that nobody could name are the best sample of the strangers the site
will keep seeing. A visitor (:mod:`facestream.models.store.visitors`) seen for at least ``learn_looks``
looks whose centroid stays further than ``match_threshold`` (the ceiling of every threshold) from every
enrolled face is learned: its centroid joins the cohort as ``fs:cohort:site:<visitor>``, with the
enrolled person it came nearest to, how near, and the gallery's size then. From then on

- the cohort test refuses a face that looks as much like that stranger as like someone enrolled (a
  neighbour passing every day is not named on his odd look that resembles X);
- the learned strangers as a whole say whether the shipped impostor model holds on this site, and which
  enrolled people strangers come nearest to more often than chance (wolves):
  :func:`facestream.models.impostors.learn`, stored at ``fs:policy:site`` for every worker.

Guards, and why:

- *Only far visitors.* An enrolled person the cameras failed to name (bad light, a new haircut) forms a
  visitor near their own faces; learned, it would veto them. So its centroid must lie beyond the ceiling,
  and at most ``learn_near_share`` of its looks may have come within the ceiling of an enrolled face: a
  centroid just beyond it can still be that person (the demo clip's Lin-Manuel Miranda: a visitor at 0.142
  from his faces, one look in two within 0.13, learned after a minute of looping, then vetoing his own
  close-up). A learned stranger whose looks come near too often leaves again. The ceiling also keeps the
  site figures out of a loop: tightening changes who is named under the threshold, never who stays beyond.
- *A stranger enrolled later* (the one poisoning risk left: their learned face would veto them):
  enrolling faces removes every learned stranger within ``visitor_distance`` of them
  (:meth:`facestream.models.store.gallery.Gallery.add_person`), and naming a visitor removes it.
- *Bounded and aged.* At most ``learn_strangers`` (the oldest leave first), each expiring
  ``sightings_retention_h`` after it was learned, like the visitor it came from; ``facestream forget``
  erases it with the rest of the visitor.

The workers learn every ``learn_every_s`` (one of them at a time, by a lock). Called through
``call(*args)`` like the other stores.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, Callable, List, Optional, Sequence

import numpy as np

from facestream.keys import Keys
from facestream.models.impostors import SiteModel, Stranger, impostor_tail, learn
from facestream.models.store.knn import (
    COHORT,
    PERSON_SCHEMA,
    VECTOR_FIELD,
    create_vector_index,
    indexed,
    knn_command,
    search_with,
)
from facestream.models.store.sightings import tag
from facestream.models.store.stamp import stamped
from facestream.models.store.visitors import Visitors
from facestream.replies import as_dict, text

if TYPE_CHECKING:
    from facestream.config import Settings

Call = Callable[..., Any]
#: Visitors looked at per run (the most recent first): a run costs one KNN each, in a worker's loop.
BATCH = 100
#: Learned strangers looked at around each newly enrolled face.
NEAR_K = 10


class SiteStrangers:
    """The learned strangers of one key prefix (index tier)."""

    def __init__(self, call: Call, keys: Keys, settings: Settings):
        self.call, self.keys, self.s = call, keys, settings
        self.retention_ms = int(settings.sightings_retention_h * 3_600_000)

    def learn(self, now_ms: Optional[int] = None) -> Optional[SiteModel]:
        """Learn the recent visitors that qualify and store the site model if anything changed; None when
        another worker learned within ``learn_every_s`` (or learning is off)."""
        if not self.s.learn_strangers:
            return None
        now = int(time.time() * 1000) if now_ms is None else now_ms
        period = max(1, int(self.s.learn_every_s * 1000))
        if not self.call("SET", self.keys.strangers + ":lock", now, "NX", "PX", period):
            return None
        stamp, faces = stamped(self.call, self.keys), indexed(self.call, self.keys.index)
        if stamp is None or not faces:  # nobody enrolled yet: nobody to be a stranger to
            return None
        changed = self._expire(now)
        for v in Visitors.of(self.call, self.keys, self.s, stamp.dim).recent(BATCH, now - 2 * period):
            too_near = v.near > self.s.learn_near_share * v.looks  # too often near someone: maybe them
            if not too_near and v.looks < self.s.learn_looks:
                continue
            learned = bool(self.call("EXISTS", self.keys.stranger(v.visitor_id)))
            if too_near and learned:
                changed = self._drop([v.visitor_id]) > 0 or changed
            elif not too_near and not learned:
                changed = self._consider(v.visitor_id, faces, now) or changed
        changed = self._bound() or changed
        return self.store() if changed else None

    def _consider(self, vid: str, faces: int, now: int) -> bool:
        """Learn visitor ``vid`` if its centroid is further than the ceiling from every enrolled face."""
        raw = self.call("HGET", self.keys.visitor(vid), VECTOR_FIELD)
        if raw is None:
            return False
        centroid = np.frombuffer(bytes(raw), dtype="<f4")
        nn = search_with(self.call, self.keys.index, centroid, 1, self.s.hnsw_ef_runtime)
        person, distance = nn[0] if nn else ("", 4.0)
        if distance <= self.s.match_threshold:
            return False
        create_vector_index(self.call, self.keys.cohort_index, self.keys.cohort_prefix, PERSON_SCHEMA, len(centroid),
                            self.s.hnsw_m, self.s.hnsw_ef_construction, self.s.hnsw_ef_runtime)
        key = self.keys.stranger(vid)
        self.call("HSET", key, "person_id", COHORT, VECTOR_FIELD, bytes(raw), "source", "site:" + vid, "not_of", "",
                  "created_ms", now, "nearest", person, "distance", "%.5f" % distance, "faces", faces)
        self.call("PEXPIRE", key, self.retention_ms)
        self.call("ZADD", self.keys.strangers, now, vid)
        return True

    def _expire(self, now: int) -> bool:
        """Drop the register's entries whose faces expired."""
        return int(self.call("ZREMRANGEBYSCORE", self.keys.strangers, "-inf", now - self.retention_ms)) > 0

    def _bound(self) -> bool:
        """Let the oldest leave while more than ``learn_strangers`` are learned."""
        excess = int(self.call("ZCARD", self.keys.strangers)) - self.s.learn_strangers
        if excess <= 0:
            return False
        return self._drop([text(vid) for vid in self.call("ZRANGE", self.keys.strangers, 0, excess - 1)]) > 0

    def strangers(self) -> List[Stranger]:
        """Every learned stranger still kept."""
        out = []
        for vid in self.call("ZRANGE", self.keys.strangers, 0, -1):
            row = self.call("HMGET", self.keys.stranger(text(vid)), "nearest", "distance", "faces")
            if row[1] is not None:
                out.append(Stranger(text(row[0] or b""), float(text(row[1])), int(text(row[2] or b"0"))))
        return out

    def model(self) -> SiteModel:
        """What the learned strangers show of the embedder's impostor model (nothing without a shipped one)."""
        stamp = stamped(self.call, self.keys)
        tail = impostor_tail(stamp.model_id) if stamp is not None else ()
        return learn(self.strangers(), tail, self.s.match_threshold, self._faces_of, self.s.learn_min_strangers)

    def store(self) -> SiteModel:
        """Compute the site model and store it for the workers (``fs:policy:site``)."""
        model = self.model()
        self.call("SET", self.keys.site_policy, json.dumps({**model.to_json(), "at_ms": int(time.time() * 1000)}))
        return model

    def _faces_of(self, person_id: str) -> int:
        reply = self.call("FT.SEARCH", self.keys.index, "@person_id:{%s}" % tag(person_id), "LIMIT", "0", "0",
                          "DIALECT", "2")
        return int(reply[0])

    def leave(self, visitor_ids: Sequence[str]) -> int:
        """Forget learned strangers (a visitor named, enrolled or erased); returns how many were learned."""
        gone = self._drop(visitor_ids)
        if gone:
            self.store()
        return gone

    def _drop(self, visitor_ids: Sequence[str]) -> int:
        """Take visitors out of the register and the cohort; returns how many were learned."""
        if not visitor_ids:
            return 0
        gone = int(self.call("ZREM", self.keys.strangers, *visitor_ids))
        for vid in visitor_ids:
            self.call("DEL", self.keys.stranger(vid))
        return gone

    def leave_near(self, vectors: Sequence[np.ndarray]) -> int:
        """Forget the learned strangers within ``visitor_distance`` of any of ``vectors`` (faces being
        enrolled: that stranger is now someone). Returns how many."""
        if not vectors or not int(self.call("ZCARD", self.keys.strangers)):
            return 0
        prefix, near = self.keys.stranger(""), set()
        for v in vectors:
            try:
                reply = self.call(*knn_command(self.keys.cohort_index, v, NEAR_K, max(self.s.hnsw_ef_runtime, NEAR_K)))
            except Exception:  # noqa: BLE001 - no cohort index: nothing learned to leave
                return 0
            for i in range(1, len(reply), 2):
                key, dist = text(reply[i]), float(text(as_dict(reply[i + 1])["dist"]))
                if key.startswith(prefix) and dist <= self.s.visitor_distance:
                    near.add(key[len(prefix):])
        return self.leave(sorted(near))
