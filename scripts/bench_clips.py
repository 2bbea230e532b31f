"""Make the three 1080p clips docs/benchmarks.md's capacity tables were measured on, from the shared faces (they are not
ours to ship): ``ham1080.mp4``, the Hamilton clip scaled to 1920x1080 (a busy camera: cuts, a crowd, people moving),
``still1080.mp4``, 10 s of one of its frames with its people painted over and sensor noise added (an empty scene), and
``crowd1080.mp4``, 20 s of ``bench --detection``'s synthetic camera at 15 fps (~5 faces a frame, new ones appearing
all the time)::

    .venv/bin/python scripts/bench_clips.py ../shared/data/faces /tmp
    .venv/bin/facestream bench --capacity /tmp/ham1080.mp4 --enroll ../shared/data/faces/gallery/Barack_Obama \\
        --cameras 1,2,4 --fps 5 --docs docs/benchmarks.md
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from facestream.app.bench.detection import synthetic, write_video
from facestream.config import load_settings

SIZE = (1920, 1080)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("faces", type=Path, help="the shared faces folder (videos/hamilton_white_house_2009.mp4)")
    ap.add_argument("out", type=Path, help="where to write ham1080.mp4, still1080.mp4 and crowd1080.mp4")
    a = ap.parse_args()
    cap = cv2.VideoCapture(str(a.faces / "videos" / "hamilton_white_house_2009.mp4"))
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    busy = cv2.VideoWriter(str(a.out / "ham1080.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), fps, SIZE)
    first = None
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        frame = cv2.resize(bgr, SIZE, interpolation=cv2.INTER_CUBIC)
        first = frame if first is None else first
        busy.write(frame)
    busy.release()
    if first is None:
        raise SystemExit("the Hamilton clip could not be read")
    first[:, 100:1700] = cv2.blur(first[:, 100:1700], (151, 151))  # its people painted over: an empty scene
    still = cv2.VideoWriter(str(a.out / "still1080.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 25, SIZE)
    rng = np.random.default_rng(0)
    for _ in range(250):
        still.write(np.clip(first + rng.normal(0, 3, first.shape), 0, 255).astype(np.uint8))
    still.release()
    write_video(synthetic(load_settings(), a.faces, 300, seed=1)[0], a.out / "crowd1080.mp4")
    print(f"wrote ham1080.mp4, still1080.mp4 and crowd1080.mp4 in {a.out}")


if __name__ == "__main__":
    main()
