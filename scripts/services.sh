# Sourced by run.sh and test.sh: make sure Redis and PostgreSQL are installed and
# running on this machine (Debian/Ubuntu), and export where to reach them:
#   RUSHGATE_PG_BASE   postgres://user[:password]@host:port  (no database)
#   RUSHGATE_REDIS_URL redis://127.0.0.1:6379
# Already-running services and preset variables are left alone.

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
  command -v psql >/dev/null || apt_install postgresql-client
  command -v redis-cli >/dev/null || apt_install redis-tools
  ensure_redis
  ensure_postgres
}
