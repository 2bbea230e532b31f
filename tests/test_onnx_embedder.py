"""The ONNX embedder: dlib's ResNet converted from its .dat equals dlib's own network; a model of your
own plugs in through the same settings; a gallery never mixes two models' vectors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facestream.config import load_settings
from facestream.errors import BackendUnavailable, GalleryError
from facestream.keys import Keys
from facestream.models.curation.enroll import Item, enroll
from facestream.models.curation.library import clear_vectors
from facestream.models.store.gallery import FaceEntry, Gallery
from facestream.models.store.stamp import ModelStamp, claim
from facestream.models.types import Detection
from facestream.models.vision.align import arcface_chip
from facestream.models.vision.analyzer import FaceAnalyzer, main_face
from facestream.models.vision.dlib_net import DlibFormatError, read_net
from facestream.models.vision.dlib_onnx import MODEL_ID, convert
from facestream.models.vision.embed import make_embedder
from facestream.models.vision.image import decode


@pytest.fixture(scope="module")
def dat() -> Path:
    import face_recognition_models as frm

    return Path(frm.face_recognition_model_location())


def test_converted_resnet_gives_dlibs_vectors_for_every_gallery_face(faces_dir, tmp_path_factory):
    """Every face of the shared gallery, cut as dlib cuts it: cosine distance to dlib's own vector <= 1e-4,
    whether the chips go through one at a time or in batches."""
    s = load_settings(data_dir=tmp_path_factory.mktemp("data"))  # converted here, from nothing
    onnx, native = make_embedder(s), make_embedder(load_settings(embedder="dlib"))
    assert (onnx.model_id, onnx.dim) == (native.model_id, native.dim) == (MODEL_ID, 128)
    analyzer = FaceAnalyzer(s)
    chips = []
    for path in sorted((faces_dir / "gallery").rglob("*.jpg")):
        rgb = decode(path.read_bytes())
        dets = analyzer.detect_still(rgb)
        for d in dets:
            shape = onnx._shape(rgb, onnx._dlib.rectangle(*d.box))
            chips.append(onnx._dlib.get_face_chip(rgb, shape, 150, 0.25))
    assert len(chips) >= 200
    want = native.network(chips)
    for got in (onnx.network(chips), np.vstack([onnx.network(chips[i: i + 1]) for i in range(len(chips))])):
        cos = 1 - (want * got).sum(1) / np.linalg.norm(want, axis=1) / np.linalg.norm(got, axis=1)
        assert cos.max() <= 1e-4, f"worst face: cosine distance {cos.max():.2e}"


def test_reader_names_what_is_wrong_with_a_file(dat, tmp_path):
    data = dat.read_bytes()
    short = tmp_path / "short.dat"
    short.write_bytes(data[: len(data) // 2])
    with pytest.raises(DlibFormatError, match="file ends early"):
        read_net(short)
    other = tmp_path / "other.dat"
    other.write_bytes(data + b"\0")
    with pytest.raises(DlibFormatError, match="bytes left after the network"):
        read_net(other)
    mangled = bytearray(data)
    at = data.index(b"con_4")  # the first conv layer's version string
    mangled[at: at + 5] = b"fc_99"
    (tmp_path / "mangled.dat").write_bytes(bytes(mangled))
    with pytest.raises(DlibFormatError, match="'fc_99' where con_4 or con_5 or con_6 was expected"):
        convert(tmp_path / "mangled.dat", tmp_path / "out.onnx")
    assert not (tmp_path / "out.onnx").exists()


def _channel_means_model(path: Path, size: int, dim: int) -> Path:
    """A small ONNX model built here: per-channel mean of the chip, then a fixed linear map to ``dim``.

    Its output depends on the colour order and the normalisation it is fed, so the test can see both."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(7).standard_normal((3, dim)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("GlobalAveragePool", ["data"], ["pooled"]), helper.make_node("Flatten", ["pooled"], ["flat"]),
         helper.make_node("MatMul", ["flat", "w"], ["out"])],
        "toy", [helper.make_tensor_value_info("data", TensorProto.FLOAT, [None, 3, size, size])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [None, dim])], [numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


@pytest.fixture(scope="module")
def own_model(tmp_path_factory) -> Path:
    return _channel_means_model(tmp_path_factory.mktemp("own") / "toy_arcface.onnx", 112, 64)


def _own_settings(model: Path, **kw):
    return load_settings(embedder_model=str(model), embedder_align="arcface", embedder_colour="bgr",
                         embedder_mean=127.5, embedder_std=127.5, **kw)


def test_own_model_runs_with_its_contract_and_its_own_dimension(own_model, faces_dir):
    s = _own_settings(own_model)
    emb = make_embedder(s)
    assert emb.dim == 64 and emb.network.size == 112 and emb.model_id.startswith("toy_arcface-")
    rgb = decode(next((faces_dir / "gallery" / "Barack_Obama").iterdir()).read_bytes())
    analyzer = FaceAnalyzer(s)
    dets = analyzer.detect_still(rgb)
    d = dets[main_face(dets, rgb.shape)]
    got = analyzer.embedder.embed(rgb, [d]).vectors[0]
    # What the contract says the model sees: the ArcFace chip of RetinaFace's landmarks, BGR, (x - 127.5) / 127.5.
    chip = arcface_chip(rgb, d.landmarks, 112, 0.25).astype(np.float32)[..., ::-1]
    means = ((chip - 127.5) / 127.5).mean(axis=(0, 1))
    w = np.random.default_rng(7).standard_normal((3, 64)).astype(np.float32)
    want = means @ w
    assert np.allclose(got, want / np.linalg.norm(want), atol=1e-4)
    rgb_fed = make_embedder(_own_settings(own_model).model_copy(update={"embedder_colour": "rgb"}))
    assert not np.allclose(rgb_fed.embed(rgb, [d]).vectors[0], got, atol=1e-3)  # the colour order is honoured
    # Several faces and views in one call: each face's vector as when embedded alone.
    other = Detection(d.box, d.score, d.landmarks + np.float32([3, -2]))
    both = analyzer.embedder.embed(rgb, [d, other], views=2).vectors
    alone = analyzer.embedder.embed(rgb, [other], views=2).vectors[0]
    assert np.allclose(both[1], alone, atol=1e-5) and not np.allclose(both[0], both[1], atol=1e-4)


def test_gallery_follows_the_model_and_refuses_another(own_model, faces_dir, r, settings):
    s = _own_settings(own_model, redis_url=settings.redis_url, key_prefix=settings.key_prefix)
    person = faces_dir / "gallery" / "Barack_Obama"
    summary = enroll(Gallery(r, s), [Item("obama", "Barack Obama", p) for p in sorted(person.iterdir())], s)
    assert summary.enrolled["obama"] >= 1
    g = Gallery(r, s)
    assert g.dim == 64 and r.get(Keys(s.key_prefix).model) == f"{make_embedder(s).model_id} 64".encode()
    info = r.execute_command("FT.INFO", Keys(s.key_prefix).index)
    assert "64" in str(info)  # the index was made for the model's 64 numbers
    with pytest.raises(GalleryError) as e:  # the default model may not add 128-d vectors to it
        enroll(Gallery(r, settings), [Item("obama", "Barack Obama", next(person.iterdir()))], settings)
    assert "re-enroll" in str(e.value) and "\n" not in str(e.value) and "64-d" in str(e.value)
    # Another model of the same size is refused too: vectors of two models are never mixed.
    same_size = ModelStamp("someone-elses-arcface", 64)
    with pytest.raises(GalleryError, match="come from model toy_arcface-.* this embedder is someone-elses-arcface"):
        claim(r.execute_command, Keys(s.key_prefix), same_size)
    # What the message says to do works: clear, then enroll with the default model.
    assert clear_vectors(r, settings) == 1 and r.get(Keys(s.key_prefix).model) is None
    assert enroll(Gallery(r, settings), [Item("obama", "Barack Obama", next(person.iterdir()))], settings).enrolled
    assert Gallery(r, settings).dim == 128


def test_unstamped_gallery_counts_as_dlibs(r, settings):
    """Galleries enrolled before the stamp hold dlib's vectors: the default model serves them, another is refused."""
    Gallery(r, settings, dim=128).add_person("ann", "Ann", [FaceEntry(np.eye(128, dtype=np.float32)[0], "old")])
    keys = Keys(settings.key_prefix)
    r.delete(keys.model)
    with pytest.raises(GalleryError, match="come from model dlib-resnet-v1"):
        claim(r.execute_command, keys, ModelStamp("toy", 128))
    claim(r.execute_command, keys, ModelStamp(MODEL_ID, 128))
    assert r.get(keys.model) == f"{MODEL_ID} 128".encode()


def test_bad_model_files_are_one_line_errors(tmp_path):
    with pytest.raises(BackendUnavailable, match="no such file"):
        make_embedder(load_settings(embedder_model=str(tmp_path / "missing.onnx")))
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(BackendUnavailable, match="onnxruntime cannot load it") as e:
        make_embedder(load_settings(embedder_model=str(junk)))
    assert "\n" not in str(e.value)
    flat = _channel_means_model(tmp_path / "rect.onnx", 112, 8)
    import onnx

    m = onnx.load(flat)
    m.graph.input[0].type.tensor_type.shape.dim[2].dim_value = 100
    onnx.save(m, tmp_path / "rect.onnx")
    with pytest.raises(BackendUnavailable, match="not square"):
        make_embedder(load_settings(embedder_model=str(tmp_path / "rect.onnx")))


def test_embedder_takes_the_execution_providers_setting(tmp_path):
    """onnx_providers picks the embedder's providers as the detector's: cpu here; cuda refused with what is missing."""
    own = _channel_means_model(tmp_path / "p.onnx", 112, 8)
    emb = make_embedder(load_settings(embedder_model=str(own)))
    assert emb.network._session.get_providers() == ["CPUExecutionProvider"]
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        with pytest.raises(BackendUnavailable, match="needs CUDAExecutionProvider.*install onnxruntime-gpu"):
            make_embedder(load_settings(embedder_model=str(own), onnx_providers="cuda"))
