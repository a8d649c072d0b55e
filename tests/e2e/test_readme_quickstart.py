"""The README's five-minute quickstart, run as a new user runs it: a real ``taskloom serve``
on a fresh data folder, and the README's own code block run from that folder, finding the
server's key in ``./taskloom-data/credentials.json`` by itself (no key copied by hand)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import PG_URL, ServerProcess, reset_postgres

pytestmark = pytest.mark.e2e

README = Path(__file__).resolve().parents[2] / "README.md"


def quickstart_code() -> str:
    text = README.read_text()
    found = re.search(r"<!-- quickstart -->\s*```python\n(.*?)```", text, re.S)
    assert found, "README.md has no <!-- quickstart --> python block"
    return found.group(1)


def test_the_readme_quickstart_runs_on_a_fresh_server(tmp_path: Path) -> None:
    if PG_URL:
        reset_postgres(PG_URL)
    serve = ServerProcess(tmp_path / "taskloom-data")
    try:
        assert json.loads((tmp_path / "taskloom-data" / "credentials.json").read_text())
        script = tmp_path / "quickstart.py"
        script.write_text(quickstart_code())
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("TASKLOOM_") or k == "TASKLOOM_GRPC_PORT"
        }
        env["TASKLOOM_URL"] = serve.url  # the README's server is on 8000; this one on a free port
        proc = subprocess.run(
            [sys.executable, str(script)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        serve.stop()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "30 documents"
    clusters = [line for line in lines if line.startswith("cluster-")]
    # three clusters, each holding one topic, together the three topics
    topics = [re.findall(r"'(\w+)'", line) for line in clusters]
    assert len(clusters) == 3 and all(len(t) == 1 for t in topics), proc.stdout
    assert sorted(t[0] for t in topics) == ["cooking", "football", "space"]
    hits = [line.split(" ", 2) for line in lines[4:]]
    assert len(hits) == 3, proc.stdout
    # the filter holds (year >= 2022) and the best hit is the moon mission
    assert all(int(year) >= 2022 for _, year, _ in hits), proc.stdout
    assert "moon" in hits[0][2], proc.stdout
    scores = [float(score) for score, _, _ in hits]
    assert scores == sorted(scores, reverse=True)
