"""``encode_text`` sentences/s through the job against raw onnxruntime, in the same run.

Same model (all-MiniLM-L6-v2 int8 ONNX), same tokenizer file, same seeded sentences (3 to
30 words drawn from the tokenizer's vocabulary), same onnxruntime defaults on both sides.

- raw: ``tokenizers`` + ``onnxruntime.InferenceSession`` by hand, batches of 64 sorted by
  length (the fastest plain recipe), mean pooling and normalisation in numpy;
- raw, unsorted: the same in document order (what a naive loop does), for reference;
- taskloom job: an ``encode_text`` job (refresh=true) on a SQLite dataset of those
  sentences, run by a worker in this process: paging, encoding and writing the vectors back.

Rounds are interleaved and each side keeps its best (the machine is shared).
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from common import row
from tokenizers import Tokenizer

from taskloom.config import Settings
from taskloom.jobs.worker import Worker
from taskloom.ml.encoders.text_onnx import default_model_path, default_tokenizer_path
from taskloom.runtime import Platform

KEY = "tlk_bench_key_0123456789abcdefghij"
BATCH = 64


def make_sentences(n: int, seed: int = 7) -> list[str]:
    vocab = Tokenizer.from_file(str(default_tokenizer_path())).get_vocab()
    words = sorted(w for w in vocab if w.isalpha() and w.isascii() and len(w) > 2)
    rng = random.Random(seed)
    return [
        " ".join(rng.choice(words) for _ in range(rng.randint(3, 30))).capitalize() + "."
        for _ in range(n)
    ]


class Raw:
    """onnxruntime by hand."""

    def __init__(self) -> None:
        self.tok = Tokenizer.from_file(str(default_tokenizer_path()))
        self.tok.enable_truncation(max_length=256)
        self.tok.enable_padding()  # to the longest of each batch
        self.sess = ort.InferenceSession(
            str(default_model_path()), providers=["CPUExecutionProvider"]
        )

    def encode(self, texts: list[str], *, sort: bool) -> np.ndarray:
        idx = list(range(len(texts)))
        if sort:  # by token count, as taskloom does
            lengths = [sum(e.attention_mask) for e in self.tok.encode_batch(texts)]
            idx.sort(key=lengths.__getitem__)
        out = np.empty((len(texts), 384), np.float32)
        for s in range(0, len(idx), BATCH):
            part = idx[s : s + BATCH]
            enc = self.tok.encode_batch([texts[i] for i in part])
            ids = np.array([e.ids for e in enc], np.int64)
            mask = np.array([e.attention_mask for e in enc], np.int64)
            types = np.array([e.type_ids for e in enc], np.int64)
            hidden = self.sess.run(
                None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
            )[0]
            m = mask[:, :, None].astype(np.float32)
            pooled = (hidden * m).sum(1) / np.maximum(m.sum(1), 1e-9)
            out[part] = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
        return out


def timed(fn) -> float:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=1000, help="sentences")
    ap.add_argument("--rounds", type=int, default=3)
    args, _ = ap.parse_known_args()
    n = args.n
    sentences = make_sentences(n)
    print(f"encode_text: {n:,} sentences (3-30 words), all-MiniLM-L6-v2 int8 ONNX, CPU")
    raw = Raw()
    with tempfile.TemporaryDirectory(prefix="taskloom-bench-") as tmp:
        settings = Settings(data_dir=Path(tmp) / "data", bootstrap_api_key=KEY)
        platform = Platform(settings, workers=0, lock=None).start()
        try:
            s = platform.services
            scope = s.auth.scope(s.auth.authenticate(KEY))
            s.datasets.create(scope, "sentences")
            docs = [{"_id": str(i), "text": t} for i, t in enumerate(sentences)]
            for i in range(0, n, 5000):
                s.documents.insert(scope, "sentences", docs[i : i + 5000])
            worker = Worker(s.jobs, services=s)

            def job() -> None:
                j, _ = s.jobs.submit(
                    scope, "encode_text", {"field": "text", "refresh": True}, dataset="sentences"
                )
                worker.run_one()
                done = s.jobs.get(scope, j["id"])
                assert done["status"] == "completed", done
                assert done["result"]["encoded"] == n, done["result"]

            # warm both (model load, first-run allocations) before timing
            raw.encode(sentences[:128], sort=True)
            job()
            raws, unsorted, jobs = [], [], []
            for _ in range(args.rounds):
                raws.append(timed(lambda: raw.encode(sentences, sort=True)))
                jobs.append(timed(job))
                unsorted.append(timed(lambda: raw.encode(sentences, sort=False)))
            # the job's vectors are the raw ones
            got = s.documents.get(scope, "sentences", "0")["text_default_vector_"]
            want = raw.encode(sentences[:1], sort=False)[0]
            assert np.allclose(got, want, atol=1e-5), "job and raw vectors differ"
        finally:
            platform.stop()
    r, j, u = min(raws), min(jobs), min(unsorted)
    row(
        "each round (raw / job sentences/s)",
        ", ".join(f"{n / a:,.0f}/{n / b:,.0f}" for a, b in zip(raws, jobs, strict=True)),
    )
    row("raw onnxruntime, length-sorted batches, best", f"{n / r:,.0f} sentences/s")
    row("raw onnxruntime, unsorted batches, best", f"{n / u:,.0f} sentences/s")
    row("taskloom encode_text job (read, encode, write), best", f"{n / j:,.0f} sentences/s")
    row("job / raw (sorted) throughput", f"{r / j:.2f}x")
    row("target >= 0.9x raw", "met" if r / j >= 0.9 else "NOT met")


if __name__ == "__main__":
    main()
