#!/usr/bin/env bash
# Makes sure the services Firewatch needs are running on this machine: Redis, PostgreSQL and InfluxDB.
# Installs with apt-get whatever is missing (Debian). Idempotent: a running service is left alone.
# InfluxDB runs on the project's own port and data folder (FIREWATCH_INFLUX_PORT, FIREWATCH_DATA).
set -euo pipefail

INFLUX_PORT="${FIREWATCH_INFLUX_PORT:-18086}"
DATA="${FIREWATCH_DATA:-${XDG_DATA_HOME:-$HOME/.local/share}/firewatch}"
say() { printf 'services: %s\n' "$*" >&2; }

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
apt_updated=""
apt_install() {
  if [ -z "$apt_updated" ]; then
    say "apt-get update"
    $SUDO apt-get update -qq
    apt_updated=1
  fi
  say "installing $*"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

wait_for() { # name, tries, command...
  local name=$1 tries=$2
  shift 2
  for _ in $(seq "$tries"); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  say "$name did not come up"
  return 1
}

command -v curl >/dev/null || apt_install curl ca-certificates

# Tools the tests use as independent peers: a second MQTT implementation and openssl for TLS certificates.
command -v mosquitto_pub >/dev/null || apt_install mosquitto-clients
command -v openssl >/dev/null || apt_install openssl

# --- Redis -------------------------------------------------------------------------------------------------
if ! command -v redis-server >/dev/null; then apt_install redis-server redis-tools; fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  say "starting Redis on 127.0.0.1:6379"
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/firewatch.log
  wait_for Redis 40 redis-cli -h 127.0.0.1 -p 6379 ping
fi

# --- PostgreSQL --------------------------------------------------------------------------------------------
if ! command -v pg_ctlcluster >/dev/null; then
  apt_install postgresql
  # A fresh cluster: give the postgres role the password the default DATABASE_URL uses.
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start || true
  wait_for PostgreSQL 60 pg_isready -h 127.0.0.1 -p 5432
  $SUDO -u postgres psql -qc "ALTER USER postgres PASSWORD 'postgres'" 2>/dev/null \
    || su postgres -c "psql -qc \"ALTER USER postgres PASSWORD 'postgres'\""
fi
if ! pg_isready -h 127.0.0.1 -p 5432 >/dev/null 2>&1; then
  say "starting PostgreSQL"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start
  wait_for PostgreSQL 60 pg_isready -h 127.0.0.1 -p 5432
fi

# --- InfluxDB ----------------------------------------------------------------------------------------------
if ! command -v influxd >/dev/null; then apt_install influxdb; fi
if ! curl -sf "http://127.0.0.1:${INFLUX_PORT}/ping" >/dev/null 2>&1; then
  say "starting InfluxDB on 127.0.0.1:${INFLUX_PORT}, data in ${DATA}/influxdb"
  mkdir -p "$DATA/influxdb"
  cat >"$DATA/influxdb/influxdb.conf" <<CONF
reporting-disabled = true
bind-address = "127.0.0.1:$((INFLUX_PORT + 2))"
[meta]
  dir = "$DATA/influxdb/meta"
[data]
  dir = "$DATA/influxdb/data"
  wal-dir = "$DATA/influxdb/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:${INFLUX_PORT}"
  log-enabled = false
[logging]
  level = "warn"
[monitor]
  store-enabled = false
CONF
  nohup influxd -config "$DATA/influxdb/influxdb.conf" >>"$DATA/influxdb/influxd.log" 2>&1 &
  wait_for InfluxDB 60 curl -sf "http://127.0.0.1:${INFLUX_PORT}/ping"
fi
say "Redis, PostgreSQL and InfluxDB (port ${INFLUX_PORT}) are running"
