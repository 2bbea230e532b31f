# facestream's in-server gear for RedisGears 1.2 (embedded Python 3.7; run on redis-server 8.2 + RediSearch 2.10).
#
# `facestream gears load` sends this file with RG.PYEXECUTE ... ID facestream UPGRADE after putting
# the current settings into SETTINGS_JSON. The work itself is done by facestream.gears.step (the same code as
# `facestream work`), which the Gears interpreter finds on its PYTHONPATH (`facestream redis --gears`,
# facestream/gearsbuild.py) or installed in it (docker/gears.Dockerfile); this script only wires it to the
# frame streams. RedisGears runs one execution per stream at a time, so a camera's frames come in order.
import json
from types import SimpleNamespace

SETTINGS_JSON = "{}"  # replaced by the loader
SETTINGS = SimpleNamespace(**json.loads(SETTINGS_JSON))
_state = {}


def _step():
    if "step" not in _state:
        from facestream.gears.step import Step
        from facestream.models.vision.analyzer import FaceAnalyzer

        _state["step"] = Step(SETTINGS, FaceAnalyzer(SETTINGS), execute, "gears")
    return _state["step"]


def warmup(*_args):
    """Load the models when the registration is created or loaded, not on the first frame."""
    _step()


def on_frame(record):
    """Answer one frame. Never raises: a failed frame is dead-lettered here, because Gears' failure
    policies act on whole batches (continue = lose it silently, retry = loop forever)."""
    from facestream.gears.step import FrameEntry
    from facestream.records import DeadLetter

    step = _step()
    key, entry_id = record["key"], record["id"]
    try:
        step.handle(FrameEntry(key, entry_id, record.get("value") or {}))
    except Exception as e:  # noqa: BLE001 - see docstring
        letter = DeadLetter(key, entry_id, "gear error: %s: %s" % (type(e).__name__, e),
                            step.keys.camera_of(key), 1, "gears")
        step.commit_deadletter(key, "", letter)


GB("StreamReader").foreach(on_frame).filter(lambda _record: False).register(
    prefix=SETTINGS.key_prefix + ":frames:*",
    batch=1,
    duration=0,
    mode="async_local",  # this shard only; 'async' would coordinate every batch cluster-wide
    onFailedPolicy="continue",  # on_frame never raises, so this only guards against Gears-level errors
    trimStream=False,  # the default True would XTRIM frames other readers (dashboard, workers) still need
    convertToStr=False,  # the defaults would str() every record and keep it as an execution result
    collect=False,
    onRegistered=warmup,
)
