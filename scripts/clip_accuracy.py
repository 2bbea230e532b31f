"""How often each labelled person is named in their segments of a clip (labels.json beside the clip).

Reads the results stream after `facestream produce <clip> --camera CAM` and `facestream work`, maps
each result's frame seq to the clip's time (seq 1 = first frame; PTS start from labels.json's
'start' in video_stream, default 0), and prints, per segment and identity, the share of frames
with a face in which that identity was named.

    python scripts/clip_accuracy.py ../shared/data/faces/videos/hamilton_white_house_2009.mp4 --camera cam1
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import cv2

from facestream.config import load_settings
from facestream.keys import Keys
from facestream.records import FrameResult
from facestream.server import connect


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clip", type=Path)
    ap.add_argument("--camera", default="cam1")
    a = ap.parse_args()
    meta = json.loads((a.clip.parent / "labels.json").read_text())[a.clip.name]
    m = re.search(r"start (\d+\.\d+)", meta.get("video_stream", ""))
    t0 = float(m.group(1)) if m else 0.0
    fps = cv2.VideoCapture(str(a.clip)).get(cv2.CAP_PROP_FPS)
    s = load_settings()
    r = connect(s)
    res = [FrameResult.from_fields(f) for _, f in r.xrange(Keys(s.key_prefix).results)]
    res = [x for x in res if x.camera == a.camera]
    by_seq = {x.seq: x for x in res}
    print(f"{len(res)} results for camera {a.camera}, {len(by_seq)} distinct frames")
    for seg in meta["segments"]:
        frames = [x for seq, x in by_seq.items() if seg["start_s"] <= t0 + (seq - 1) / fps < seg["end_s"]]
        with_face = [x for x in frames if x.faces]
        for who in seg["identities"]:
            named = sum(1 for x in with_face if who in {f.person_id for f in x.faces})
            share = named / len(with_face) if with_face else 0.0
            print(f"{seg['start_s']:5.2f}-{seg['end_s']:5.2f}s {who:20} named in {named}/{len(with_face)} frames "
                  f"with a face ({share:.1%}); {len(frames)} frames in segment")


if __name__ == "__main__":
    main()
