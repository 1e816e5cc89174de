# Host processes started and stopped by recorded PID, never by name. Source it after lib.sh;
# the caller sets PIDS (pid files) and LOGS (one <name>.log per process). `stop` counts what
# it stopped in $stopped.

# ours <pid> <binary>: the PID runs that binary. Guards against a recorded PID that was
# reused by an unrelated process (after a reboot, say): we never signal anything else.
ours() {
  local argv0=""
  IFS= read -r -d '' argv0 <"/proc/$1/cmdline" 2>/dev/null || true
  [ "$(basename -- "${argv0:-/}")" = "$2" ]
}

pid_of() { [ -f "$PIDS/$1" ] && cat "$PIDS/$1"; }

# bin_of <name>: the binary a recorded process runs (its name unless recorded otherwise).
bin_of() { if [ -f "$PIDS/$1.bin" ]; then cat "$PIDS/$1.bin"; else echo "$1"; fi; }

alive() {
  local pid
  pid="$(pid_of "$1")" || return 1
  kill -0 "$pid" 2>/dev/null && ours "$pid" "$(bin_of "$1")"
}

# start <name> <binary> <args...>: background it, record its PID, log to logs/<name>.log.
# START_BIN: the basename the process runs when it is not <name> (e.g. `env` execs it).
start() {
  local name="$1"; shift
  mkdir -p "$PIDS" "$LOGS"
  printf '\n==== %s starting %s\n' "$(date -Is)" "$name" >>"$LOGS/$name.log"
  if [ -n "${START_BIN:-}" ] && [ "$START_BIN" != "$name" ]; then
    echo "$START_BIN" >"$PIDS/$name.bin"
  else
    rm -f "$PIDS/$name.bin"
  fi
  # setsid: its own session, so a terminal hang-up or Ctrl-C in the caller's process group
  # does not take it down (setsid execs in place here, so $! is the binary's PID).
  # fd 9 (the callers' lock) must not leak into the daemons.
  setsid "$@" </dev/null >>"$LOGS/$name.log" 2>&1 9>&- &
  local pid=$! i
  echo "$pid" >"$PIDS/$name"
  # Until setsid (and env) have exec'ed, the PID does not run the binary yet.
  for i in $(seq 50); do alive "$name" && return 0; sleep 0.02; done
  kill -0 "$pid" 2>/dev/null || die "$name exited at once (log: $LOGS/$name.log)"
}

stop() { # stop <name>: TERM the recorded PID, KILL it after 10 s
  local name="$1" pid
  pid="$(pid_of "$name")" || return 0
  if kill -0 "$pid" 2>/dev/null && ours "$pid" "$(bin_of "$name")"; then
    kill -TERM "$pid" 2>/dev/null || true
    local i
    for i in $(seq 100); do alive "$name" || break; sleep 0.1; done
    if alive "$name"; then
      log "$name (pid $pid) ignored SIGTERM for 10s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      for i in $(seq 50); do alive "$name" || break; sleep 0.1; done
    fi
    wait "$pid" 2>/dev/null || true # reap it if it is our own child (a failed `up`)
    stopped=$((stopped + 1))
  fi
  rm -f "$PIDS/$name" "$PIDS/$name.bin"
}

# wait_until <seconds> <what> <component> <cmd...>: poll cmd; fail early if the component died.
wait_until() {
  local deadline=$((SECONDS + $1)) what="$2" comp="$3"; shift 3
  until "$@" >/dev/null 2>&1; do
    if ! alive "$comp"; then
      tail -n 15 "$LOGS/$comp.log" >&2 || true
      die "$comp exited while waiting for $what (log: $LOGS/$comp.log)"
    fi
    [ $SECONDS -lt "$deadline" ] || die "timed out after ${1}s waiting for $what (logs: $LOGS)"
    sleep 0.2
  done
}

stopped=0

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
