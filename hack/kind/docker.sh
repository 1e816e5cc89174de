#!/usr/bin/env bash
# A Docker engine for kind on this kind of machine: Debian's docker.io, with a
# runc wrapper as default runtime (the VM cannot grant CAP_SYS_RESOURCE, which
# `docker run --privileged` asks for; see runc-wrapper), started in the
# background if none is running.
# Usage: hack/kind/docker.sh [start|stop|status]   (default: start)
#   start: idempotent; records the PID only when we start dockerd ourselves.
#   stop:  stops dockerd only if we started it (PID file present and alive).
source "$(dirname "$0")/lib.sh"

PID_FILE="$PIDS/dockerd"
LOG_FILE="$LOGS/dockerd.log"
RUNTIME_NAME="minop-runc"
# A copy of the wrapper outside the work tree: containers keep the runtime path
# they were created with, so it must not move when the repo does.
WRAPPER="$MINOP_CACHE/docker/$RUNTIME_NAME"

ensure_packages() {
  # dockerd from Debian (20.10 in bookworm) brings containerd and runc with it.
  local need=()
  command -v dockerd >/dev/null || need+=(docker.io)
  [ -x /usr/sbin/runc ] || need+=(runc)
  command -v debootstrap >/dev/null || need+=(debootstrap)
  [ ${#need[@]} -eq 0 ] && return
  log "installing ${need[*]} from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
}

install_wrapper() {
  mkdir -p "$(dirname "$WRAPPER")"
  if ! cmp -s "$KIND_DIR/runc-wrapper" "$WRAPPER"; then
    install -m 0755 "$KIND_DIR/runc-wrapper" "$WRAPPER"
  fi
}

we_started() { [ -f "$PID_FILE" ] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; }

start() {
  if docker_ready; then
    # Someone's engine (or ours from an earlier run) is already up: use it.
    we_started || log "using the Docker engine already running (not started by us; stop leaves it alone)"
    check_runtime
    return
  fi
  ensure_packages
  install_wrapper
  mkdir -p "$PIDS" "$LOGS"
  log "starting dockerd (log: $LOG_FILE)"
  # Flags instead of /etc/docker/daemon.json: nothing outside our cache changes.
  # --ip: ports published without an address bind to 127.0.0.1, never to all interfaces.
  # setsid: dockerd must outlive the shell (and its process group) that started it.
  # Every inherited descriptor but stdio is closed first: started under
  # `flock /work/kind.lock make e2e-kind`, dockerd (and its containerd) would otherwise
  # hold the lock for as long as they run, and every later kind run would wait forever.
  (
    for fd in /proc/self/fd/*; do
      fd="${fd##*/}"
      [ "$fd" -le 2 ] || eval "exec $fd>&-" 2>/dev/null || true
    done
    exec setsid dockerd \
      --add-runtime "$RUNTIME_NAME=$WRAPPER" --default-runtime "$RUNTIME_NAME" \
      --ip 127.0.0.1 \
      --pidfile "$MINOP_CACHE/docker/dockerd.pid" \
      >>"$LOG_FILE" 2>&1 </dev/null
  ) &
  echo $! >"$PID_FILE"
  local deadline=$((SECONDS + 60))
  until docker_ready; do
    if ! kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
      rm -f "$PID_FILE"
      tail -20 "$LOG_FILE" >&2
      die "dockerd exited during startup (log: $LOG_FILE)"
    fi
    [ $SECONDS -lt $deadline ] || die "dockerd not answering after 60s (log: $LOG_FILE)"
    sleep 0.5
  done
  log "dockerd $(docker version -f '{{.Server.Version}}') up (pid $(cat "$PID_FILE"))"
  check_runtime
}

check_runtime() {
  local rt; rt="$(docker info -f '{{.DefaultRuntime}}')"
  [ "$rt" = "$RUNTIME_NAME" ] || log "warning: dockerd's default runtime is '$rt', not $RUNTIME_NAME: --privileged containers (kind nodes) will fail on hosts without CAP_SYS_RESOURCE"
}

stop() {
  if ! we_started; then
    rm -f "$PID_FILE"
    log "dockerd not started by us; leaving it alone"
    return
  fi
  local pid; pid="$(cat "$PID_FILE")"
  log "stopping dockerd (pid $pid)"
  kill "$pid"
  # dockerd stops its containers and its managed containerd first; give it time.
  for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    log "dockerd still running after 30s; sending SIGKILL"
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$PID_FILE"
}

status() {
  if docker_ready; then
    echo "dockerd running$(we_started && echo " (started by us, pid $(cat "$PID_FILE"))")"
  else
    echo "dockerd not running"
  fi
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) die "usage: $0 [start|stop|status]" ;;
esac
