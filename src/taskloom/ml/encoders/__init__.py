"""Encoders: fields of documents -> float32 vectors (see ``base`` for the protocol).

Importing this package loads neither onnxruntime models nor torch: models are built when an
encoder is constructed, and torch only for CLIP.
"""

from taskloom.ml.encoders.base import ModelEncoder, NotFitted, TabularEncoder
from taskloom.ml.encoders.categories import CategoriesEncoder
from taskloom.ml.encoders.clip import ClipImageEncoder, ClipModel, ClipTextEncoder
from taskloom.ml.encoders.numeric import NumericEncoder
from taskloom.ml.encoders.text_onnx import OnnxTextEncoder

__all__ = [
    "CategoriesEncoder",
    "ClipImageEncoder",
    "ClipModel",
    "ClipTextEncoder",
    "ModelEncoder",
    "NotFitted",
    "NumericEncoder",
    "OnnxTextEncoder",
    "TabularEncoder",
]
