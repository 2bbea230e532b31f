"""Every Redis key and stream name facestream uses, built in one place.

Layout (with the default prefix ``fs``)::

    fs:frames:<camera>     stream  frame records from one camera (XADD MAXLEN ~ frames_maxlen)
    fs:results             stream  one result record per processed frame, all cameras
    fs:events              stream  identity events: a person appears on / leaves a camera
    fs:deadletter          stream  frames that could not be processed, with the reason
    fs:lost                hash    camera → frames trimmed from its stream before any worker read them
    fs:audit               stream  gallery changes: when, who, from which address, what (MAXLEN ~ 10000)
    fs:person:<person_id>  hash    display name, metadata JSON, created time
    fs:face:<person_id>:<n> hash   one enrolled face: person_id, vector (float32 LE), source, quality
    fs:idx:faces           index   RediSearch HNSW vector index over fs:face:*
    fs:model               string  "<model id> <dim>": the embedding model every vector under the prefix comes from
    fs:facecount:<person_id> string counter used to number a person's faces
    fs:present:<camera>    hash    person_id → "last_seen_ms|name" of people now on a camera (drives events)
    fs:answered:<stream>:<entry id> string  idempotency marker of an answered frame (expires)
    fs:worker:<name>       hash    heartbeat and counters of one worker (expires)
    fs:sighting:<id>       hash    one kept view of a face: camera, time, person/visitor, vector, thumbnail (expires)
    fs:idx:sightings       index   RediSearch HNSW + NUMERIC ts_ms + TAG camera/person_id/visitor over fs:sighting:*
    fs:visitor:<v-NNNNNN>  hash    one stranger seen: centroid vector, looks, first/last time, cameras (expires)
    fs:idx:visitors        index   RediSearch HNSW index over fs:visitor:*
    fs:visitorcount        string  counter numbering visitors
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from facestream.errors import ConfigError

#: Camera and person ids are used inside key names and RediSearch TAG queries; keeping them to this
#: alphabet means no escaping anywhere (redis-cli, TAG filters, file names).
ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


#: Visitor ids (strangers the pipeline keeps apart, :mod:`facestream.models.store.visitors`); no person id may look like one.
VISITOR_RE = re.compile(r"^v-[0-9]{6,}$")


def check_id(kind: str, value: str) -> str:
    """Return ``value`` if it is a valid camera/person id, else raise ConfigError."""
    if not ID_RE.match(value):
        raise ConfigError(f"{kind} id {value!r} must be 1-64 characters of A-Z a-z 0-9 _ -")
    return value


@dataclass(frozen=True)
class Keys:
    """Key names under one prefix."""

    prefix: str = "fs"

    def frames(self, camera: str) -> str:
        return f"{self.prefix}:frames:{check_id('camera', camera)}"

    @property
    def frames_prefix(self) -> str:
        return f"{self.prefix}:frames:"

    def camera_of(self, frames_key: str) -> str:
        """The camera id of a frame stream key."""
        return frames_key.rsplit(":", 1)[-1]

    @property
    def results(self) -> str:
        return f"{self.prefix}:results"

    @property
    def events(self) -> str:
        return f"{self.prefix}:events"

    @property
    def deadletter(self) -> str:
        return f"{self.prefix}:deadletter"

    @property
    def lost(self) -> str:
        """Hash camera → frames trimmed from its stream before any worker read them."""
        return f"{self.prefix}:lost"

    def person(self, person_id: str) -> str:
        return f"{self.prefix}:person:{check_id('person', person_id)}"

    @property
    def person_prefix(self) -> str:
        return f"{self.prefix}:person:"

    def face_prefix(self, person_id: str | None = None) -> str:
        return f"{self.prefix}:face:" + (f"{person_id}:" if person_id else "")

    def face(self, person_id: str, n: int) -> str:
        return f"{self.face_prefix(check_id('person', person_id))}{n}"

    def face_counter(self, person_id: str) -> str:
        return f"{self.prefix}:facecount:{person_id}"

    @property
    def index(self) -> str:
        return f"{self.prefix}:idx:faces"

    @property
    def audit(self) -> str:
        return f"{self.prefix}:audit"

    @property
    def model(self) -> str:
        """Which embedding model made this prefix's vectors (:mod:`facestream.models.store.stamp`)."""
        return f"{self.prefix}:model"

    @property
    def cohort_prefix(self) -> str:
        """Faces of people who are never enrolled (the impostor bank the decision compares with)."""
        return f"{self.prefix}:cohort:"

    def cohort_face(self, n: int) -> str:
        return f"{self.cohort_prefix}{n}"

    @property
    def cohort_counter(self) -> str:
        return f"{self.prefix}:cohortcount"

    @property
    def cohort_index(self) -> str:
        return f"{self.prefix}:idx:cohort"

    @property
    def policy(self) -> str:
        """The decision policy ``facestream calibrate --identify`` wrote (JSON), read by every worker."""
        return f"{self.prefix}:policy"

    def presence(self, camera: str) -> str:
        return f"{self.prefix}:present:{camera}"

    def lease(self, camera: str) -> str:
        return f"{self.prefix}:lease:{camera}"

    def answered(self, stream: str, entry_id: str) -> str:
        return f"{self.prefix}:answered:{stream.rsplit(':', 1)[-1]}:{entry_id}"

    def worker(self, name: str) -> str:
        return f"{self.prefix}:worker:{name}"

    @property
    def worker_pattern(self) -> str:
        return f"{self.prefix}:worker:*"

    # --- sightings and visitors ----------------------------------------------------------------------
    def sighting(self, sighting_id: str) -> str:
        return f"{self.sighting_prefix}{sighting_id}"

    @property
    def sighting_prefix(self) -> str:
        return f"{self.prefix}:sighting:"

    @property
    def sightings_index(self) -> str:
        return f"{self.prefix}:idx:sightings"

    def visitor(self, visitor_id: str) -> str:
        return f"{self.visitor_prefix}{visitor_id}"

    @property
    def visitor_prefix(self) -> str:
        return f"{self.prefix}:visitor:"

    @property
    def visitors_index(self) -> str:
        return f"{self.prefix}:idx:visitors"

    @property
    def visitor_counter(self) -> str:
        return f"{self.prefix}:visitorcount"
