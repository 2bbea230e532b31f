"""Killing and restarting Redis does not kill the producer, the worker or the consumer."""

from __future__ import annotations

import threading
import time

from conftest import free_port

from facestream.config import load_settings
from facestream.consumer.follow import follow
from facestream.gears.worker import Worker
from facestream.keys import Keys
from facestream.models.vision.analyzer import FaceAnalyzer
from facestream.producer.capture import Producer
from facestream.replies import text
from facestream.server import EmbeddedRedis, connect


def test_pipeline_survives_a_redis_restart(tmp_path, faces_dir):
    server = EmbeddedRedis(free_port(), tmp_path)
    server.start()
    s = load_settings(redis_url=server.url, block_ms=200, claim_idle_ms=1000)
    # No fps cap: every frame read is either sent or counted as dropped (Redis down), nothing else.
    producer = Producer(connect(s), s, "cam1", str(faces_dir / "videos" / "hamilton_white_house_2009.mp4"),
                        loop=True, max_side=320)
    worker = Worker(connect(s), s, FaceAnalyzer(s), name="rw")
    seen: list[str] = []
    stop = threading.Event()

    def consume() -> None:
        for _, entry_id, _ in follow(connect(s), s, ("results",), "0", block_ms=200, idle_exit_s=None):
            seen.append(entry_id)
            if stop.is_set():
                return

    threads = [threading.Thread(target=producer.run, daemon=True), threading.Thread(target=worker.run, daemon=True),
               threading.Thread(target=consume, daemon=True)]
    for t in threads:
        t.start()
    try:
        deadline = time.time() + 60
        while len(seen) < 5 and time.time() < deadline:
            time.sleep(0.1)
        assert len(seen) >= 5
        server.stop()  # AOF flushed; clients now get connection errors
        time.sleep(2.0)
        assert all(t.is_alive() for t in threads), "a client died with Redis"
        server.start()
        before_sent, before_seen = producer.stats.sent, len(seen)
        deadline = time.time() + 60
        while (producer.stats.sent <= before_sent + 5 or len(seen) <= before_seen + 3) and time.time() < deadline:
            time.sleep(0.1)
        assert producer.stats.sent > before_sent + 5, "producer resumed"
        assert len(seen) > before_seen + 3, "worker and consumer resumed"
        assert producer.stats.dropped > 0, "frames captured while Redis was down are counted, not queued forever"
        producer.stop()
        threads[0].join(20)
        st = producer.stats
        assert st.read == st.sent + st.dropped, "every frame read was sent or counted as dropped"
        results = connect(s).xrange(Keys(s.key_prefix).results("cam1"))
        deadline = time.time() + 60
        while len(results) < st.sent and time.time() < deadline:  # the worker answers every frame sent
            time.sleep(0.2)
            results = connect(s).xrange(Keys(s.key_prefix).results("cam1"))
        # Every frame sent is answered; a frame whose XADD reply was lost as Redis went down (counted as dropped)
        # may have been added all the same, and is answered too.
        assert st.sent <= len(results) <= st.sent + st.refused, f"{len(results)} results for {st.sent} frames sent"
        deadline = time.time() + 30
        while len(seen) < len(results) and time.time() < deadline:
            time.sleep(0.1)
        assert seen == [text(i) for i, _ in results], "the consumer saw every result once, in order: no gap"
    finally:
        stop.set()
        producer.stop()
        worker.stop()
        for t in threads[:2]:
            t.join(20)
        server.stop()


def test_a_group_consumer_resumes_without_gaps_after_a_redis_restart(tmp_path):
    """`facestream consume --group`: entries it acknowledged stay acknowledged, the rest come after the restart."""
    from facestream.records import FrameResult

    server = EmbeddedRedis(free_port(), tmp_path)
    server.start()
    s = load_settings(redis_url=server.url)
    keys = Keys(s.key_prefix)
    client = connect(s)
    ids = [text(client.xadd(keys.results("cam"), FrameResult(f"{i}-0", "cam", i, 1000 + i).to_fields())) for i in range(10)]
    seen = []
    try:
        for _, entry_id, _ in follow(connect(s), s, ("results",), "0", group="dash", name="c1", idle_exit_s=0.5,
                                     block_ms=100, count=4):
            seen.append(entry_id)
            if len(seen) == 6:
                break  # 6 read; those of the last batch (4) were acknowledged when read
        server.stop()
        server.start()
        client = connect(s)
        ids += [text(client.xadd(keys.results("cam"), FrameResult(f"{i}-0", "cam", i, 1000 + i).to_fields())) for i in range(10, 15)]
        seen += [entry_id for _, entry_id, _ in follow(connect(s), s, ("results",), "0", group="dash", name="c1",
                                                       idle_exit_s=0.5, block_ms=100)]
    finally:
        server.stop()
    # The two entries of the last batch read before the stop were not handed out: they come first after it.
    assert seen == ids, "every entry once, in order, across the stop and the restart"
