"""Producer (files, dead RTSP sources) and consumer (follow, resume, groups) against the real Redis."""

from __future__ import annotations

import time

import pytest
from conftest import free_port

from facestream.consumer.follow import follow, to_json
from facestream.keys import Keys
from facestream.producer.capture import Producer, SourceError
from facestream.records import Face, FrameResult


def test_file_is_produced_bounded_and_complete(r, settings, faces_dir):
    clip = faces_dir / "videos" / "hamilton_white_house_2009.mp4"
    s = settings.model_copy(update={"frames_maxlen": 100})
    p = Producer(r, s, "cam1", str(clip), realtime=False, max_side=320)
    st = p.run()
    assert st.sent == 275 and st.dropped == 0
    stream = Keys(s.key_prefix).frames("cam1")
    assert 100 <= r.xlen(stream) < 275  # MAXLEN ~ trims whole nodes: bounded, approximately
    last = r.xrevrange(stream, count=1)[0][1]
    assert last[b"camera"] == b"cam1" and int(last[b"seq"]) == 275 and int(last[b"width"]) == 320
    assert last[b"jpeg"][:2] == b"\xff\xd8"


def test_fps_cap_drops_frames_and_counts_them(r, settings, faces_dir):
    clip = faces_dir / "videos" / "hamilton_white_house_2009.mp4"
    p = Producer(r, settings, "cam2", str(clip), fps=10, realtime=True)
    st = p.run(max_frames=10)
    assert st.sent == 10 and st.dropped >= 15  # ~30 fps source capped to 10 fps


def test_a_file_keeps_its_timing_and_waits_only_for_the_frames_it_sends(r, settings, faces_dir):
    """Played like a camera at 5 fps, a ~30 fps file sends a frame every 0.2 s; the frames it drops are decoded at
    once, not waited for (a wait is a wake-up: CPU on a small machine)."""
    clip = faces_dir / "videos" / "hamilton_white_house_2009.mp4"
    waits: list[float] = []
    p = Producer(r, settings, "cam4", str(clip), fps=5, realtime=True, sleep=lambda s: (waits.append(s), time.sleep(s)))
    t = time.monotonic()
    st = p.run(max_frames=6)
    assert st.sent == 6 and st.dropped >= 20 and 0.95 <= time.monotonic() - t <= 1.6, (st, time.monotonic() - t)
    assert len(waits) <= st.sent, f"{len(waits)} waits for {st.sent} frames sent ({st.read} read)"


def test_a_camera_is_decoded_on_one_ffmpeg_thread(faces_dir):
    """A producer decodes every frame of its camera: on one thread (FFmpeg's default, one per core, costs ~20% more
    CPU on a 2-core machine in hand-overs, for speed a camera's rate does not need)."""
    import cv2

    from facestream.producer.capture import Source

    cap = Source(str(faces_dir / "videos" / "hamilton_white_house_2009.mp4")).open()
    try:
        assert cap.getBackendName() == "FFMPEG" and cap.get(cv2.CAP_PROP_N_THREADS) == 1 and cap.grab()
    finally:
        cap.release()


def test_unopenable_file_is_a_clear_error(r, settings, tmp_path):
    bad = tmp_path / "notavideo.mp4"
    bad.write_text("hello")
    with pytest.raises(SourceError, match="cannot open"):
        Producer(r, settings, "cam3", str(bad)).run()
    with pytest.raises(SourceError, match="not a file, a URL"):
        Producer(r, settings, "cam3", "no-such-thing").run()


class StopAfter:
    """A stand-in for time.sleep that records the waits and stops ``producer`` after ``n`` of them."""

    def __init__(self, n: int):
        self.n, self.waits, self.producer = n, [], None

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        if len(self.waits) >= self.n:
            self.producer.stop()


def test_dead_rtsp_source_retries_with_backoff_without_exiting(r, settings):
    sleep = StopAfter(4)
    p = sleep.producer = Producer(r, settings, "door", f"rtsp://127.0.0.1:{free_port()}/live", sleep=sleep)
    waits = sleep.waits
    st = p.run()
    assert st.reconnects == 4 and st.sent == 0
    assert waits == [1.0, 2.0, 4.0, 8.0]


def _result(camera: str, seq: int) -> FrameResult:
    return FrameResult(f"{seq}-0", camera, seq, 1000 + seq, [Face((1, 2, 3, 4), 1.0, "ann", "Ann", 0.1, 0.5)],
                       {"total": 5.0}, "w", 64, 48)


@pytest.fixture(params=["redis", "fakeredis"])
def streams_client(request, r):
    """The consumer's stream logic runs the same on the real server and on fakeredis."""
    if request.param == "redis":
        return r
    fakeredis = pytest.importorskip("fakeredis")
    return fakeredis.FakeRedis(server=fakeredis.FakeServer(version=(8, 2)))


def test_consume_from_beginning_resume_from_id_and_camera_filter(streams_client, settings):
    r = streams_client
    keys = Keys(settings.key_prefix)
    ids = []
    for i, cam in enumerate(["a", "b", "a"]):  # ids are per stream: 2 ms apart, no two cameras' ids alike
        ids.append(r.xadd(keys.results(cam), _result(cam, i).to_fields()).decode())
        time.sleep(0.002)
    got = [(kind, eid, rec.camera) for kind, eid, rec in
           follow(r, settings, ("results",), "0", block_ms=50, idle_exit_s=0.2)]
    assert [g[1] for g in got] == ids  # every camera's results as one feed, oldest first
    only_a = [rec.seq for _, _, rec in follow(r, settings, ("results",), "0", camera="a", block_ms=50, idle_exit_s=0.2)]
    assert only_a == [0, 2]
    after = [eid for _, eid, _ in follow(r, settings, ("results",), ids[0], block_ms=50, idle_exit_s=0.2)]
    assert after == ids[1:]
    line = to_json("results", ids[0], _result("a", 0))
    assert '"names":["Ann"]' in line


def test_consumer_group_splits_entries(streams_client, settings):
    r = streams_client
    keys = Keys(settings.key_prefix)
    ids = [r.xadd(keys.results("a"), _result("a", i).to_fields()).decode() for i in range(6)]
    one = follow(r, settings, ("results",), "0", group="g", name="c1", block_ms=50, idle_exit_s=0.2, count=2)
    first = next(one)[1]  # c1 has taken a batch of 2
    two = [eid for _, eid, _ in follow(r, settings, ("results",), "0", group="g", name="c2", block_ms=50,
                                       idle_exit_s=0.2, count=2)]
    rest = [eid for _, eid, _ in one]
    assert len(two) == 4 and len([first, *rest]) == 2
    assert sorted([first, *rest, *two]) == ids


def test_source_that_accepts_but_never_answers_does_not_hang_the_producer(r, settings):
    """A camera that accepts the TCP connection and then stalls: the open times out and is retried."""
    import socket
    import threading
    import time

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])  # keep it open, never send a byte
            except OSError:
                pass

    threading.Thread(target=accept, daemon=True).start()
    sleep = StopAfter(2)
    p = sleep.producer = Producer(r, settings, "stall", f"rtsp://127.0.0.1:{srv.getsockname()[1]}/live", sleep=sleep)
    waits = sleep.waits
    t0 = time.monotonic()
    try:
        st = p.run()
    finally:
        stop.set()
        for c in held:
            c.close()
        srv.close()
    assert st.reconnects == 2 and waits == [1.0, 2.0]
    assert time.monotonic() - t0 < 30  # two bounded open attempts, not a hang
