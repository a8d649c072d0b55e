#!/usr/bin/env bash
# Create .venv-clarifai: a separate virtual environment holding the official Clarifai SDK
# (clarifai 12.5.0) for the end-to-end tests of taskloom's Clarifai door (gRPC).
# The SDK pins numpy, protobuf and many other packages of its own, so it lives apart.
# Prints the environment's python path on stdout.
# Idempotent: a stamp file records a finished install; a second run only prints the path.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${CLARIFAI_ENV_PYTHON:-python3.11}
VENV=${CLARIFAI_ENV_DIR:-.venv-clarifai}
VERSION=${CLARIFAI_SDK_VERSION:-12.5.0}
STAMP="$VENV/.installed-clarifai-$VERSION"

if [ ! -f "$STAMP" ] || [ ! -x "$VENV/bin/python" ]; then
  if ! command -v "$PYTHON" >/dev/null 2>&1; then
    PYTHON=python3
  fi
  echo "creating $VENV with $PYTHON (clarifai $VERSION)..." >&2
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV" >&2
  "$VENV/bin/python" -m pip install -q --upgrade pip >&2
  "$VENV/bin/python" -m pip install -q "clarifai==$VERSION" >&2
  "$VENV/bin/python" -c "import clarifai, clarifai.client.user; assert clarifai.__version__ == '$VERSION', clarifai.__version__" >&2
  touch "$STAMP"
fi
echo "$(pwd)/$VENV/bin/python"
