"""The open-set decision: turn a face's nearest gallery faces (and its nearest cohort face) into a name
or ``unknown``, with the reason.

The rule has three distance tests, each a reason when it fails, plus quality gates before them:

- ``below_threshold``: the nearest enrolled face is further than ``threshold``;
- ``ambiguous``: the next different person is within ``margin`` of the best;
- ``like_a_stranger``: a face of the *cohort* (people who are never enrolled) is nearly as close as the
  best enrolled face (within ``cohort_margin``): this probe looks like many people, not like one;
- ``too_small`` / ``blurry`` / ``turned``: the face is too poor to name at all.

Measured on ../shared (docs/naming.md), this rule with its three values chosen by
``facestream calibrate --identify`` names as many known probes at 1% false accepts as a logistic fusion
of the same distances, and each refusal keeps a reason a user can act on.

A stranger has one chance per enrolled face of coming within ``threshold`` of someone, so a fixed
threshold names more strangers as the gallery grows. Without a calibration the threshold is derived
from a *target* instead (:meth:`Policy.for_gallery`): ``max_false_accepts``, the share of stranger faces
allowed to come within it of some enrolled face, with the embedder's impostor model shipped in
:mod:`facestream.models.impostors` (the distribution of stranger-to-enrolled-face distances measured on
public faces). ``match_threshold`` stays the ceiling: a small gallery is never judged more loosely.

What the site's own strangers showed (:class:`facestream.models.impostors.SiteModel`, learned by the
workers and stored at ``fs:policy:site``) tightens it further: every face's rate by the site's scale,
and a *wolf*'s (a person strangers come nearest to more often than chance) by its own factor
(:meth:`Policy.limit`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

from facestream.models.impostors import SiteModel, distance_at, impostor_tail, rate_at
from facestream.records import UNKNOWN
from facestream.replies import as_dict, text

if TYPE_CHECKING:
    from facestream.models.protocols import PolicySettings

#: Why a face got its name or stayed unknown (the ``reason`` of each face in a result).
NAMED, BELOW_THRESHOLD, AMBIGUOUS, LIKE_A_STRANGER = "named", "below_threshold", "ambiguous", "like_a_stranger"
TOO_SMALL, BLURRY, TURNED, NOT_EMBEDDED = "too_small", "blurry", "turned", "not_embedded"
CONFIRMING = "confirming"  # a track's name not yet confirmed by enough agreeing looks (gears.tracks)
REASONS = (NAMED, BELOW_THRESHOLD, AMBIGUOUS, LIKE_A_STRANGER, TOO_SMALL, BLURRY, TURNED, NOT_EMBEDDED, CONFIRMING)
QUALITY_REASONS = (TOO_SMALL, BLURRY, TURNED)
#: The policy values a calibration sets (the quality gates stay settings).
CALIBRATED = ("threshold", "margin", "cohort_margin")


@dataclass(frozen=True)
class Policy:
    """The decision's parameters; distances are squared L2 between unit vectors (RediSearch's L2)."""

    threshold: float
    margin: float = 0.0
    cohort_margin: float = -4.0  # -4: the cohort never vetoes (no distance between unit vectors exceeds 4)
    min_face_px: int = 0
    min_sharpness: float = 0.0
    max_yaw: float = 1e9
    source: str = "settings"  # where the values came from (a calibration says when, on what, for which FAR)
    gallery_faces: int = 0  # the gallery size the calibration was made on (0: not calibrated)
    tail: tuple = ()  # ((rate, distance), ...): share of stranger-to-enrolled-face distances under each distance
    max_false_accepts: float = 0.0  # uncalibrated: the target the threshold is derived from (0: a fixed threshold)
    for_faces: int = 0  # the gallery size :meth:`for_gallery` derived this threshold for (0: not derived)
    site: SiteModel = SiteModel()  # what the site's strangers showed (scale, wolves)

    @classmethod
    def of(cls, settings: PolicySettings, model_id: str = "") -> "Policy":
        """The policy the settings describe (before any calibration), with the impostor model shipped for
        the embedder ``model_id`` (none: a fixed ``match_threshold``)."""
        tail = impostor_tail(model_id)
        source = ("settings, threshold from max_false_accepts and the shipped impostor model of %s" % model_id
                  if tail else "settings: a fixed match_threshold (no impostor model ships for %s; "
                  "facestream calibrate --identify measures one)" % (model_id or "this embedder"))
        return cls(settings.match_threshold, settings.match_margin, settings.cohort_margin,
                   settings.name_min_face_px, settings.name_min_sharpness, settings.name_max_yaw, source,
                   tail=tail, max_false_accepts=settings.max_false_accepts if tail else 0.0)

    def to_json(self, **extra: object) -> str:
        """The calibrated values and their source as stored in Redis (``extra``: figures to keep beside)."""
        return json.dumps({**{k: getattr(self, k) for k in CALIBRATED}, "source": self.source,
                           "gallery_faces": self.gallery_faces, "tail": [list(p) for p in self.tail], **extra})

    def for_gallery(self, faces: int) -> "Policy":
        """This policy for a gallery of ``faces`` faces. A stranger has one chance per enrolled face of
        matching someone: uncalibrated, the threshold is the distance at which a stranger comes within it
        of some face with probability ``max_false_accepts`` (the shipped impostor model, faces taken as
        independent chances, which over-counts them: safe); calibrated, when the gallery outgrows the one
        calibrated on, it is tightened to keep (chances x per-face rate) where the calibration put it.
        Either rate is divided by the site's scale. Never looser than ``threshold``."""
        if not self.tail or faces <= 0:
            return self
        if self.gallery_faces > 0:
            per_face = rate_at(self.tail, self.threshold) * min(1.0, self.gallery_faces / faces)
        elif self.max_false_accepts > 0:
            per_face = 1.0 - (1.0 - self.max_false_accepts) ** (1.0 / faces)
        else:
            return self
        threshold = distance_at(self.tail, per_face / self.site.scale)
        return replace(self, threshold=min(self.threshold, threshold), for_faces=faces)

    def limit(self, person_id: str) -> float:
        """The distance within which ``person_id`` is named: the threshold, or for a wolf the distance at which
        their faces' rate, times their factor, is what the threshold allows one face."""
        wolf = self.site.wolves.get(person_id)
        if wolf is None or not self.tail:
            return self.threshold
        return min(self.threshold, distance_at(self.tail, rate_at(self.tail, self.threshold) / wolf[0]))

    def learned(self, raw: str) -> "Policy":
        """This policy with the site model stored by the workers (JSON); ValueError (why) for text that is not one."""
        try:
            site = SiteModel.from_json(json.loads(raw))
        except (TypeError, KeyError, ValueError, AttributeError, IndexError) as e:
            raise ValueError(f"not a site model ({type(e).__name__}: {e})") from None
        return replace(self, site=site)

    def near_strangers(self, faces: int) -> Optional[float]:
        """The expected share of stranger faces within ``threshold`` of some face of a ``faces``-face gallery
        (the impostor model's figure, with the site's scale; the margin and cohort tests name fewer), or None
        without a model."""
        if not self.tail or faces <= 0:
            return None
        return 1.0 - (1.0 - min(1.0, rate_at(self.tail, self.threshold) * self.site.scale)) ** faces

    def describe(self) -> str:
        """One line: the distances in force, for which gallery, and where they come from."""
        near = self.near_strangers(self.for_faces or self.gallery_faces)
        return ("threshold %.4f, margin %.4f, cohort margin %.4f%s%s (%s)" % (
            self.threshold, self.margin, self.cohort_margin,
            " for %d gallery faces" % self.for_faces if self.for_faces else "",
            ": %.2f%% of stranger faces expected within it" % (100 * near) if near is not None else "",
            self.source)) + self.site_line()

    def site_line(self) -> str:
        """What the site's strangers changed, as a sentence that starts with '; ' (empty: nothing learned)."""
        s = self.site
        if not s.strangers:
            return ""
        return "; learned from %d of this site's strangers: %s%s" % (
            s.strangers, "they come %.1fx closer than the model" % s.scale if s.scale > 1 else "the model holds",
            ", %d wolf/wolves tightened" % len(s.wolves) if s.wolves else "")

    def calibrated(self, raw: str) -> "Policy":
        """This policy with the distances of a stored calibration; ValueError (why) for text that is not one."""
        try:
            data = json.loads(raw)
            values = {k: float(data[k]) for k in CALIBRATED}
            source = str(data.get("source", "calibrated"))
            tail = tuple((float(r), float(d)) for r, d in data.get("tail", []))
            gallery_faces = int(data.get("gallery_faces", 0))
        except (TypeError, KeyError, ValueError, AttributeError) as e:
            raise ValueError(f"not a decision policy ({type(e).__name__}: {e})") from None
        if not (0 < values["threshold"] < 4 and values["margin"] >= 0 and -4 <= values["cohort_margin"] <= 4):
            raise ValueError(f"decision policy out of range: {values}")
        return replace(self, source=source, tail=tail, gallery_faces=gallery_faces, max_false_accepts=0.0, **values)

    def gate(self, size: int, sharpness: Optional[float] = None, yaw: Optional[float] = None) -> Optional[str]:
        """The quality reason that forbids naming this face, or None."""
        if size < self.min_face_px:
            return TOO_SMALL
        if sharpness is not None and sharpness < self.min_sharpness:
            return BLURRY
        if yaw is not None and abs(yaw) > self.max_yaw:
            return TURNED
        return None


