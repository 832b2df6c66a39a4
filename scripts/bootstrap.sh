# Sourced by scripts/run and scripts/test: a virtual environment in .venv with the locked
# dependencies, reinstalled only when a lock file or pyproject.toml changed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
LOCK="$ROOT/${TELELLAMA_LOCK:-requirements.lock}"
PYTHON="${PYTHON:-python3}"

"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
  echo "telellama needs Python 3.11 or newer ($PYTHON is $("$PYTHON" --version 2>&1))" >&2
  exit 1
}
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
stamp="$VENV/.telellama-$(cat "$LOCK" "$ROOT/pyproject.toml" | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "telellama: installing dependencies from $(basename "$LOCK") into .venv ..." >&2
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$LOCK" 2>&1 | grep -v "^WARNING: Location" >&2 || true
  "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps -e "$ROOT" 2>&1 | grep -v "^WARNING: Location" >&2 || true
  "$VENV/bin/python" -c 'import telegram, openai, redis, telegramify_markdown, bot' || {
    echo "telellama: dependency installation failed (see the pip output above)" >&2
    exit 1
  }
  rm -f "$VENV"/.telellama-*
  touch "$stamp"
fi

# Debian's redis-server, installed only when nothing else can provide a Redis.
ensure_redis_server() {
  command -v redis-server >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "telellama: installing redis-server (Debian package) ..." >&2
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >&2
  else
    echo "telellama: redis-server is not installed; install it (sudo apt-get install redis-server) or set REDIS_URL" >&2
    return 1
  fi
}
