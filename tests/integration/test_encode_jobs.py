"""The encode job kinds on a real dataset (SQLite, and PostgreSQL when configured), run by
the platform's worker: the seed examples, refresh, retries, encoder state, query encoding,
and the CLIP kinds with a tiny random CLIP."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select

from taskloom.errors import Invalid, NotFound
from taskloom.jobs.worker import Worker
from taskloom.ml.encoders import OnnxTextEncoder
from taskloom.services import encoding
from taskloom.services.encoders import EncoderService
from taskloom.store.tables import vectors

from .conftest import error_of

PEOPLE = [
    {"_id": "p1", "person_characteristics": {"height": 180, "age": 40, "weight": 70}},
    {"_id": "p2", "person_characteristics": {"age": 32, "purchases": 10, "visits": 24}},
]
MOVIES = [
    {"_id": "m1", "category": ["sci-fi", "thriller", "comedy"]},
    {"_id": "m2", "category": ["sci-fi", "romance", "drama"]},
]
ON_POSTGRES = bool(os.environ.get("TASKLOOM_TEST_DATABASE_URL"))
SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
    "A woman is playing the violin.",
    "Two men pushed carts through the woods.",
    "A monkey is playing drums.",
    "A cheetah is running behind its prey.",
    "Stock markets fell sharply on Monday.",
    "How do I reset my password?",
    "The new phone has a better camera.",
    "It will rain tomorrow in the north.",
]


def run_job(services: Any, scope: Any, kind: str, params: dict, dataset: str) -> dict[str, Any]:
    job, _ = services.jobs.submit(scope, kind, params, dataset=dataset)
    worker = Worker(services.jobs, services=services)
    deadline = time.monotonic() + 60
    while True:  # a failed attempt comes back after its retry delay
        worker.run_one()
        got = services.jobs.get(scope, job["id"])
        if got["status"] in ("completed", "failed", "cancelled") or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


def make_dataset(services: Any, scope: Any, name: str, docs: list[dict]) -> None:
    services.datasets.create(scope, name)
    services.documents.insert(scope, name, docs)


def vectors_of(services: Any, scope: Any, dataset: str, field: str) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    cursor = None
    while True:
        page = services.documents.list(scope, dataset, cursor=cursor, page_size=500)
        for d in page["documents"]:
            if field in d:
                out[d["_id"]] = np.asarray(d[field]).tolist()
        cursor = page["cursor"]
        if not cursor:
            return out


def vector_rows(services: Any, field: str) -> int:
    with services.documents.store.read() as conn:
        return conn.execute(
            select(func.count()).select_from(vectors).where(vectors.c.field == field)
        ).scalar_one()


def only_output(job: dict[str, Any]) -> dict[str, Any]:
    assert job["status"] == "completed", job["error"]
    (out,) = job["result"]["outputs"]
    return out


# -- the seed examples ------------------------------------------------------------------------


def test_numeric_seed_example_by_column(services, scope) -> None:
    make_dataset(services, scope, "people", PEOPLE)
    job = run_job(
        services, scope, "encode_numeric", {"fields": ["person_characteristics"]}, "people"
    )
    out = only_output(job)
    assert out["output_field"] == "person_characteristics_vector_"
    assert out["dims"] == 5 and out["encoded"] == 2
    got = vectors_of(services, scope, "people", "person_characteristics_vector_")
    by_column = {d: dict(zip(out["columns"], v, strict=True)) for d, v in got.items()}
    assert by_column == {
        "p1": {"height": 180, "age": 40, "weight": 70, "purchases": 0, "visits": 0},
        "p2": {"height": 0, "age": 32, "weight": 0, "purchases": 10, "visits": 24},
    }
    rec = services.encoders.get(scope, "people", "person_characteristics_vector_")
    assert rec is not None and rec["kind"] == "encode_numeric"
    assert rec["state"]["columns"] == out["columns"]


def test_numeric_seed_example_exactly(services, scope) -> None:
    make_dataset(services, scope, "people", PEOPLE)
    out = only_output(
        run_job(services, scope, "encode_numeric", {"fields": ["person_characteristics"]}, "people")
    )
    assert out["columns"] == ["height", "age", "weight", "purchases", "visits"]
    assert vectors_of(services, scope, "people", "person_characteristics_vector_") == {
        "p1": [180, 40, 70, 0, 0],
        "p2": [0, 32, 0, 10, 24],
    }


def test_categories_seed_example(services, scope) -> None:
    make_dataset(services, scope, "movies", MOVIES)
    out = only_output(
        run_job(services, scope, "encode_categories", {"fields": ["category"]}, "movies")
    )
    assert out["output_field"] == "category_vector_"
    assert out["categories"] == ["sci-fi", "thriller", "comedy", "romance", "drama"]
    assert vectors_of(services, scope, "movies", "category_vector_") == {
        "m1": [1, 1, 1, 0, 0],
        "m2": [1, 0, 0, 1, 1],
    }
    rec = services.encoders.get(scope, "movies", "category_vector_")
    assert rec is not None and rec["state"] == {"categories": out["categories"]}


# -- numeric and categories: fitted on every document -------------------------------------------


def test_tabular_fit_covers_the_whole_dataset_and_refits_when_it_changes(services, scope) -> None:
    make_dataset(services, scope, "people", PEOPLE)
    params = {"fields": ["person_characteristics"], "vector_name": "_num_vector_"}
    first = only_output(run_job(services, scope, "encode_numeric", params, "people"))
    assert first["output_field"] == "person_characteristics_num_vector_"
    # nothing new: nothing to do
    again = only_output(run_job(services, scope, "encode_numeric", params, "people"))
    assert (again["mode"], again["encoded"]) == ("missing", 0)
    # a document with a new key: every vector gets the new column, old ones included
    services.documents.insert(
        scope, "people", [{"_id": "p3", "person_characteristics": {"kids": 2}}]
    )
    grown = only_output(run_job(services, scope, "encode_numeric", params, "people"))
    assert (grown["mode"], grown["encoded"], grown["dims"]) == ("all", 3, 6)
    assert grown["columns"][-1] == "kids"
    got = vectors_of(services, scope, "people", "person_characteristics_num_vector_")
    assert {len(v) for v in got.values()} == {6}
    assert got["p3"][-1] == 2 and got["p1"][-1] == 0
    schema = services.datasets.schema(scope, "people")
    assert schema["person_characteristics_num_vector_"] == {"type": "vector", "dim": 6}
    rec = services.encoders.get(scope, "people", "person_characteristics_num_vector_")
    assert rec is not None and rec["state"]["columns"] == grown["columns"]


def test_numeric_standard_scaling_over_all_documents(services, scope) -> None:
    rng = np.random.default_rng(3)
    docs = [
        {"_id": f"d{i}", "m": {"a": float(rng.normal(5, 2)), "b": float(rng.normal(-1, 9))}}
        for i in range(50)
    ]
    make_dataset(services, scope, "scaled", docs)
    # the first half is encoded first: the second run must still fit on all 50
    params = {"fields": ["m"], "scaling": "standard"}
    services.documents.delete(scope, "scaled", [d["_id"] for d in docs[25:]])
    run_job(services, scope, "encode_numeric", params, "scaled")
    services.documents.insert(scope, "scaled", docs[25:])
    out = only_output(run_job(services, scope, "encode_numeric", params, "scaled"))
    assert out["mode"] == "all" and out["encoded"] == 50
    x = np.array(list(vectors_of(services, scope, "scaled", "m_vector_").values()))
    np.testing.assert_allclose(x.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(x.std(axis=0), 1, atol=1e-5)
    # the recorded statistics read back equal (JSON floats round-trip): nothing to redo
    same = only_output(run_job(services, scope, "encode_numeric", params, "scaled"))
    assert (same["mode"], same["encoded"]) == ("missing", 0)


def test_tabular_skips_values_it_cannot_encode(services, scope) -> None:
    make_dataset(
        services,
        scope,
        "mixed",
        [
            *MOVIES,
            {"_id": "m3", "category": "horror"},  # one label
            {"_id": "m4", "category": {"not": "a list"}},
            {"_id": "m5", "title": "no category"},
        ],
    )
    out = only_output(
        run_job(services, scope, "encode_categories", {"fields": ["category"]}, "mixed")
    )
    assert (out["encoded"], out["skipped"], out["dims"]) == (3, 1, 6)
    assert set(vectors_of(services, scope, "mixed", "category_vector_")) == {"m1", "m2", "m3"}
    failed = run_job(services, scope, "encode_numeric", {"fields": ["category"]}, "mixed")
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "NOTHING_TO_ENCODE"


# -- text: refresh, retries, queries ----------------------------------------------------------


@pytest.fixture(scope="module")
def minilm() -> OnnxTextEncoder:
    return OnnxTextEncoder()


def test_text_refresh_false_fills_missing_and_true_redoes_all(services, scope, minilm) -> None:
    docs = [{"_id": f"s{i}", "text": t} for i, t in enumerate(SENTENCES[:6])]
    make_dataset(services, scope, "texts", docs)
    out = only_output(run_job(services, scope, "encode_text", {"field": "text"}, "texts"))
    assert (out["output_field"], out["dims"], out["encoded"]) == ("text_default_vector_", 384, 6)
    before = vectors_of(services, scope, "texts", "text_default_vector_")
    np.testing.assert_allclose(before["s0"], minilm.encode([SENTENCES[0]])[0], atol=1e-6)
    # two new documents, one changed text, one document without the field
    services.documents.insert(
        scope,
        "texts",
        [{"_id": f"s{i}", "text": SENTENCES[i]} for i in (6, 7)] + [{"_id": "x", "n": 1}],
    )
    services.documents.update(scope, "texts", [{"_id": "s0", "text": SENTENCES[9]}])
    fill = only_output(run_job(services, scope, "encode_text", {"field": "text"}, "texts"))
    assert (fill["mode"], fill["encoded"]) == ("missing", 2)
    after = vectors_of(services, scope, "texts", "text_default_vector_")
    assert set(after) == {f"s{i}" for i in range(8)}
    assert after["s0"] == before["s0"]  # refresh=false left it alone
    redo = only_output(
        run_job(services, scope, "encode_text", {"field": "text", "refresh": True}, "texts")
    )
    assert (redo["mode"], redo["encoded"]) == ("all", 8)
    redone = vectors_of(services, scope, "texts", "text_default_vector_")
    np.testing.assert_allclose(redone["s0"], minilm.encode([SENTENCES[9]])[0], atol=1e-6)
    assert vector_rows(services, "text_default_vector_") == 8


def test_text_job_retried_after_a_crash_gives_the_same_vectors_once(
    services, scope, minilm, monkeypatch
) -> None:
    docs = [{"_id": f"s{i:02d}", "text": f"{SENTENCES[i % 12]} (copy {i})"} for i in range(40)]
    make_dataset(services, scope, "retry", docs)
    monkeypatch.setattr(encoding, "TEXT_PAGE", 10)
    real_update = services.documents.update
    calls = {"n": 0}

    def crash_on_third(*args: Any, **kw: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("worker crashed while writing")
        return real_update(*args, **kw)

    monkeypatch.setattr(services.documents, "update", crash_on_third)
    job = run_job(services, scope, "encode_text", {"field": "text", "alias": "v1"}, "retry")
    assert job["status"] == "completed" and job["attempts"] == 2
    got = vectors_of(services, scope, "retry", "text_v1_vector_")
    want = minilm.encode([d["text"] for d in docs])
    assert sorted(got) == [d["_id"] for d in docs]
    np.testing.assert_allclose(np.array([got[d["_id"]] for d in docs]), want, atol=1e-6)
    assert vector_rows(services, "text_v1_vector_") == 40
    # the same job run again (refresh=true) overwrites, never duplicates
    monkeypatch.setattr(services.documents, "update", real_update)
    again = run_job(
        services, scope, "encode_text", {"field": "text", "alias": "v1", "refresh": True}, "retry"
    )
    assert only_output(again)["encoded"] == 40
    assert vectors_of(services, scope, "retry", "text_v1_vector_") == got
    assert vector_rows(services, "text_v1_vector_") == 40


def test_text_job_reports_progress_and_can_be_cancelled(services, scope, monkeypatch) -> None:
    make_dataset(services, scope, "cancel", [{"_id": str(i), "text": "x"} for i in range(30)])
    monkeypatch.setattr(encoding, "TEXT_PAGE", 10)
    job, _ = services.jobs.submit(scope, "encode_text", {"field": "text"}, dataset="cancel")
    real_list = services.documents.list
    pages = {"n": 0}

    def cancel_after_first_page(*args: Any, **kw: Any) -> Any:
        pages["n"] += 1
        if pages["n"] == 2:
            services.jobs.cancel(scope, job["id"])
            time.sleep(0.3)  # past the context's 0.25 s between looks at the database
        return real_list(*args, **kw)

    monkeypatch.setattr(services.documents, "list", cancel_after_first_page)
    Worker(services.jobs, services=services).run_one()
    done = services.jobs.get(scope, job["id"])
    assert done["status"] == "cancelled"
    assert 0 < vector_rows(services, "text_default_vector_") < 30
    events = services.jobs.events(scope, job["id"])
    assert any(e["type"] == "progress" for e in events)


def test_encode_query_uses_the_encoder_that_made_the_field(services, scope, minilm) -> None:
    docs = [{"_id": f"s{i}", "text": t} for i, t in enumerate(SENTENCES)]
    make_dataset(services, scope, "search", [*docs, {"_id": "n", "nums": {"a": 1}}])
    run_job(services, scope, "encode_text", {"field": "text"}, "search")
    q = services.encoders.encode_query(
        scope, "search", "text_default_vector_", "someone eats a meal"
    )
    assert q.dtype == np.float32 and q.shape == (384,)
    np.testing.assert_allclose(q, minilm.encode(["someone eats a meal"])[0], atol=1e-6)
    got = vectors_of(services, scope, "search", "text_default_vector_")
    ranked = sorted(got, key=lambda d: -float(np.dot(got[d], q)))
    assert set(ranked[:2]) == {"s0", "s1"}  # the two sentences about eating
    svc = services.encoders
    assert isinstance(svc, EncoderService)
    with pytest.raises(NotFound) as missing:
        svc.encode_query(scope, "search", "nope_vector_", "x")
    assert missing.value.code == "encoder_not_found"
    run_job(services, scope, "encode_numeric", {"fields": ["nums"]}, "search")
    with pytest.raises(Invalid) as numeric:
        svc.encode_query(scope, "search", "nums_vector_", "x")
    assert numeric.value.code == "text_query_unsupported"


def test_params_are_validated(services, scope) -> None:
    make_dataset(services, scope, "v", MOVIES)
    bad = [
        ("encode_text", {"field": "emb_vector_"}),
        ("encode_text", {"field": "a..b"}),
        ("encode_text", {"field": "t", "alias": "has space"}),
        ("encode_numeric", {"fields": []}),
        ("encode_numeric", {"fields": ["a"], "vector_name": "_vec"}),
        ("encode_numeric", {"fields": ["a"], "scaling": "log"}),
        ("encode_categories", {"fields": ["a"], "extra": 1}),
    ]
    for kind, params in bad:
        with pytest.raises(Invalid) as err:
            services.jobs.submit(scope, kind, params, dataset="v")
        assert err.value.code == "invalid_params", (kind, params)
    with pytest.raises(Invalid) as no_ds:
        services.jobs.submit(scope, "encode_text", {"field": "t"})
    assert no_ds.value.code == "dataset_required"


def test_nested_fields_name_a_top_level_output(services, scope) -> None:
    make_dataset(services, scope, "nested", [{"_id": "a", "meta": {"tags": ["x", "y"]}}])
    out = only_output(
        run_job(services, scope, "encode_categories", {"fields": ["meta.tags"]}, "nested")
    )
    assert out["output_field"] == "meta_tags_vector_"
    assert vectors_of(services, scope, "nested", "meta_tags_vector_") == {"a": [1, 1]}


# -- CLIP -------------------------------------------------------------------------------------


def test_clip_without_a_model_folder_fails_clearly(services, scope) -> None:
    make_dataset(services, scope, "c", [{"_id": "a", "text": "a cat"}])
    services.encoders.settings.clip_model_dir = None
    for kind in ("encode_text_clip", "encode_image_clip"):
        job = run_job(services, scope, kind, {"field": "text"}, "c")
        assert job["status"] == "failed" and job["attempts"] == 1
        assert job["error"]["code"] == "CLIP_MODEL_NOT_CONFIGURED"
        assert "TASKLOOM_CLIP_MODEL_DIR" in job["error"]["message"]


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from taskloom.ml.encoders.testing import make_tiny_clip

    return make_tiny_clip(tmp_path_factory.mktemp("tiny-clip"))


@pytest.fixture
def media(services, clip_dir: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "media"
    folder.mkdir()
    settings = services.encoders.settings
    settings.clip_model_dir = clip_dir
    settings.media_dir = folder
    return folder


def _png(seed: int) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def test_clip_text_and_image_jobs(services, scope, media: Path, clip_dir: Path) -> None:
    from taskloom.ml.encoders.clip import ClipModel
    from taskloom.ml.encoders.testing import PROJECTION_DIM

    (media / "cats").mkdir()
    for i in range(3):
        (media / "cats" / f"{i}.png").write_bytes(_png(i))
    docs = [
        {"_id": f"i{i}", "caption": f"picture number {i}", "image": f"cats/{i}.png"}
        for i in range(3)
    ]
    make_dataset(services, scope, "pics", docs)
    text = only_output(run_job(services, scope, "encode_text_clip", {"field": "caption"}, "pics"))
    image = only_output(
        run_job(services, scope, "encode_image_clip", {"field": "image", "alias": "clip"}, "pics")
    )
    assert (text["output_field"], text["dims"], text["encoded"]) == (
        "caption_default_vector_",
        PROJECTION_DIM,
        3,
    )
    assert (image["output_field"], image["dims"], image["encoded"]) == (
        "image_clip_vector_",
        PROJECTION_DIM,
        3,
    )
    # deterministic, and what the model gives for the same inputs
    model = ClipModel(clip_dir)
    tv = vectors_of(services, scope, "pics", "caption_default_vector_")
    iv = vectors_of(services, scope, "pics", "image_clip_vector_")
    np.testing.assert_allclose(
        [tv[f"i{i}"] for i in range(3)], model.encode_text([d["caption"] for d in docs]), atol=1e-5
    )
    np.testing.assert_allclose(
        [iv[f"i{i}"] for i in range(3)], model.encode_images([_png(i) for i in range(3)]), atol=1e-5
    )
    redo = {"field": "image", "alias": "clip", "refresh": True}
    only_output(run_job(services, scope, "encode_image_clip", redo, "pics"))
    assert vectors_of(services, scope, "pics", "image_clip_vector_") == iv
    # a text query against the image field is a CLIP text vector
    q = services.encoders.encode_query(scope, "pics", "image_clip_vector_", "picture number 1")
    np.testing.assert_allclose(q, model.encode_text(["picture number 1"])[0], atol=1e-5)


def test_clip_images_only_from_the_media_folder_or_public_urls(
    services, scope, media: Path, tmp_path: Path
) -> None:
    (media / "ok.png").write_bytes(_png(0))
    (tmp_path / "secret.png").write_bytes(_png(1))
    docs = [
        {"_id": "ok", "image": "ok.png"},
        {"_id": "escape", "image": "../secret.png"},
        {"_id": "absolute", "image": str(tmp_path / "secret.png")},
        {"_id": "loopback", "image": "http://127.0.0.1:8000/a.png"},
        {"_id": "private", "image": "http://10.0.0.7/a.png"},
        {"_id": "metadata", "image": "http://169.254.169.254/latest/meta-data/"},
        {"_id": "blob", "image": "blob://bucket/a.png"},
        {"_id": "broken", "image": "broken.png"},
    ]
    (media / "broken.png").write_bytes(b"not an image")
    make_dataset(services, scope, "fenced", docs)
    job = run_job(services, scope, "encode_image_clip", {"field": "image"}, "fenced")
    out = only_output(job)
    assert (out["encoded"], out["failed"]) == (1, 7)
    codes = {f["_id"]: f["code"] for f in out["failures"]}
    assert codes == {
        "escape": "path_outside_media_dir",
        "absolute": "path_outside_media_dir",
        "loopback": "url_not_public",
        "private": "url_not_public",
        "metadata": "url_not_public",
        "blob": "blob_not_found",
        "broken": "not_an_image",
    }
    assert set(vectors_of(services, scope, "fenced", "image_default_vector_")) == {"ok"}
    # when nothing at all can be read, the job fails and says why
    make_dataset(services, scope, "all-bad", [{"_id": "e", "image": "../secret.png"}])
    failed = run_job(services, scope, "encode_image_clip", {"field": "image"}, "all-bad")
    assert failed["status"] == "failed" and failed["error"]["code"] == "NOTHING_ENCODED"
    assert "outside the media folder" in failed["error"]["message"]


# -- params checked against the dataset at submit ---------------------------------------------


def test_encode_params_are_checked_against_the_dataset_fields_at_submit(
    services, scope, http
) -> None:
    make_dataset(services, scope, "checked", [*PEOPLE, {"_id": "t", "title": "a text"}])

    def n_jobs() -> int:
        return len(services.jobs.list(scope, dataset="checked", limit=500)["data"])

    jobs_before = n_jobs()
    cases = [
        ("encode_text", {"field": "no_such"}, "unknown_field", "params.field"),
        ("encode_text", {"field": "person_characteristics"}, "wrong_field_type", "params.field"),
        ("encode_text_clip", {"field": "nope"}, "unknown_field", "params.field"),
        ("encode_numeric", {"fields": ["title"]}, "wrong_field_type", "params.fields.0"),
        (
            "encode_numeric",
            {"fields": ["person_characteristics", "missing"]},
            "unknown_field",
            "params.fields.1",
        ),
        (
            "encode_categories",
            {"fields": ["person_characteristics"]},
            "wrong_field_type",
            "params.fields.0",
        ),
    ]
    for kind, params, code, field in cases:
        r = http.post("/v1/jobs", json={"kind": kind, "dataset": "checked", "params": params})
        err = error_of(r, 422, code)
        assert err["details"]["field"] == field, (kind, err)
        if code == "unknown_field":  # says which fields there are
            assert "title" in err["details"]["fields"]
            assert "person_characteristics.age" in err["details"]["fields"]
            assert "title" in err["message"]
    # nothing was queued
    assert n_jobs() == jobs_before == 0


def test_encode_job_whose_field_no_document_holds_fails_with_a_code(
    services, scope, minilm
) -> None:
    # the field is in the dataset's field list, but its only document is gone
    make_dataset(services, scope, "gone", [{"_id": "a", "text": "hello"}, {"_id": "b", "n": 1}])
    services.documents.delete(scope, "gone", ["a"])
    job = run_job(services, scope, "encode_text", {"field": "text"}, "gone")
    assert job["status"] == "failed", job
    assert job["error"]["code"] == "NOTHING_TO_ENCODE"
    assert "text" in job["error"]["message"]
