"""How often each labelled person is named in their segments of a clip (labels.json beside the clip).

Run after `facestream produce <clip> --camera CAM` and `facestream work`:

    python scripts/clip_accuracy.py ../shared/data/faces/videos/hamilton_white_house_2009.mp4 --camera cam1
"""

from __future__ import annotations

import argparse
from pathlib import Path

from facestream.config import load_settings
from facestream.keys import Keys
from facestream.models.evaluation.evaluate import segment_scores
from facestream.records import FrameResult
from facestream.server import connect


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clip", type=Path)
    ap.add_argument("--camera", default="cam1")
    a = ap.parse_args()
    s = load_settings()
    results = [FrameResult.from_fields(f) for _, f in connect(s).xrange(Keys(s.key_prefix).results(a.camera))]
    print(f"{len(results)} results for camera {a.camera}")
    for score in segment_scores(results, a.clip):
        print(score.line())


if __name__ == "__main__":
    main()
