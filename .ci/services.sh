#!/usr/bin/env bash
# Starts the local services the tests use when they are not running, installing them from Debian if missing.
set -uo pipefail

up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
apt_updated=0
need_pkg() {
  if ! dpkg -s "$1" >/dev/null 2>&1; then
    if [ "$apt_updated" = 0 ]; then apt-get update -qq >/dev/null 2>&1 || true; apt_updated=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1 || echo "ci: could not install $*"
  fi
}
wait_port() {
  for _ in $(seq 1 50); do up "$1" && return 0; sleep 0.2; done
  echo "ci: $2 did not come up on port $1"
}

if ! up 5432; then
  need_pkg postgresql
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  wait_port 5432 PostgreSQL
fi
if ! up 4222; then
  need_pkg nats-server
  mkdir -p /var/lib/nats-server
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log || true
  wait_port 4222 NATS
fi
if ! up 1883; then
  need_pkg mosquitto
  mosquitto -d -c /etc/mosquitto/mosquitto.conf || true
  wait_port 1883 Mosquitto
fi
# Clients and the browser the tests drive.
command -v mosquitto_pub >/dev/null || need_pkg mosquitto-clients
command -v chromium >/dev/null || need_pkg chromium
# The web test runs the docs page's Python example, which needs websocket-client in the system Python.
/usr/bin/python3 -c 'import websocket' 2>/dev/null || need_pkg python3-websocket
# The original clients' tests speak MQTT from Python too.
/usr/bin/python3 -c 'import paho.mqtt' 2>/dev/null || need_pkg python3-paho-mqtt
# The client libraries' tests: the Arduino examples compile with g++; the simulator's prompt runs under script(1).
command -v g++ >/dev/null || need_pkg g++
command -v script >/dev/null || need_pkg bsdutils
exit 0