class StoredPolicy:
    """The policy in force: the settings' one with the distances ``facestream calibrate --identify`` stored
    at ``key`` (JSON) and the site model the workers learned at ``site_key``, re-read at most every
    ``ttl_s`` so that both reach running workers. ``call`` runs one Redis command (redis-py's
    ``execute_command`` or the gear's ``execute``)."""

    def __init__(self, call: Callable[..., Any], key: str, site_key: str, index: str, base: Policy,
                 ttl_s: float = 5.0):
        self.call, self.key, self.site_key, self.index, self.base, self.ttl_s = call, key, site_key, index, base, ttl_s
        self._policy, self._at = base, -1e9
        self.unscaled = base  # the stored policy before :meth:`Policy.for_gallery`
        self.problem = None  # type: Optional[str]

    def get(self) -> Policy:
        if time.monotonic() - self._at > self.ttl_s:
            self._at = time.monotonic()
            policy, self.problem = self.base, None
            for key, read in ((self.key, Policy.calibrated), (self.site_key, Policy.learned)):
                raw = self.call("GET", key)
                try:
                    policy = policy if raw is None else read(policy, text(raw))
                except (ValueError, UnicodeDecodeError) as e:  # a bad stored value: decide without it, say why
                    self.problem = f"{key}: {e}"
            self.unscaled = policy
            self._policy = policy.for_gallery(self._gallery_faces()) if policy.tail else policy
        return self._policy

    def _gallery_faces(self) -> int:
        try:
            return int(text(as_dict(self.call("FT.INFO", self.index)).get("num_docs", 0)))
        except Exception:  # no index yet (redis-py ResponseError, or the gear's plain exception)
            return 0


