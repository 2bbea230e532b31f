"""Every Redis key and stream name facestream uses, built in one place.

Layout (with the default prefix ``fs``)::

    fs:frames:{<camera>}      stream  frame records from one camera (XADD MAXLEN ~ frames_maxlen)
    fs:results:{<camera>}     stream  one result record per processed frame of the camera
    fs:events:{<camera>}      stream  identity events: a person appears on / leaves the camera
    fs:deadletter:{<camera>}  stream  the camera's frames that could not be processed, with the reason
    fs:lost:{<camera>}        string  frames trimmed from the camera's stream before any worker read them
    fs:present:{<camera>}     hash    person_id → "last_seen_ms|name" of people now on the camera (drives events)
    fs:lease:{<camera>}       string  the worker that holds the camera (tracking)
    fs:answered:{<camera>}:<entry id> string  idempotency marker of an answered frame (expires)
    fs:audit               stream  gallery changes: when, who, from which address, what (MAXLEN ~ 10000)
    fs:person:<person_id>  hash    display name, metadata JSON, created time
    fs:face:<person_id>:<n> hash   one enrolled face: person_id, vector (float32 LE), source, quality, JPEG thumbnail
    fs:idx:faces           index   RediSearch HNSW vector index over fs:face:*
    fs:model               string  "<model id> <dim>": the embedding model every vector under the prefix comes from
    fs:facecount:<person_id> string counter used to number a person's faces
    fs:worker:<name>       hash    heartbeat and counters of one worker (expires)
    fs:sighting:<id>       hash    one kept view of a face: camera, time, person/visitor, vector, thumbnail (expires)
    fs:idx:sightings       index   NUMERIC ts_ms + TAG camera/person_id/visitor over fs:sighting:* (no vector)
    fs:idx:sightings:<start ms>:<length ms> index  one time bucket's HNSW vectors (FILTER on ts_ms)
    fs:visitor:<v-NNNNNN>  hash    one stranger seen: centroid, looks (how many near someone), first/last time, cameras
    fs:idx:visitors        index   RediSearch HNSW index over fs:visitor:*
    fs:visitorcount        string  counter numbering visitors
    fs:cohort:<n>          hash    a face of someone never enrolled (cohort add, calibration, feedback): vector, source
    fs:cohort:site:<v-NNNNNN> hash a stranger learned from the site's visitors, with its nearest person (expires)
    fs:idx:cohort          index   RediSearch HNSW index over fs:cohort:*
    fs:strangers           zset    learned strangers' visitor ids, scored by when they were learned
    fs:policy              string  the decision policy a calibration stored (JSON)
    fs:policy:site         string  what the learned strangers showed: scale, wolves (JSON, written by workers)

Every key of one camera carries the camera id as a Redis Cluster hash tag (``{door}``): they live in
one slot, so a frame's commit (result, events, presence, ack: one script) stays atomic on a cluster,
and cameras spread over its masters. The *stream tier* (the camera keys, ``fs:worker:*``) and the
*index tier* (people, faces, cohort, sightings, visitors, policy, model, audit) may be two servers
(``redis_url`` / ``index_url``); the index tier is one Query Engine server, never a cluster.
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

    def camera_key(self, kind: str, camera: str) -> str:
        """``<prefix>:<kind>:{<camera>}``: one of the camera's keys, in the camera's cluster slot."""
        return f"{self.camera_prefix(kind)}{{{check_id('camera', camera)}}}"

    def camera_prefix(self, kind: str) -> str:
        """What the camera keys of ``kind`` start with (then ``{<camera>}``)."""
        return f"{self.prefix}:{kind}:"

    def camera_pattern(self, kind: str) -> str:
        """SCAN pattern of every camera's key of ``kind``."""
        return f"{self.camera_prefix(kind)}{{*}}"

    def camera_of(self, key: str) -> str:
        """The camera id of one of a camera's keys (the hash tag)."""
        return key[key.index("{") + 1:key.index("}")]

    def frames(self, camera: str) -> str:
        return self.camera_key("frames", camera)

    @property
    def frames_prefix(self) -> str:
        return self.camera_prefix("frames")

    def results(self, camera: str) -> str:
        return self.camera_key("results", camera)

    def events(self, camera: str) -> str:
        return self.camera_key("events", camera)

    def deadletter(self, camera: str) -> str:
        return self.camera_key("deadletter", camera)

    def lost(self, camera: str) -> str:
        """Counter of the camera's frames trimmed from its stream before any worker read them."""
        return self.camera_key("lost", camera)

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

    @property
    def site_policy(self) -> str:
        """What the site's own strangers showed of the impostor model (JSON, :class:`facestream.models.impostors.SiteModel`)."""
        return f"{self.prefix}:policy:site"

    @property
    def strangers(self) -> str:
        """The strangers learned into the cohort: visitor id scored by when (:mod:`facestream.models.store.strangers`)."""
        return f"{self.prefix}:strangers"

    def stranger(self, visitor_id: str) -> str:
        """A learned stranger's face in the cohort (under the cohort's prefix, so its index holds it)."""
        return f"{self.cohort_prefix}site:{visitor_id}"

    def presence(self, camera: str) -> str:
        return self.camera_key("present", camera)

    def lease(self, camera: str) -> str:
        return self.camera_key("lease", camera)

    def answered(self, stream: str, entry_id: str) -> str:
        return f"{self.camera_key('answered', self.camera_of(stream))}:{entry_id}"

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
