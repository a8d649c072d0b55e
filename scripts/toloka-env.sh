#!/usr/bin/env bash
# Create .venv-toloka: a separate virtual environment holding the official Toloka client
# (toloka-kit 1.2.3) for the end-to-end tests of taskloom's Toloka front door.
# toloka-kit 1.2.3 needs httpx<0.28 and cattrs<26, which taskloom's own environment does not
# pin down, so it lives apart. Prints the environment's python path on stdout.
# Idempotent: a stamp file records a finished install; a second run only prints the path.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${TOLOKA_ENV_PYTHON:-python3.11}
VENV=${TOLOKA_ENV_DIR:-.venv-toloka}
PINS=("toloka-kit==1.2.3" "httpx<0.28" "cattrs<26")
STAMP="$VENV/.installed-toloka-kit-1.2.3"

if [ ! -f "$STAMP" ] || [ ! -x "$VENV/bin/python" ]; then
  if ! command -v "$PYTHON" >/dev/null 2>&1; then
    PYTHON=python3
  fi
  echo "creating $VENV with $PYTHON (toloka-kit 1.2.3)..." >&2
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV" >&2
  "$VENV/bin/python" -m pip install -q --upgrade pip >&2
  "$VENV/bin/python" -m pip install -q "${PINS[@]}" >&2
  "$VENV/bin/python" -c "import toloka.client, toloka.__version__ as v; assert v.__version__ == '1.2.3', v.__version__" >&2
  touch "$STAMP"
fi
echo "$(pwd)/$VENV/bin/python"
