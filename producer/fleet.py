"""Several cameras in one process: one producer thread each, stopped together by SIGINT/SIGTERM."""

from __future__ import annotations

import logging
import signal
import threading

from facestream.errors import FacestreamError
from facestream.producer.capture import Producer

log = logging.getLogger("facestream.producer")


def run_all(producers: list[Producer], max_frames: int | None = None) -> None:
    """Run every producer until its source ends or a signal stops them all.

    One producer runs in this thread, so a bad source is raised as a clear error; with several, a
    camera that fails is logged and the others go on.
    """

    def stop(*_: object) -> None:
        for p in producers:
            p.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if len(producers) == 1:
        producers[0].run(max_frames)
        return

    def run(p: Producer) -> None:
        try:
            p.run(max_frames)
        except FacestreamError as e:
            log.error("camera %s stopped: %s", p.camera, e)

    threads = [threading.Thread(target=run, args=(p,), name=p.camera) for p in producers]
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive():
            t.join(0.5)  # a short join keeps the main thread free to take signals
