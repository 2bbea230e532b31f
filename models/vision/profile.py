"""Detection profiles: where and at which scale a live frame, or a still photo, is searched for faces.

Built once from the settings (:meth:`DetectionProfile.of`) and used by the analyzer, the camera scan,
the worker and the benches, so the profile names are decided here and nowhere else:

- ``fast``: one pass over the frame downscaled to ``detect_max_side``;
- ``balanced`` (default): a coarse pass at ``scan_coarse_px``, plus, by the camera's scan
  (:mod:`facestream.models.vision.scan`), the faces of the last second close up, areas that moved, and
  a sweep of the frame at the scale where faces of ``scan_min_face_px`` reach the detector's smallest;
- ``thorough``: the whole frame at the scale where faces of ``name_min_face_px`` are found (full
  resolution for a detector that finds faces that small, enlarged for one that does not).

Scales are in the detector's terms: :attr:`Backend.min_face_px` is the smallest face it finds at
scale 1. Kept valid Python 3.7 (the in-server gear builds one from its settings namespace).
"""

from __future__ import annotations

from dataclasses import dataclass

from facestream.models.vision.detect import backend

PROFILES = ("fast", "balanced", "thorough")
#: A still photo (enrollment, search) is searched at most :data:`STILL_QUICK_SIDE` large first (a portrait's
#: face is found there at a quarter of the cost), then at most :data:`STILL_MAX_SIDE`, then that enlarged 2x,
#: until a face is found.
STILL_QUICK_SIDE = 192
STILL_MAX_SIDE = 1280


@dataclass(frozen=True)
class DetectionProfile:
    """One profile's parameters, in pixels of the frame."""

    name: str  # fast | balanced | thorough
    detector: str  # the registry name of the detector
    detector_min_face: int  # the smallest face the detector finds at scale 1
    frame_px: int  # the whole-frame pass sees frames downscaled to this longest side (never enlarged)
    min_face_px: int  # the smallest face the profile looks for (balanced: in the scan's regions)
    sweep_share: float  # balanced: the share of the frame swept per frame (0: no scan)
    small_frame_px: int  # frames whose longest side is under this are enlarged 2x (few pixels per face)
    late_ms: int  # a frame this late is searched on the cheap (the late_ms setting): no sweep, no moving areas
    still_s: float = 0.0  # balanced: a still, faceless scene goes unsearched this long (camera time); 0: never
    still_share: float = 0.0  # balanced: ... while less than this share of its (1/8 decode) pixels changed
    coarse_every: int = 1  # balanced: the whole-frame pass on every this-many-th frame of a camera

    @classmethod
    def of(cls, s) -> "DetectionProfile":
        """The profile the settings ``s`` choose (Settings, or the gear's namespace of the same fields)."""
        if s.detection not in PROFILES:
            raise ValueError("detection %r: choose one of %s" % (s.detection, ", ".join(PROFILES)))
        smallest = backend(s.detector).min_face_px
        if s.detection == "thorough":
            return cls("thorough", s.detector, smallest, 1 << 30, s.name_min_face_px, 0.0, 0, s.late_ms)
        if s.detection == "fast":
            return cls("fast", s.detector, smallest, s.detect_max_side, smallest, 0.0, s.small_frame_px, s.late_ms)
        return cls("balanced", s.detector, smallest, s.scan_coarse_px, s.scan_min_face_px, s.scan_share,
                   s.small_frame_px, s.late_ms, s.still_recheck_s, s.still_changed_share, s.scan_coarse_every)

    @property
    def scans(self) -> bool:
        """Whether cameras get a scan (tracked faces, motion, sweep) beside the whole-frame pass."""
        return self.name == "balanced"

    def scale_for(self, face_px: float) -> float:
        """The resize factor at which a face of ``face_px`` becomes the smallest the detector finds."""
        return self.detector_min_face / max(1.0, face_px)

    def frame_scale(self, width: int, height: int) -> float:
        """The whole-frame pass's resize factor for a frame of this size."""
        side = max(width, height)
        if side < self.small_frame_px:
            return 2.0
        if self.name == "thorough":
            return max(1.0, self.scale_for(self.min_face_px))
        return min(1.0, self.frame_px / side)

    def still_scales(self, width: int, height: int) -> tuple[float, ...]:
        """The scales a still photo is tried at, cheapest first, until a face is found."""
        quick, full = (min(1.0, side / max(width, height)) for side in (STILL_QUICK_SIDE, STILL_MAX_SIDE))
        return (quick, full, 2 * full) if quick < full else (full, 2 * full)
