"""Shared fixtures: a real throw-away Redis 8 + RediSearch per test session, and the shared face data."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import pytest
import redis

from facestream.config import SHARED_FACES, Settings, load_settings
from facestream.models.types import Embeddings
from facestream.models.vision.profile import DetectionProfile
from facestream.server import EmbeddedRedis

REPO = Path(__file__).resolve().parents[1]
FACES = Path(os.environ.get("FACESTREAM_FACES_DIR", SHARED_FACES))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory) -> EmbeddedRedis:
    """A real embedded redis-server with RediSearch, on a free port, removed after the session."""
    server = EmbeddedRedis(free_port(), tmp_path_factory.mktemp("redis"))
    server.start(attached=True)  # a child of pytest: it goes when the test run goes, however it ends
    yield server
    server.stop()


@pytest.fixture
def settings(redis_server: EmbeddedRedis, request) -> Settings:
    """Settings pointing at the session server, with a key prefix of this test's own; everything else at the defaults."""
    prefix = "t" + str(abs(hash(request.node.nodeid)) % 10**8)
    return load_settings(redis_url=redis_server.url, key_prefix=prefix)


@pytest.fixture
def r(settings: Settings) -> redis.Redis:
    from facestream.server import connect

    client = connect(settings)
    yield client
    for key in client.scan_iter(match=f"{settings.key_prefix}:*", count=1000):
        client.delete(key)
    client.close()


@pytest.fixture(scope="session")
def faces_dir() -> Path:
    """The shared labelled faces (../shared/data/faces or FACESTREAM_FACES_DIR)."""
    if not (FACES / "gallery").is_dir():
        pytest.skip(f"shared face data not found at {FACES} (set FACESTREAM_FACES_DIR)")
    return FACES


class NoFaces:
    """An analyzer stand-in that finds no face: for tests about frames, streams and permissions, not models."""

    detector = None
    profile = DetectionProfile.of(load_settings(detection="fast"))  # whole frames: no camera scan
    model_id, dim = "dlib-resnet-v1", 128

    @property
    def embedder(self) -> "NoFaces":
        return self

    def warm_up(self, embed: bool = True) -> None:
        pass

    def detect_frame(self, rgb, regions=None) -> list:
        return []

    def embed(self, rgb, detections, views: int = 1) -> Embeddings:
        return Embeddings(np.zeros((0, 128), np.float32), [])

    def align(self, rgb, detections) -> list:
        return []

    def vectors(self, faces, views) -> np.ndarray:
        return np.zeros((0, 128), np.float32)
