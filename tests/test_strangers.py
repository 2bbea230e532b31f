"""Safe naming at a realistic gallery size: a 1080p walk-by of strangers only, against 1,000 enrolled people."""

from __future__ import annotations

import time

from facestream.app.bench.detection import FPS, H, W, synthetic
from facestream.app.bench.strangers import distractors, score
from facestream.gears.step import Step
from facestream.gears.tracks import CameraTracks
from facestream.keys import Keys
from facestream.models.curation.enroll import Item, enroll
from facestream.models.store.gallery import Gallery
from facestream.models.store.strangers import SiteStrangers
from facestream.models.vision.analyzer import FaceAnalyzer
from facestream.models.vision.image import encode_jpeg
from facestream.models.vision.profile import DetectionProfile
from facestream.models.vision.scan import CameraScan
from facestream.records import Frame

PEOPLE = 1_000
FRAMES = 600  # 40 s at 15 fps: ~100 strangers walking by, ~5 at a time, 32-192 px


def test_a_walk_by_of_strangers_names_no_one_against_a_thousand_people(r, settings, faces_dir):
    """The strangers of probes/_unknown/ pasted onto real scenes, moving, answered frame by frame on the live
    path (scan, tracks, the step) against 1,000 people of verification/ (none of them in the clip). With the
    fixed threshold of before (0.13, a name on the first look) the same walk-by played through a worker
    (`facestream bench --strangers 1000 --frames 600`) named 100 of 3,355 faces on 5 of 111 tracks; now at
    most 1 in 200 faces and 1 track (measured: 7 faces on 1 track, a near-twin of one
    enrolled person at 0.089; since a cut ends every track, none: docs/naming.md). The issue's bar, no track at all, is not met yet."""
    settings = settings.replace(late_ms=60_000)  # every frame on time, however slow this machine: the same looks each run
    pool = sorted(distractors(faces_dir).items())[:PEOPLE]
    assert len(pool) == PEOPLE, f"the shared faces hold {len(pool)} people to enroll"
    items = [Item(f"p{k:05d}", who, path) for k, (who, paths) in enumerate(pool) for path in paths]
    gallery_faces = sum(enroll(Gallery(r, settings), items, settings, workers=2).enrolled.values())
    frames = synthetic(settings, faces_dir, FRAMES)[0]
    step = Step(settings, FaceAnalyzer(settings), r.execute_command, "t")
    tracks, scan = CameraTracks.of(settings), CameraScan(DetectionProfile.of(settings))
    stream, results = Keys(settings.key_prefix).frames("walk"), []
    for seq, rgb in enumerate(frames, 1):
        frame = Frame("walk", seq, 1_000_000 + round(seq * 1000 / FPS), W, H, encode_jpeg(rgb))
        entry = f"{int(time.time() * 1000)}-{seq}"  # added just now, as for a camera the worker keeps up with
        answer = step.finish(step.prepare(stream, entry, frame.to_fields(), scan), tracks, scan)
        results.append(answer.result)
        for write in answer.writes:  # visitors and sightings, as the commit would make them
            write()
    policy = step.policy.get()
    assert policy.for_faces == gallery_faces and policy.threshold < settings.match_threshold, policy.describe()
    fig = score(PEOPLE, gallery_faces, results)
    print(f"threshold {policy.threshold:.4f}:", fig.line())
    assert fig.tracks >= 80 and fig.faces >= 2_500, fig.line()
    assert fig.named <= fig.faces / 200 and fig.named_tracks <= 1, fig.line()
    # The site learns these strangers (visitors far from all 1,000 people): LFW-like faces against an LFW model,
    # so nothing is tightened. A site model that tightened here would cost names on every ordinary site.
    site = SiteStrangers(r.execute_command, Keys(settings.key_prefix), settings).learn(results[-1].ts_ms + 1000)
    print(f"learned {site.strangers} strangers ({site.used} counted): scale {site.scale}, wolves {site.wolves}")
    assert site.strangers >= 20 and site.scale == 1.0 and not site.wolves, site
