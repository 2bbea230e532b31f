"""Measure an embedder's impostor model, once, at development time: the distribution of stranger-to-enrolled-face
distances on public faces, as the small table of numbers ``models/impostors.py`` ships (never a face or a vector).

Every ``verification/`` photo of the shared faces (LFW, ~1,000 people) is embedded twice, as the live path
embeds a face's first look (``probe_views``) and as enrollment does (``enroll_views``); every pair of a
probe and an enrolled face of two different people is one impostor distance. The table holds, on a
geometric grid of ranks, the share of those distances at or under each distance; below the smallest
share measured it is extended along the straight line (log share against distance) of its lowest
two decades, and says so. Run it with the settings of the embedder to measure, and paste what it prints into
``models/impostors.py``::

    .venv/bin/python scripts/impostor_table.py ../shared/data/faces
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np

from facestream.config import load_settings
from facestream.models.curation.enroll import embed_files, model_stamp
from facestream.models.store.gallery import FaceEntry

POINTS = 24  # measured points, geometric in rank from the single nearest pair to all of them
EXTENDED = (1e-7, 3e-8, 1e-8)  # shares the table is extended to (3% of strangers near someone among 3M faces)
FIT_DECADES = 2  # the straight line is fitted to the measured points of the lowest two decades


def vectors(paths: list[Path], still: bool) -> dict[Path, np.ndarray]:
    s = load_settings()
    return {p: f.vector for p, f in embed_files(paths, s, 2, still).items() if isinstance(f, FaceEntry)}


def table(faces_dir: Path) -> tuple[list[tuple[float, float]], str]:
    rows = [r for r in csv.DictReader((faces_dir / "manifest.csv").open()) if r["split"] == "pair_only"]
    paths = [faces_dir / r["path"] for r in rows if (faces_dir / r["path"]).is_file()]
    who = {faces_dir / r["path"]: r["identity"] for r in rows}
    probes, enrolled = vectors(paths, still=False), vectors(paths, still=True)
    both = [p for p in paths if p in probes and p in enrolled]
    ids = np.array([who[p] for p in both])
    a = np.stack([probes[p] for p in both]).astype(np.float32)
    b = np.stack([enrolled[p] for p in both]).astype(np.float32)
    d = np.maximum(0.0, 2.0 - 2.0 * a @ b.T)[ids[:, None] != ids[None, :]]
    d.sort()
    ranks = np.unique(np.geomspace(1, len(d), POINTS).astype(int))
    measured = [(float(k / len(d)), float(d[k - 1])) for k in ranks]
    low = [(r, x) for r, x in measured if r <= measured[0][0] * 10**FIT_DECADES]
    slope, cut = np.polyfit([x for _, x in low], np.log10([r for r, _ in low]), 1)
    extended = [(r, float((np.log10(r) - cut) / slope)) for r in EXTENDED if r < measured[0][0]]
    about = (f"{len(both)} faces of {len(set(ids))} people, {len(d)} impostor pairs; measured down to "
             f"{measured[0][0]:.1e}, extended to {EXTENDED[-1]:.0e} along log10(share) = {slope:.1f} x distance "
             f"{cut:+.1f}")
    return sorted(extended) + measured, about


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("faces_dir", type=Path, help="the shared faces (manifest.csv, verification/)")
    args = parser.parse_args()
    model = model_stamp(load_settings()).model_id
    points, about = table(args.faces_dir)
    print(f"    # {about}; {time.strftime('%Y-%m-%d')}\n    {model!r}:")
    print("        (" + ", ".join(f"({r:.3g}, {x:.4f})" for r, x in points) + "),")


if __name__ == "__main__":
    main()
