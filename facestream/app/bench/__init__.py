"""``facestream bench``: one module per benchmark (clip, cluster, detection, embedding, gears, knn,
sightings), their shared figures (:mod:`tables`) and process sampling (:mod:`sampler`), and the local
Redis Cluster they and the tests start (:mod:`localcluster`). Needs the ``bench`` extra (psutil)."""
