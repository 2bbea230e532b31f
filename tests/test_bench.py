"""``facestream bench``: the measurements themselves (not their speed, which depends on the machine)."""

from __future__ import annotations

import numpy as np

from facestream.app.bench.capacity import capacity
from facestream.app.bench.clip import Figures, pipeline_run
from facestream.app.bench.knn import clustered, knn_bench
from facestream.app.bench.tables import update_page
from facestream.keys import Keys


def test_pipeline_bench_answers_every_frame_and_measures_it(r, settings, faces_dir):
    clip = faces_dir / "videos" / "hamilton_white_house_2009.mp4"
    per_frame = settings.model_copy(update={"tracking": False})  # the worker processes must get this too
    fig = pipeline_run(per_frame, clip, [faces_dir / "gallery" / "Lin-Manuel_Miranda"], workers=1, max_frames=110,
                       say=lambda _: None)
    assert fig.frames == 110 and len(fig.latency_ms) == 110 and fig.deadletters == 0
    # Every face embedded, but those too small to name (RetinaFace finds faces under name_min_face_px here).
    assert fig.faces > 0 and 0.8 * fig.faces <= fig.embedded <= fig.faces and "every face embedded" in fig.label
    assert fig.fps > 0 and 0 < fig.pct(50) <= fig.pct(99)
    assert {"decode", "detect", "embed", "search", "total"} <= set(fig.stages)
    assert fig.cpu_s["workers"] > 0 and fig.rss_mb > 50
    assert not list(r.scan_iter(match=f"{Keys(settings.key_prefix + '_bench').prefix}:*")), "scratch keys removed"


def test_capacity_bench_runs_cameras_as_up_does_and_measures_each_part(r, settings, faces_dir):
    """Two cameras through up's processes (a producer each, one worker per camera): what each offered was
    answered, every frame's latency measured, and the CPU of producers, workers and Redis."""
    clip = faces_dir / "videos" / "hamilton_white_house_2009.mp4"
    (fig,) = capacity(settings, clip, [], [2], fps=5, seconds=4, say=lambda _: None)
    assert fig.cameras == 2 and fig.workers == 2 and set(fig.offered) == set(fig.answered) == {"cap0", "cap1"}
    assert all(n >= 10 for n in fig.offered.values()), fig.offered  # ~5 fps for ~4 s each (producer start-up aside)
    assert fig.answered == fig.offered and len(fig.latency_ms) == sum(fig.offered.values())
    assert 0 < fig.pct(50) <= fig.pct(99) and 0.5 <= fig.slowest_rate <= 1.2
    assert set(fig.cpu_cores) == {"producers", "workers", "redis"} and fig.cpu_cores["workers"] > 0
    assert fig.cpu_cores["producers"] > 0 and 0 < fig.idle_cores < fig.cpu_cores["workers"], fig.idle_cores
    assert fig.per_camera == (fig.cpu_cores["workers"] - fig.idle_cores) / 2
    assert fig.faces >= len(fig.latency_ms) / 2 and fig.named == 0, (fig.faces, fig.named)  # a face in most frames; nobody enrolled
    assert not list(r.scan_iter(match=f"{Keys(settings.key_prefix + '_bench').prefix}:*")), "scratch keys removed"


def test_clustered_vectors_look_like_face_embeddings():
    vecs, centres = clustered(1000, per_person=5)
    assert vecs.shape == (1000, 128) and np.allclose(np.linalg.norm(vecs, axis=1), 1, atol=1e-5)
    same = np.sum((vecs[0::5] - vecs[1::5]) ** 2, axis=1)
    other = np.sum((vecs[0::5][:-1] - vecs[0::5][1:]) ** 2, axis=1)
    assert 0.05 < np.median(same) < 0.2, "photos of one person: dlib puts them ~0.1 apart"
    assert 0.6 < np.median(other) < 1.2, "different people: ~0.9 apart"


def test_knn_bench_reports_recall_against_exact_search(r, settings):
    low, high = knn_bench(r, settings, 3000, queries=200, efs=(10, 200), say=lambda _: None)
    assert (low.ef, high.ef, high.size, high.queries) == (10, 200, 3000, 200)
    assert high.recall_at_1 >= 0.98 and high.person_recall_at_1 >= high.recall_at_1 and 0 < high.p50_ms <= high.p99_ms
    assert low.recall_at_1 <= high.recall_at_1
    assert not r.exists(f"{settings.key_prefix}_knn:face:p0:0"), "scratch gallery removed"


def test_a_docs_block_is_replaced_in_place(tmp_path):
    doc = tmp_path / "README.md"
    doc.write_text("intro\n<!-- bench:clip -->\nold\n<!-- /bench:clip -->\nrest\n")
    update_page(doc, "clip", ["| a |", "| b |"])
    assert doc.read_text() == "intro\n<!-- bench:clip -->\n| a |\n| b |\n<!-- /bench:clip -->\nrest\n"
    fig = Figures("x", frames=10, wall_s=2.0, latency_ms=[1.0] * 10)
    assert fig.fps == 5.0
