# Sourced by scripts/run and scripts/test: create .venv and install livehub (and the
# load tester, tools/loadtest) into it when missing or when either pyproject.toml
# changed since the last install. Idempotent.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="${PYTHON:-python3}"
STAMP="$VENV/.livehub-installed"
if [ ! -x "$VENV/bin/python" ]; then
    echo "==> creating virtualenv in $VENV"
    "$PY" -m venv "$VENV"
fi
if [ ! -f "$STAMP" ] || [ "$ROOT/pyproject.toml" -nt "$STAMP" ] \
    || [ "$ROOT/tools/loadtest/pyproject.toml" -nt "$STAMP" ]; then
    echo "==> installing livehub and its dependencies into .venv"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -e "$ROOT[test]" -e "$ROOT/tools/loadtest"
    touch "$STAMP"
else
    echo "==> .venv is up to date"
fi
