"""CLIP text and image encoders (transformers on torch), loaded from a local folder.

The folder is what ``CLIPModel.save_pretrained`` plus the tokenizer's and image processor's
``save_pretrained`` write (a Hugging Face CLIP checkpoint folder). Nothing is downloaded:
loading uses ``local_files_only``. torch, transformers and pillow are the optional ``clip``
extra (``pip install 'taskloom[clip]'``); they are imported only when a CLIP model is built,
so the rest of taskloom runs without them.

Embeddings are CLIP's projected features, L2-normalised (dot product = cosine), so a text
vector from ``ClipTextEncoder`` can be compared with an image vector from
``ClipImageEncoder`` of the same model.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from taskloom.ml.encoders.base import l2_normalise


class ClipUnavailable(RuntimeError):
    """torch/transformers/pillow are not installed (the ``clip`` extra)."""


def _import_clip() -> tuple[Any, Any, Any]:
    try:
        import torch
        import transformers
        from PIL import Image
    except ImportError as exc:
        raise ClipUnavailable(
            f"CLIP needs torch, transformers and pillow ({exc.name} is missing); "
            "install them with: pip install 'taskloom[clip]'"
        ) from exc
    return torch, transformers, Image


class ClipModel:
    """A CLIP model, its tokenizer and its image processor, from ``model_dir``."""

    def __init__(self, model_dir: str | Path, *, batch_size: int = 32) -> None:
        torch, transformers, image_mod = _import_clip()
        self._torch = torch
        self._image = image_mod
        self.model_dir = Path(model_dir)
        self.batch_size = batch_size
        if not (self.model_dir / "config.json").is_file():
            raise FileNotFoundError(
                f"{self.model_dir} is not a CLIP model folder (no config.json); save one with "
                "CLIPModel.save_pretrained and the processor's save_pretrained"
            )
        transformers.utils.logging.disable_progress_bar()
        self.model = transformers.CLIPModel.from_pretrained(
            str(self.model_dir), local_files_only=True
        ).eval()
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(
            str(self.model_dir), local_files_only=True
        )
        # transformers 5 names the PIL-based processor CLIPImageProcessorPil (the default
        # one wants torchvision); 4.x has only CLIPImageProcessor
        processor_cls = (
            getattr(transformers, "CLIPImageProcessorPil", None) or transformers.CLIPImageProcessor
        )
        self.image_processor = processor_cls.from_pretrained(
            str(self.model_dir), local_files_only=True
        )
        self.max_length = int(self.model.config.text_config.max_position_embeddings)
        self.dim = int(self.model.config.projection_dim)
        # torch modules are not documented as thread-safe for concurrent forward passes
        self._lock = threading.Lock()

    @staticmethod
    def _features(out: Any) -> Any:
        # transformers 4.x returns the tensor, 5.x an output object with pooler_output
        return out if hasattr(out, "detach") else out.pooler_output

    def encode_text(
        self, texts: Sequence[str], on_batch: Callable[[int], None] | None = None
    ) -> np.ndarray:
        parts = []
        for start in range(0, len(texts), self.batch_size):
            batch = [str(t) for t in texts[start : start + self.batch_size]]
            enc = self.tokenizer(
                batch,
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            )
            with self._lock, self._torch.inference_mode():
                feats = self._features(
                    self.model.get_text_features(
                        input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]
                    )
                )
            parts.append(feats.float().cpu().numpy())
            if on_batch is not None:
                on_batch(len(batch))
        if not parts:
            return np.zeros((0, self.dim), np.float32)
        return l2_normalise(np.concatenate(parts))

    def load_image(self, data: bytes) -> Any:
        """Decode image bytes to an RGB PIL image (raises ValueError when they are not one)."""
        try:
            img = self._image.open(io.BytesIO(data))
            img.load()
        except Exception as exc:  # PIL raises several unrelated types
            raise ValueError(f"not an image pillow can read: {exc}") from exc
        return img.convert("RGB")

    def encode_images(
        self, images: Sequence[Any], on_batch: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """``images``: PIL images or encoded image bytes."""
        parts = []
        for start in range(0, len(images), self.batch_size):
            batch = [
                self.load_image(bytes(im))
                if isinstance(im, bytes | bytearray)
                else im.convert("RGB")
                for im in images[start : start + self.batch_size]
            ]
            pixels = self.image_processor(images=batch, return_tensors="pt")["pixel_values"]
            with self._lock, self._torch.inference_mode():
                feats = self._features(self.model.get_image_features(pixel_values=pixels))
            parts.append(feats.float().cpu().numpy())
            if on_batch is not None:
                on_batch(len(batch))
        if not parts:
            return np.zeros((0, self.dim), np.float32)
        return l2_normalise(np.concatenate(parts))


class ClipTextEncoder:
    """Texts -> CLIP text vectors (a ``ModelEncoder``)."""

    def __init__(self, model: ClipModel) -> None:
        self.model = model

    @property
    def dim(self) -> int:
        return self.model.dim

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str)

    def encode(
        self, items: Sequence[Any], *, on_batch: Callable[[int], None] | None = None
    ) -> np.ndarray:
        return self.model.encode_text([str(t) for t in items], on_batch)


class ClipImageEncoder:
    """Images (PIL images or encoded bytes) -> CLIP image vectors (a ``ModelEncoder``).
    Where images come from (paths, URLs) is the caller's business: see
    ``taskloom.services.encoders.ImageSource``."""

    def __init__(self, model: ClipModel) -> None:
        self.model = model

    @property
    def dim(self) -> int:
        return self.model.dim

    def accepts(self, value: Any) -> bool:
        return isinstance(value, bytes | bytearray) or hasattr(value, "convert")

    def encode(
        self, items: Sequence[Any], *, on_batch: Callable[[int], None] | None = None
    ) -> np.ndarray:
        return self.model.encode_images(list(items), on_batch)
