#!/bin/sh
# Builds the ladder-jobs wheel (the SDK and the built-in kinds) into dist/, for job images:
#   scripts/build-jobs-wheel.sh [OUT_DIR] [PYTHON]   (default OUT_DIR: .ladder/dist, git-ignored)
# then in a job image's Dockerfile (see examples/byo/README.md):
#   COPY ladder_jobs-*.whl /tmp/ && RUN pip install /tmp/ladder_jobs-*.whl
# Offline on purpose (--no-build-isolation): it needs only setuptools and wheel, which a
# Python with pip already has, and never reaches an index.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-"$here/.ladder/dist"}
python=${2:-${LADDER_PYTHON:-python3}}
mkdir -p "$out"
# pip builds in a temp copy; stale build/ and egg-info folders would leak old files into the wheel.
rm -rf "$here/jobs/build" "$here/jobs"/*.egg-info
"$python" -m pip wheel --no-deps --no-build-isolation --no-index --wheel-dir "$out" "$here/jobs"
rm -rf "$here/jobs/build" "$here/jobs"/*.egg-info
ls "$out"/ladder_jobs-*.whl