@dataclass(frozen=True)
class Match:
    person_id: str  # UNKNOWN when nobody passes
    distance: Optional[float]  # squared L2 of the best gallery face (None: empty gallery, or not searched)
    confidence: float  # 0 (at the threshold or unknown) .. 1 (identical)
    runner_up: Optional[float] = None  # best distance of the next different person
    reason: str = NAMED  # one of REASONS
    stranger: Optional[float] = None  # distance of the nearest cohort face (None: no cohort)


def unnamed(reason: str) -> Match:
    """The decision for a face that was not searched (too poor to name, or not embedded)."""
    return Match(UNKNOWN, None, 0.0, reason=reason)


def by_person(neighbours: Sequence[tuple[str, float]]) -> list[tuple[str, float]]:
    """Each person's best distance among ``neighbours`` (several faces per person allowed), nearest first."""
    best = {}  # type: dict[str, float]
    for pid, d in neighbours:
        if d < best.get(pid, float("inf")):
            best[pid] = d
    return sorted(best.items(), key=lambda kv: kv[1])


def decide(neighbours: Sequence[tuple[str, float]], policy: Policy, stranger: Optional[float] = None,
           quality_reason: Optional[str] = None) -> Match:
    """Name the nearest person if the policy's three tests pass (see the module docstring).

    ``neighbours``: (person_id, squared L2) pairs, any order, several per person allowed; ``stranger``:
    the nearest cohort face's distance; ``quality_reason``: what :meth:`Policy.gate` said of the face.
    """
    ranked = by_person(neighbours)
    if not ranked:
        return Match(UNKNOWN, None, 0.0, reason=quality_reason or BELOW_THRESHOLD, stranger=stranger)
    pid, d = ranked[0]
    runner_up = ranked[1][1] if len(ranked) > 1 else None
    if quality_reason:
        reason = quality_reason
    elif d > policy.limit(pid):
        reason = BELOW_THRESHOLD
    elif runner_up is not None and runner_up - d < policy.margin:
        reason = AMBIGUOUS
    elif stranger is not None and stranger - d < policy.cohort_margin:
        reason = LIKE_A_STRANGER
    else:
        return Match(pid, d, max(0.0, min(1.0, 1.0 - d / policy.limit(pid))), runner_up, NAMED, stranger)
    return Match(UNKNOWN, d, 0.0, runner_up, reason, stranger)
