# Sourced by run.sh and test.sh: make sure Redis and PostgreSQL are installed and
# running on this machine (Debian/Ubuntu), and export where to reach them:
#   RUSHGATE_PG_BASE   postgres://user[:password]@host:port  (no database)
#   RUSHGATE_REDIS_URL redis://127.0.0.1:6379
# Already-running services and preset variables are left alone. Also the tools
# the scripts need besides Rust: Node.js (`node_version_ok`, `ensure_node`) and
# Python tools in a virtual environment of the project's (`python_tool`).

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "need root (or sudo) to run: $*" >&2; return 1; fi
}

apt_updated=""
apt_install() {
  if [ -z "$apt_updated" ]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    apt_updated=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_redis() {
  : "${RUSHGATE_REDIS_URL:=redis://127.0.0.1:6379}"
  export RUSHGATE_REDIS_URL
  command -v redis-server >/dev/null || { echo "installing redis-server"; apt_install redis-server; }
  if ! redis-cli -u "$RUSHGATE_REDIS_URL" ping >/dev/null 2>&1; then
    echo "starting redis-server on 127.0.0.1:6379"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
      --logfile "${TMPDIR:-/tmp}/rushgate-redis.log"
    for _ in $(seq 50); do redis-cli -u "$RUSHGATE_REDIS_URL" ping >/dev/null 2>&1 && break; sleep 0.1; done
  fi
  redis-cli -u "$RUSHGATE_REDIS_URL" ping >/dev/null || { echo "Redis is not reachable at $RUSHGATE_REDIS_URL" >&2; return 1; }
}

pg_ok() { psql "$1/postgres" -Atqc 'select 1' >/dev/null 2>&1; }

ensure_postgres() {
  if [ -n "${RUSHGATE_PG_BASE:-}" ] && pg_ok "$RUSHGATE_PG_BASE"; then return 0; fi
  command -v pg_ctlcluster >/dev/null || { echo "installing postgresql"; apt_install postgresql postgresql-client; }
  local plain="postgres://postgres@127.0.0.1:5432" with_pw="postgres://postgres:postgres@127.0.0.1:5432"
  if ! pg_ok "$plain" && ! pg_ok "$with_pw"; then
    local version
    version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n1)
    if [ -n "$version" ] && ! pg_lsclusters -h 2>/dev/null | grep -q online; then
      echo "starting PostgreSQL $version"
      as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || as_root pg_ctlcluster "$version" main start
      for _ in $(seq 50); do pg_isready -h 127.0.0.1 -q && break; sleep 0.2; done
    fi
  fi
  if pg_ok "$plain"; then RUSHGATE_PG_BASE=$plain
  elif pg_ok "$with_pw"; then RUSHGATE_PG_BASE=$with_pw
  else
    # A fresh Debian install only lets the postgres OS user in; give the role a
    # local password so TCP connections work.
    as_root su postgres -c "psql -qc \"ALTER ROLE postgres PASSWORD 'postgres'\"" >/dev/null
    if pg_ok "$with_pw"; then RUSHGATE_PG_BASE=$with_pw; else
      echo "cannot connect to PostgreSQL on 127.0.0.1:5432; set RUSHGATE_PG_BASE=postgres://user:pass@host:port" >&2
      return 1
    fi
  fi
  export RUSHGATE_PG_BASE
}

ensure_services() {
  command -v curl >/dev/null || apt_install curl ca-certificates
  command -v psql >/dev/null || apt_install postgresql-client
  command -v redis-cli >/dev/null || apt_install redis-tools
  ensure_redis
  ensure_postgres
}

# A C compiler and linker: Rust links with `cc`, and ring's build compiles C
# (a stock Debian has neither until build-essential).
ensure_cc() {
  command -v cc >/dev/null || { echo "installing build-essential (the linker Rust needs)"; apt_install build-essential; }
}

# Node.js at least this version runs wrangler (the edge's dev server and
# deploy); the built worker runs under workerd with any Node.js.
NODE_MIN=20.3

# version_ge A B: whether version A is at least B.
version_ge() { [ -n "$1" ] && [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }

node_version_ok() {
  command -v node >/dev/null || return 1
  version_ge "$(node --version 2>/dev/null | tr -d v)" "$NODE_MIN"
}

# For what needs wrangler: Node.js >= NODE_MIN, installed from the system's
# packages when they have one that new; else a message and exit, at once.
require_node() {
  if ! command -v node >/dev/null; then
    local candidate
    candidate=$(apt-cache policy nodejs 2>/dev/null | sed -n 's/^ *Candidate: *\([0-9.]*\).*/\1/p')
    if version_ge "$candidate" "$NODE_MIN"; then ensure_node; fi
  fi
  node_version_ok || { echo; node_advice; exit 1; }
}

# Node.js and npm: Debian's if there are none (enough for workerd, the build and
# the browser tests' driver, not for wrangler).
ensure_node() {
  command -v node >/dev/null && command -v npm >/dev/null && return 0
  echo "installing nodejs and npm (Debian's)"
  apt_install nodejs npm
}

# The message for a machine whose Node.js is older than wrangler needs.
node_advice() {
  echo "Node.js >= $NODE_MIN is needed (found $(node --version 2>/dev/null || echo none)): install it from"
  echo "NodeSource (https://github.com/nodesource/distributions: curl -fsSL https://deb.nodesource.com/setup_20.x | bash - && apt-get install -y nodejs)"
  echo "or with nvm (nvm install 20), then run this again."
}

# The schemathesis the API fuzzing runs (scripts/fuzz-api.sh).
SCHEMATHESIS_VERSION=4.32.5

# python_tool NAME VERSION: a Python command-line tool of this exact version in
# .venv/ (PEP 668 keeps pip off the system's Python); prints its path.
python_tool() {
  local name=$1 version=$2 venv=.venv
  command -v python3 >/dev/null || { echo "installing python3" >&2; apt_install python3 python3-venv >&2; }
  if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv" >/dev/null 2>&1 || {
      rm -rf "$venv"
      echo "installing python3-venv" >&2
      apt_install python3-venv >&2
      python3 -m venv "$venv" >&2
    }
  fi
  if ! "$venv/bin/$name" --version 2>/dev/null | grep -q "$version"; then
    "$venv/bin/python" -m pip install -q "$name==$version" >&2
  fi
  echo "$venv/bin/$name"
}
