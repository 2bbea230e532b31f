"""The KNN query every vector index is searched with, and how such an index is made, without redis-py.

:func:`knn_command` builds the FT.SEARCH and :func:`parse_knn` reads its RESP2 reply, so that the
worker (redis-py ``execute_command``) and the in-server gear (RedisGears ``execute``, whose image
has no redis-py) send and parse exactly the same thing. RediSearch's ``L2`` metric is the *squared*
Euclidean distance; thresholds are in those units.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from facestream.replies import as_dict, text

METRIC = "L2"
VECTOR_FIELD = "vector"
#: The fields besides the vector of the gallery's and the cohort's indexes.
PERSON_SCHEMA = ("person_id", "TAG", "CASESENSITIVE")
#: The ``person_id`` every cohort face carries in its index (the KNN reply names the field).
COHORT = "cohort"

def knn_command(index: str, vector: np.ndarray, k: int, ef: int, where: str = "*",
                returns: Sequence[str] = ("person_id",)) -> list[Any]:
    """FT.SEARCH arguments for the ``k`` nearest entries to one unit vector among those ``where`` selects,
    returning the fields ``returns`` and the distance ``dist``."""
    return [
        "FT.SEARCH", index,
        f"{where}=>[KNN {k} @{VECTOR_FIELD} $vec EF_RUNTIME {ef} AS dist]",
        "PARAMS", "2", "vec", np.asarray(vector, dtype="<f4").tobytes(),
        "SORTBY", "dist", "RETURN", str(len(returns) + 1), *returns, "dist",
        "LIMIT", "0", str(k), "DIALECT", "2",
        "TIMEOUT", "0",  # never a silently partial answer (RediSearch's default is 500 ms, then partial)
    ]  # fmt: skip


def create_vector_index(call: Callable[..., Any], index: str, prefix: str, schema: Sequence[str], dim: int, m: int,
                        ef_construction: int, ef_runtime: int | None = None, where: str | None = None) -> None:
    """FT.CREATE an HNSW index over the hashes under ``prefix`` (``schema``: the fields besides the vector);
    an index of that name made meanwhile (another worker) is fine, any other error is raised."""
    params = ["TYPE", "FLOAT32", "DIM", str(dim), "DISTANCE_METRIC", METRIC, "M", str(m),
              "EF_CONSTRUCTION", str(ef_construction)] + ([] if ef_runtime is None else ["EF_RUNTIME", str(ef_runtime)])
    try:
        call("FT.CREATE", index, "ON", "HASH", "PREFIX", "1", prefix, *(["FILTER", where] if where else []), "SCHEMA", *schema,
             VECTOR_FIELD, "VECTOR", "HNSW", str(len(params)), *params)
    except Exception as e:  # redis-py ResponseError, or RedisGears' plain exception
        if "already exists" not in str(e).lower():
            raise

def parse_knn(reply: Sequence[Any]) -> list[tuple[str, float]]:
    """(person_id, squared L2) pairs from a RESP2 FT.SEARCH reply ``[total, key, [f, v, ...], ...]``."""
    out = []
    for i in range(2, len(reply), 2):
        fields = as_dict(reply[i])
        out.append((text(fields["person_id"]), float(text(fields["dist"]))))
    return out

def search_with(call: Callable[..., Any], index: str, vector: np.ndarray, k: int, ef: int) -> list[tuple[str, float]]:
    """KNN through any command caller (redis-py ``execute_command`` or RedisGears ``execute``).

    A gallery that was never created (nobody enrolled yet) is an empty gallery, not an error.
    """
    try:
        reply = call(*knn_command(index, vector, k, max(ef, k)))
    except Exception as e:  # redis-py ResponseError, or RedisGears' plain exception
        if no_index(e):
            return []
        raise
    return parse_knn(reply)


def indexed(call: Callable[..., Any], index: str) -> int:
    """How many entries ``index`` holds (0: no such index yet)."""
    try:
        return int(text(as_dict(call("FT.INFO", index)).get("num_docs", 0)))
    except Exception as e:  # redis-py ResponseError, or RedisGears' plain exception
        if no_index(e):
            return 0
        raise


def no_index(error: Exception) -> bool:
    """Whether a RediSearch error says the index does not exist (RediSearch 2.6-2.10 word it two ways)."""
    return "no such index" in str(error).lower() or "unknown index" in str(error).lower()


def nearest_stranger(call: Callable[..., Any], cohort_index: str, vector: np.ndarray, ef: int) -> float | None:
    """Squared L2 to the nearest cohort face through any command caller (None: no cohort)."""
    nn = search_with(call, cohort_index, vector, 1, ef)
    return nn[0][1] if nn else None
