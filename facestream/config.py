"""All of facestream's settings, in one place, with their defaults and the reason for each.

Every tuning value of the frame's path (how many views a face gets, when a frame counts as late, how
long a track survives a missed detection, the HNSW degree of every index) is a field here; the gear
step receives them as they are (``facestream work`` passes these settings, the in-server gear a namespace
of the same fields), so nothing in gears/ or models/ keeps a number of its own for them. Constants that
describe a model or a protocol rather than tune one (RetinaFace's strides and NMS, dlib's chip size,
the stream field names) stay beside the code they describe.

Values come from (highest first): keyword arguments, ``FACESTREAM_*`` environment variables, the
YAML/TOML file named by ``FACESTREAM_CONFIG`` (or ``--config``), then the defaults below. Every
field is validated; a bad value fails at start-up with the field's name, not deep in a worker.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from facestream.config_file import FileSource
from facestream.errors import ConfigError

#: The labelled faces beside a checkout (../shared/data/faces): demo, eval, calibrate and tests.
SHARED_FACES = Path(__file__).resolve().parents[2] / "shared" / "data" / "faces"


class Settings(BaseSettings):
    """facestream configuration. Each field maps to the environment variable FACESTREAM_<NAME>."""

    model_config = SettingsConfigDict(env_prefix="FACESTREAM_", extra="forbid", validate_default=True)

    # --- Redis -------------------------------------------------------------------------------------
    redis_url: str | None = Field(
        None, repr=False,  # it may hold a password: never in a repr, a log line or a test failure
        description="Redis 8 / Redis Stack URL. Unset: use (and start if needed) the embedded server.",
    )
    index_url: str | None = Field(
        None, repr=False,
        description="The index tier's Redis (gallery, cohort, sightings, visitors, policy): one server with the Query "
        "Engine (Redis 8 / Redis Stack). Unset: the same server as redis_url. Set it when redis_url is a Redis Cluster.",
    )
    redis_username: str | None = Field(None, description="Redis ACL user (see `facestream acl`); default: the URL's.")
    redis_password_file: Path | None = Field(
        None, description="File holding the Redis password (keeps it out of URLs, environments and logs).")
    data_dir: Path = Field(Path(".facestream"), description="Embedded server's data dir (AOF, pid, log).")
    embedded_port: int = Field(6390, ge=1, le=65535, description="Port of the embedded redis-server.")
    redis_max_memory_mb: int = Field(
        4096, ge=0, description="maxmemory of the embedded server (noeviction: a full Redis refuses writes, which "
        "facestream waits out, rather than losing keys). `facestream up --check` compares it with the cameras' "
        "budgets. 0: no limit.")
    memory_headroom_mb: int = Field(
        512, ge=0, description="Memory `up --check` keeps for all but the cameras' streams: the gallery and its "
        "index (~1 KB a face), sightings (~4 KB each, for sightings_retention_h), visitors, the cohort.")
    gears_dir: Path | None = Field(
        None, description="A RedisGears 1.2 build (redisgears.so, gears_python.so, python3_<version>/) that "
        "`facestream redis --gears` loads into the embedded server for the in-server gear; see docs/gears.md.")
    key_prefix: str = Field("fs", pattern=r"^[A-Za-z0-9_]+$", description="Prefix of every key facestream writes.")
    faces_dir: Path = Field(SHARED_FACES, description="Labelled faces (gallery/, probes/, pairs.csv, videos/) "
                            "for demo, eval and calibrate.")

    # --- Streams -----------------------------------------------------------------------------------
    frames_maxlen: int = Field(1000, ge=10, description="Approximate cap (MAXLEN ~) of each camera's frame stream.")
    frames_max_mb: float = Field(
        64.0, gt=0, description="Each camera's frame stream is capped at about this many MB: the producer derives "
        "MAXLEN from its recent frame sizes (1080p: ~210 frames, 14 s at 15 fps; 360p: frames_maxlen).")
    results_maxlen: int = Field(100_000, ge=100, description="Approximate cap of the results stream.")
    events_maxlen: int = Field(100_000, ge=100, description="Approximate cap of the identity-events stream.")
    deadletter_maxlen: int = Field(100_000, ge=100, description="Approximate cap of the dead-letter stream.")
    max_frame_bytes: int = Field(8 * 1024 * 1024, ge=1024, description="Larger JPEG payloads are dead-lettered.")
    max_frame_pixels: int = Field(
        3840 * 2160, ge=64 * 64, description="Larger frames (4K UHD) are dead-lettered, sized from the JPEG header "
        "before decoding: it bounds what each decoding thread holds.",
    )

    # --- Models ------------------------------------------------------------------------------------
    detection: Literal["fast", "balanced", "thorough"] = Field(
        "balanced", description="Live detection profile (docs/detection.md). fast: one pass over the "
        "frame downscaled to detect_max_side; balanced: a pass at scan_coarse_px plus tracked faces, moving areas "
        "and a sweep of the frame searched for faces from scan_min_face_px, within a per-frame budget; thorough: "
        "the whole frame at the scale where faces of name_min_face_px are found (accuracy first, not real time).",
    )
    detector: str = Field(
        "retinaface", description="Face detector (models/vision/detect.py's registry): retinaface (RetinaFace on "
        "onnxruntime, faces from ~20 px), hog (dlib, frontal faces from ~64 px), cnn (dlib, slow), mtcnn (extra).",
    )
    detector_min_score: float = Field(
        0.8, gt=0, lt=1, description="retinaface: faces scored under this are dropped (0.8: no false face in "
        "35 face-free street strips and 20 noise images).",
    )
    onnx_threads: int = Field(1, ge=1, le=64, description="Threads each onnxruntime call may use (per detection "
                              "thread: detect_threads x onnx_threads should not exceed the cores).")
    onnx_providers: Literal["cpu", "cuda", "tensorrt", "auto"] = Field(
        "cpu", description="onnxruntime execution providers: cpu; cuda or tensorrt (onnxruntime-gpu and a GPU); "
        "auto: the best installed.")
    scan_min_face_px: int = Field(
        24, ge=8, le=200, description="balanced: the sweep, moving areas and tracked faces are searched at the scale "
        "where faces of this size (frame pixels) are found.",
    )
    scan_share: float = Field(
        1 / 8, ge=0, le=1, description="balanced: the share of a frame swept for small faces per frame without a "
        "scheduled whole-frame pass (its next tile), and the budget for moving areas besides; 1/8: every part of the "
        "frame every 8 such frames (12 frames at scan_coarse_every 3: 0.8 s at 15 fps). 0: no sweep.",
    )
    scan_coarse_px: int = Field(960, ge=160, description="balanced: the whole-frame pass sees frames downscaled "
                                "to this longest side.")
    scan_coarse_every: int = Field(
        3, ge=1, le=30, description="balanced: while faces are tracked, the whole-frame pass runs on every this-many-th "
        "frame only (the others search the tracked faces, the sweep, moving areas, large ones at the pass's scale): "
        "4 busy 1080p cameras at 5 fps hold (p99 ~285 ms, ~460-850 at 1), recall per frame within 2 points.",
    )
    still_recheck_s: float = Field(
        10.0, ge=0, description="balanced: a camera's frame that has not changed since its last searched frame, "
        "which had no face, is answered unsearched (no face; counted as unchanged), for up to this many seconds of "
        "camera time: then a frame is searched again. Cameras watch empty scenes most of the day. 0: search every "
        "frame. Producers send such a frame as the last JPEG again (encoded anew every still_recheck_s / 2).")
    still_changed_share: float = Field(
        0.001, ge=0, le=1, description="balanced: ... while at most this share of its 1/8-scale pixels changed (a "
        "person walking in, even far away, changes several times more; JPEG noise none).")
    embedder: Literal["onnx", "dlib"] = Field(
        "onnx", description="Face embedder: onnx (an ONNX model on onnxruntime: embedder_model) or dlib (dlib's "
        "own C++ ResNet, the reference; the same vectors as the default ONNX model, ~3x slower).",
    )
    embedder_model: str = Field(
        "", description="onnx: the model file; empty: dlib's 128-d ResNet, converted once from "
        "face_recognition_models into <data_dir>/models. Its chip size and vector size are read from the file; "
        "a gallery enrolled with another model is refused (re-enroll).",
    )
    embedder_align: Literal["dlib", "arcface"] = Field(
        "dlib", description="onnx: how chips are aligned: dlib (dlib's 5-point chip) or arcface (ArcFace's "
        "5-point template on the detector's landmarks, as InsightFace-style 112 px models expect).",
    )
    embedder_colour: Literal["rgb", "bgr"] = Field("rgb", description="onnx: the model's channel order.")
    embedder_mean: float = Field(0.0, description="onnx: subtracted from each pixel (0-255) before embedder_std "
                                 "(ArcFace-style models: 127.5; the default model normalises inside).")
    embedder_std: float = Field(1.0, gt=0, description="onnx: each pixel minus embedder_mean is divided by this "
                                "(ArcFace-style models: 127.5).")
    small_frame_px: int = Field(480, ge=0, description="Frames under this longest side are enlarged 2x to detect.")
    detect_max_side: int = Field(640, ge=160, description="fast: frames are downscaled to this longest side to detect.")
    enroll_views: int = Field(
        2, description="Enrollment/calibration stills: views averaged per face (1: dlib's chip; 2: it and its "
        "mirror image; 4: two paddings and their mirrors). Each view is one network pass (~16 ms).",
    )
    probe_views: int = Field(
        4, description="Live: views averaged for a face's first look (a new track, or every face without tracking); "
        "later looks at a tracked face, and looks too poor to name (blurred, turned), use 1. Measured: 4 views name 4-5 "
        "points more known faces at 1% false accepts.")
    enroll_fallback_detector: Literal["none", "cnn"] = Field(
        "cnn", description="Stills where the detector finds no face are tried again with this one (live: never).")
    min_face_px: int = Field(20, ge=0, description="Smaller detections are ignored.")
    max_viewed_faces: int = Field(
        2, ge=0, description="At most this many first looks per frame (the largest new faces) get probe_views views; "
        "the others one: a crowd of new faces at 1080p must not add hundreds of ms to one frame.")
    looks_per_frame: int = Field(2, ge=1, description="At most this many tracked faces due for another look are "
                                 "embedded per frame (looked at longest ago first; the others next): a crowd of unnamed "
                                 "faces, due every track_reembed_s / 4, must not cost a network pass each per frame.")
    late_ms: int = Field(
        100, ge=0, description="A frame this late (ms since it was added) when taken up is searched and embedded on the "
        "cheap: no sweep or moving areas, one view per new face, at most late_looks fresh looks at tracked faces; "
        "keeping up comes first (4 x 1080p at 5 fps on 2 cores: p99 ~195 ms at 150, ~160 at 100, as many faces named).")
    late_looks: int = Field(
        1, ge=0, description="A late frame still looks again at this many of its tracked faces that are due (the "
        "largest): it costs little, and tracks keep converging on their names while the worker catches up.")

    # --- Matching ----------------------------------------------------------------------------------
    match_threshold: float = Field(
        0.13, gt=0, lt=4, description="Max squared L2 between unit vectors to accept a match: the ceiling; without a "
        "calibration the threshold in force is derived from max_false_accepts for the gallery's size (docs/naming.md).",
    )
    max_false_accepts: float = Field(
        0.04, ge=0, lt=1, description="How often a stranger's face may come within the threshold of some enrolled "
        "face, per face: the threshold is derived from it for the gallery's size with the embedder's impostor model "
        "(models/impostors.py), so it tightens as the gallery grows. Every false name is such a face, and the margin "
        "and cohort tests refuse most of them (measured: 0.7% of strangers named at 0.04, 228 enrolled faces; 0% at "
        "778). 0: a fixed match_threshold.",
    )
    match_margin: float = Field(
        0.03, ge=0, description="Best person must beat the next different person by this much (squared L2)."
    )
    cohort_margin: float = Field(
        0.02, ge=-4, le=4, description="The best enrolled face must beat the nearest cohort face (people never "
        "enrolled, feedback's 'not X' faces) by this much; -4: the cohort is not consulted. "
        "`facestream calibrate --identify` sets it.",
    )
    name_min_face_px: int = Field(32, ge=0, description="Faces smaller than this are not named (reason too_small).")
    name_min_sharpness: float = Field(
        5.0, ge=0, description="Faces whose aligned chip is blurrier than this (variance of the Laplacian; the "
        "blurriest of 486 LFW probes: 6.4) are not named (reason blurry).",
    )
    name_max_yaw: float = Field(
        0.45, gt=0, description="Faces turned further than this (nose offset in eye distances; 0 frontal) are not "
        "named (reason turned). On the LFW probes, the nearest person is right for 98% of faces under 0.3, 50% over 0.4.",
    )
    knn_k: int = Field(10, ge=1, le=1000, description="Neighbours fetched per face before the open-set decision.")
    hnsw_m: int = Field(32, ge=2, le=512, description="HNSW graph degree of the gallery index (32: recall@1 0.997 at 1M faces; 16: 0.939).")
    hnsw_ef_construction: int = Field(200, ge=10, description="HNSW build-time candidate list of every vector index (gallery, cohort, sightings, visitors).")
    hnsw_ef_runtime: int = Field(200, ge=10, description="HNSW query-time candidate list.")

    # --- MQTT (facestream mqtt) ---------------------------------------------------------------------
    mqtt_host: str = Field("127.0.0.1", description="MQTT broker host (facestream mqtt).")
    mqtt_port: int = Field(1883, ge=1, le=65535, description="MQTT broker port (8883 with mqtt_tls, usually).")
    mqtt_username: str | None = Field(None, description="MQTT login; its password is read from mqtt_password_file.")
    mqtt_password_file: Path | None = Field(None, description="File holding the MQTT password (never a setting).")
    mqtt_tls: bool = Field(False, description="Connect to the broker over TLS (the system's CA certificates).")
    mqtt_topic_prefix: str = Field("facestream", min_length=1, description="Prefix of every topic published.")
    mqtt_discovery_prefix: str = Field("homeassistant", description="Home Assistant discovery prefix; empty: none.")

    # --- Sightings and visitors -------------------------------------------------------------------
    sightings: bool = Field(
        True, description="Keep each track's best views (vector, thumbnail, who) as searchable sightings, and "
        "group unknown faces into visitors (docs/sightings.md).",
    )
    sightings_retention_h: float = Field(
        72.0, gt=0, description="Sightings and visitors expire this long after they were last written (key "
        "expiry: no sweeper). ~4 KB of Redis memory per sighting.",
    )
    sightings_bucket_h: float = Field(
        6.0, gt=0, le=168, description="Sightings are indexed in time buckets this long (one HNSW graph each): "
        "a search touches the buckets of its window. Smaller: faster windowed searches, more indexes.",
    )
    sightings_per_track: int = Field(
        3, ge=1, le=50, description="Views kept per track (the best by size, sharpness and pose); an untracked "
        "face is one sighting per look.",
    )
    thumb_px: int = Field(96, ge=32, le=320, description="Longest side of a sighting's JPEG thumbnail.")
    visitor_young_looks: int = Field(
        8, ge=0, description="A visitor a track has just made is checked against the earlier visitors on this many "
        "of the track's next looks, and merged into one its template fits: the first look of an appearance may be "
        "a poor one (a head turning at a cut), and the template of a few looks finds the stranger seen before.",
    )
    untracked_window_ms: int = Field(
        10_000, ge=1, description="Without tracking, the faces of one label on one camera share one track's "
        "allowance of sightings per this long: a camera filming one stranger for an hour keeps ~1,000 sightings, "
        "not 54,000.",
    )
    sightings_hnsw_m: int = Field(
        16, ge=2, le=512, description="HNSW graph degree of each sightings time bucket and of the visitors' index "
        "(16: a bucket holds ~80k faces at 1M sightings over 72 h, where M 16 finds the nearest exactly).",
    )
    visitor_distance: float = Field(
        0.11, gt=0, lt=4, description="An unknown track joins the nearest visitor whose centroid and exemplars (on "
        "average) are this close (squared L2), else starts a new one. `facestream eval --visitors` measures it.")
    learn_strangers: int = Field(
        2000, ge=0, description="At most this many of the site's strangers (visitors of learn_looks looks further than "
        "match_threshold from every enrolled face) join the cohort and correct the impostor model, the oldest "
        "leaving first, each expiring with sightings_retention_h (docs/naming.md). 0: learn nothing.")
    learn_looks: int = Field(5, ge=1, description="A visitor is learned once it has this many looks (not a glimpse).")
    learn_every_s: float = Field(60.0, gt=0, description="One worker learns the recent visitors this often.")
    learn_min_strangers: int = Field(
        30, ge=5, description="Learned strangers needed before they change any distance (not one odd evening).")
    learn_near_share: float = Field(
        0.25, ge=0, le=1, description="A visitor is learned only while at most this share of its looks came within "
        "match_threshold of an enrolled face, and leaves once more do: it may be that person in poorer light or pose "
        "(measured: Lin-Manuel Miranda's unnamed looks in the demo, 1 in 2; learned, they vetoed his own close-up).")
    search_max_distance: float = Field(
        0.17, gt=0, lt=4, description="`facestream search` lists sightings this close to the photo (squared L2; "
        "the verification threshold).",
    )

    # --- Worker ------------------------------------------------------------------------------------
    group: str = Field("facestream", pattern=r"^[A-Za-z0-9_.-]+$", description="Consumer group of the workers.")
    read_count: int = Field(4, ge=1, le=1000, description="Frames fetched per XREADGROUP call.")
    block_ms: int = Field(1000, ge=1, description="XREADGROUP BLOCK timeout.")
    claim_idle_ms: int = Field(30_000, ge=100, description="Pending frames idle this long are taken over.")
    max_deliveries: int = Field(3, ge=1, description="After this many deliveries a frame is dead-lettered.")
    lag_policy: Literal["all", "latest"] = Field(
        "all", description="'all': answer every frame; 'latest': skip to the newest frames when behind."
    )
    max_lag_frames: int = Field(30, ge=1, description="Under 'latest', frames further behind than this are skipped.")
    tracking: bool = Field(
        True, description="Track faces across a camera's frames and embed a tracked face only every "
        "track_reembed_s (its name is the vote over its track). Each camera is then read by one worker at a time.",
    )
    track_reembed_s: float = Field(0.5, ge=0, description="A tracked face is embedded again after this long.")
    confirm_looks: int = Field(
        2, ge=1, le=20, description="A track is published under a name (result, appear event, MQTT, dashboard) once "
        "this many of its looks named that person, or one look was within the threshold by confirm_confidence; until "
        "then it is unknown, reason confirming. One look that matched is the typical false name of a crowd.",
    )
    confirm_confidence: float = Field(
        0.5, gt=0, le=1, description="One look this far inside the threshold (confidence = 1 - distance/threshold) "
        "confirms a track's name at once: at 0.5, with 228 faces enrolled, a stranger's look comes that close to one "
        "of them about once in 10,000 looks (the impostor model).",
    )
    track_split_distance: float = Field(
        0.25, gt=0, lt=4, description="A new embedding this far (squared L2) from its track's previous one means "
        "the tracker joined two people (a cut, a crossing): the track's votes are discarded and it starts over.",
    )
    track_lost_s: float = Field(
        1.0, gt=0, description="A track whose face is not detected keeps its id and votes this long (a turned "
        "head, a passer-by in front), so the face is not embedded anew when it comes back.",
    )
    track_cut_delta: float = Field(
        20.0, gt=0, le=255, description="Mean grey-level change (0-255) of a 64x36 copy of the frame since the camera's "
        "previous frame that makes a cut (a new shot, a PTZ move, a camera switch): every track starts over, so no name "
        "carries onto the face that takes a track's place. Measured on the Hamilton clip: its three cuts 28-30, every "
        "other frame at most 14 (95% under 10); a false cut only costs the tracks a new vote.",
    )
    track_fps: float = Field(
        30.0, gt=0, description="The frame rate tracking counts in frames: a tracked face is embedded again after "
        "at most track_reembed_s x this many frames (files played faster than real time still get fresh looks), "
        "and ByteTrack keeps a lost track for track_lost_s x this many frames.",
    )
    detect_threads: int = Field(2, ge=1, le=64, description="Threads decoding and detecting frames ahead, per worker "
                                "(facestream up, unless this is set, shares the cores out between its workers).")
    camera_lease_ms: int = Field(10_000, ge=500, description="With tracking: a dead worker's cameras move after this.")
    discover_interval_s: float = Field(2.0, gt=0, description="How often workers look for new camera streams.")
    answered_ttl_s: float = Field(3600.0, gt=0, description="How long a frame's 'answered' marker guards against replays.")
    absent_after_s: float = Field(3.0, gt=0, description="A person unseen this long on a camera 'leaves'.")
    metrics_port: int = Field(0, ge=0, le=65535, description="Prometheus port of a worker (0: off).")

    def replace(self, **changes: Any) -> Settings:
        """A validated copy with ``changes`` applied (None values leave a setting as it is)."""
        return load_settings(**{**self.model_dump(), **{k: v for k, v in changes.items() if v is not None}})

    @field_validator("enroll_views", "probe_views")
    @classmethod
    def _view_count(cls, v: int) -> int:
        if v not in (1, 2, 4):
            raise ValueError("must be 1, 2 or 4 views")
        return v

    @field_validator("redis_url", "index_url")
    @classmethod
    def _url_shape(cls, v: str | None) -> str | None:
        if v in (None, ""):
            return None
        return check_redis_url(v)

    @model_validator(mode="after")
    def _k_covers_margin(self) -> "Settings":
        if self.match_margin > 0 and self.knn_k < 2:
            raise ValueError("match_margin needs knn_k >= 2 to see a second person")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, FileSource(settings_cls)


def check_redis_url(url: str) -> str:
    """``url`` if redis-py can connect with it (redis://, rediss:// TLS, unix:// socket), else ValueError
    with the reason (never the URL itself: it may hold a password)."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ValueError("must start with redis://, rediss:// (TLS) or unix:// (a socket path)")
    if parts.scheme == "unix":
        if not parts.path:
            raise ValueError("unix:// needs a socket path, e.g. unix:///run/redis/redis.sock")
        return url
    try:
        port = parts.port  # raises on a port that is not a number
    except ValueError:
        raise ValueError("the port must be a number, e.g. redis://host:6379/0") from None
    if not parts.hostname:
        raise ValueError("needs a host, e.g. redis://127.0.0.1:6379/0")
    db = parts.path.strip("/")
    if db and not db.isdigit():
        raise ValueError("the path must be a database number, e.g. redis://host:6379/0")
    if port is not None and not 0 < port < 65536:
        raise ValueError("the port must be 1-65535")
    return url


#: FACESTREAM_* variables that are not settings (read by scripts, the CLI, docker compose or tests).
NON_SETTING_ENV = {"FACESTREAM_CONFIG", "FACESTREAM_DASHBOARD_TOKEN", "FACESTREAM_VENV", "FACESTREAM_CAMERAS",
                   "FACESTREAM_GALLERY", "FACESTREAM_ARTIFACTS", "FACESTREAM_GEARS_SOURCE"}


def unknown_env() -> list[str]:
    """FACESTREAM_* variables that name no setting (a typo would otherwise be ignored silently)."""
    known = {f"FACESTREAM_{name.upper()}" for name in Settings.model_fields} | NON_SETTING_ENV
    lines = []
    for var in sorted(v for v in os.environ if v.upper().startswith("FACESTREAM_") and v.upper() not in known):
        close = difflib.get_close_matches(var.upper(), sorted(known), n=1)
        lines.append(f"  {var}: not a setting" + (f" (did you mean {close[0]}?)" if close else ""))
    return lines


def load_settings(**overrides: Any) -> Settings:
    """Build validated settings; raise ConfigError naming each bad field (and each unknown FACESTREAM_ variable)."""
    if unknown := unknown_env():
        raise ConfigError("invalid configuration:\n" + "\n".join(unknown))
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as e:
        lines = [f"  {'.'.join(map(str, err['loc'])) or 'config'}: {err['msg']}" for err in e.errors()]
        raise ConfigError("invalid configuration:\n" + "\n".join(lines)) from None
