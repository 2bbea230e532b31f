"""Least-privilege users per role on the real server: each can do its job and nothing beyond it."""

from __future__ import annotations

import time

import numpy as np
import pytest
import redis
from conftest import NoFaces
from corpus import jpeg

from facestream.acl import ROLES, acl_file, apply, user_name
from facestream.gears.worker import Worker
from facestream.keys import Keys
from facestream.models.store.gallery import FaceEntry, Gallery
from facestream.records import Frame
from facestream.server import connect
from facestream.status import read_status


@pytest.fixture
def as_role(r, settings, tmp_path):
    """settings (and a client) logged in as the user of a role, created on the test server."""
    keys = Keys(settings.key_prefix)
    made = []

    def login(role: str):
        name = apply(r, keys, role, tmp_path / role)
        made.append(name)
        s = settings.replace(redis_username=name, redis_password_file=tmp_path / role)
        return s, connect(s)

    yield login
    for name in made:
        r.execute_command("ACL", "DELUSER", name)


def _denied(call) -> bool:
    try:
        call()
    except redis.exceptions.NoPermissionError:
        return True
    except redis.ResponseError as e:
        return "NOPERM" in str(e) or "no permissions" in str(e)
    return False


def test_each_role_has_what_it_needs_and_no_more(r, settings, as_role):
    keys = Keys(settings.key_prefix)
    _, producer = as_role("producer")
    frame = Frame("door", 1, int(time.time() * 1000), 96, 72, jpeg())
    entry = producer.xadd(keys.frames("door"), frame.to_fields(), maxlen=100, approximate=True).decode()
    assert _denied(lambda: producer.xrange(keys.results("door")))
    assert _denied(lambda: producer.hgetall(keys.person("ann")))
    assert _denied(lambda: producer.xadd(keys.results("door"), {"a": "1"}))

    admin_s, admin = as_role("admin")
    Gallery(admin, admin_s).add_person("ann", "Ann", [FaceEntry(np.eye(128, dtype=np.float32)[0], "test")])
    assert _denied(lambda: admin.flushall()) and _denied(lambda: admin.config_get("*"))

    worker_s, worker = as_role("worker")
    w = Worker(worker, worker_s.replace(block_ms=50, tracking=False), NoFaces(), name="acl-w")
    assert w.run(max_idle_s=0.5).results == 1
    assert r.xlen(keys.results("door")) == 1 and not r.xpending(keys.frames("door"), settings.group)["pending"]
    assert _denied(lambda: worker.flushall()) and _denied(lambda: worker.set("other:key", "1"))

    reader_s, reader = as_role("reader")
    assert reader.xrange(keys.results("door")) and reader.xrange(keys.frames("door"), entry, entry)
    assert _denied(lambda: reader.xadd(keys.results("door"), {"a": "1"}))
    assert _denied(lambda: reader.delete(keys.person("ann")))
    assert read_status(reader, reader_s).gallery_faces == 1  # what the dashboard's health shows, FT.INFO included


def test_the_acl_file_disables_the_default_user_and_keeps_passwords_private(tmp_path):
    path = acl_file(tmp_path, Keys("fs"))
    lines = path.read_text().splitlines()
    assert lines[0].startswith("user default off")
    assert [line.split()[1] for line in lines[1:]] == [user_name(role, Keys("fs")) for role in ROLES]
    for p in [path, *(tmp_path / role for role in ROLES)]:
        assert p.stat().st_mode & 0o077 == 0


def test_a_worker_may_write_sightings_and_visitors_and_a_reader_may_search_them_but_not_name_them(
        r, settings, as_role):
    from facestream.models.curation.library import find, name_visitor
    from facestream.models.store.sightings import SightingIndexes
    from facestream.models.store.visitors import Visitors
    from facestream.records import Sighting

    keys = Keys(settings.key_prefix)
    worker_s, worker = as_role("worker")
    look = np.eye(128, dtype=np.float32)[3]
    vid = Visitors(worker.execute_command, keys, 0.1, 60_000).assign(look, "door", 1)  # FT.CREATE on first use
    SightingIndexes(worker.execute_command, keys).write(Sighting("door-1-0", "door", 1, visitor=vid, vector=look.tobytes(),
                                                 quality={"size": 120, "sharpness": 80.0, "yaw": 0.0}), 60_000)
    reader_s, reader = as_role("reader")
    assert [h.sighting.visitor for h in find(reader, reader_s, look)] == [vid]
    with pytest.raises(Exception, match="no permissions"):
        name_visitor(reader, reader_s, vid, "ann", "Ann")
    assert r.exists(keys.visitor(vid)), "the refused naming changed nothing"


def test_a_worker_whose_acl_predates_the_sweep_still_answers_and_says_why_once(r, settings, as_role, caplog):
    """An ACL file made by an earlier release (the worker role without TIME): the silent-camera sweep is refused,
    said once, and frames are answered all the same."""
    keys = Keys(settings.key_prefix)
    worker_s, worker = as_role("worker")
    r.execute_command("ACL", "SETUSER", worker_s.redis_username, "-time")
    r.xadd(keys.frames("door"), Frame("door", 1, int(time.time() * 1000), 96, 72, jpeg()).to_fields())
    w = Worker(worker, worker_s.replace(block_ms=50, tracking=False), NoFaces(), name="old-acl-w")
    with caplog.at_level("WARNING", logger="facestream.worker"):
        for _ in range(3):
            w.heartbeat()
        assert w.run(max_idle_s=0.5).results == 1
    said = [m for m in caplog.messages if "cannot end silent cameras' presence" in m]
    assert len(said) == 1 and "time" in said[0].lower(), caplog.messages
