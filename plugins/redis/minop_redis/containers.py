"""The shell the Redis pods' containers run: the server's and the Sentinel's start
commands, the probes, and the primary's preStop hand-over (handover.sh). Each takes
whichever program the image has (``redis-*`` or ``valkey-*``)."""

from __future__ import annotations

from minop_redis.scripts import CLI

PEER_SEARCH_S = 12  # handover.sh's bound on finding another pod's Sentinel that answers

# The redis container's preStop hook with failover (handover.sh in the ConfigMap).
HANDOVER = (
    r"""#!/bin/sh
# A primary whose pod stops (deleted, drained, rolled) hands over before its
# server gets SIGTERM: writes paused, every replica caught up, the primary made
# a replica (of nothing yet), then a Sentinel of another pod promotes one
# (SENTINEL FAILOVER: no election, no waiting for the primary to count as down).
# No acknowledged write is lost and there are never two primaries: clients of the
# old primary wait, then get an error, and reconnect. When anything is off it
# gives up (writes resume) and the Sentinels fail over as for a crash.
set -u
"""
    + CLI
    + r"""
export REDISCLI_AUTH="$(cat "$REDIS_AUTH_DIR/replication")"
here() { timeout 3 $cli $tls --user sentinel -h 127.0.0.1 -p "$REDIS_PORT" "$@" 2>/dev/null; }
[ "$(here role | sed -n 1p)" = master ] || exit 0
# this pod's own Sentinel gets SIGTERM now: ask another pod's
peer=""
# for a bounded time: the list may still name pods a scale-down removed
search_end=$(( $(date +%s) + """
    + str(PEER_SEARCH_S)
    + r""" ))
for p in $(cat "$REDIS_CONFIG_DIR/sentinel-peers"); do
  if [ "$p" = "$REDIS_ANNOUNCE_HOST:$REDIS_SENTINEL_PORT" ]; then continue; fi
  if [ "$(date +%s)" -ge "$search_end" ]; then break; fi
  if [ "$(timeout 3 $cli $tls --user sentinel -h "${p%:*}" -p "${p##*:}" ping 2>/dev/null)" = PONG ]
  then peer="$p"; break; fi
done
if [ -z "$peer" ]; then echo "handover: no other Sentinel answers"; exit 0; fi
ask() { timeout 3 $cli $tls --user sentinel -h "${peer%:*}" -p "${peer##*:}" "$@" 2>/dev/null; }
give_up() { echo "handover: $1"; here client unpause >/dev/null; exit 0; }
wait_s=$(( REDIS_SENTINEL_FAILOVER_TIMEOUT_MS / 1000 + 5 ))
# paused longer than this script may run: writes never resume on the old primary
here client pause $(( (wait_s + 20) * 1000 )) write >/dev/null || give_up "CLIENT PAUSE failed"
# With writes paused the primary's offset stands still; every replica that is
# online must have acknowledged it (replicas acknowledge every second), so
# whichever one the Sentinel promotes has every write.
caught_up() {
  info="$(here info replication | tr -d '\r')"
  top="$(echo "$info" | sed -n 's/^master_repl_offset://p')"
  online="$(echo "$info" | grep '^slave[0-9]*:.*state=online')" || return 1
  ! echo "$online" | grep -qv "offset=$top,"
}
deadline=$(( $(date +%s) + 10 ))
until caught_up; do
  [ "$(date +%s)" -lt "$deadline" ] || give_up "no replica caught up within 10s"
  sleep 0.2
done
# Demoted first (port 1: nothing answers), so at no moment are there two primaries;
# the Sentinels make it a replica of the promoted one.
[ "$(here replicaof 127.0.0.1 1)" = OK ] || give_up "REPLICAOF failed"
# Soon after another failover the Sentinel may still be finishing it (INPROG:
# reconfiguring the replicas) or not yet have seen the replicas answer again
# (NOGOODSLAVE): asked again for up to 10 s. Still in progress then: that
# failover promotes a replica.
deadline=$(( $(date +%s) + 10 ))
while :; do
  answer="$(ask sentinel failover "$REDIS_MASTER_NAME")"
  case "$answer" in OK) break ;; esac
  if [ "$(date +%s)" -lt "$deadline" ]; then
    case "$answer" in *INPROG* | *NOGOODSLAVE*) sleep 0.5; continue ;; esac
  fi
  case "$answer" in *INPROG*) echo "handover: a failover is still in progress"; exit 0 ;; esac
  here replicaof no one >/dev/null; give_up "SENTINEL FAILOVER: $answer"
done
# Until the Sentinel names another primary (or stops answering: every pod is
# going away, e.g. the Redis was deleted).
me="$REDIS_ANNOUNCE_HOST $REDIS_PORT"
deadline=$(( $(date +%s) + wait_s ))
while :; do
  named="$(ask sentinel get-master-addr-by-name "$REDIS_MASTER_NAME" | tr '\n' ' ')"
  if [ -z "$named" ]; then echo "handover: the Sentinel stopped answering"; exit 0; fi
  if [ "$named" != "$me " ]; then echo "handover: the Sentinels promoted ${named% * }"; exit 0; fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "handover: no replica promoted within ${wait_s}s"; exit 0
  fi
  sleep 0.2
done
"""
)

# ``sh -c SERVER <program> <args>``: runs the image's server program with the args.
SERVER = (
    "for s in redis-server valkey-server; do "
    'if command -v "$s" >/dev/null; then exec "$s" "$@"; fi; done; '
    'echo "the image has neither redis-server nor valkey-server" >&2; exit 127'
)
# ``sh -c START <init.sh> <redis.conf>``: the redis container. init.sh again first:
# a restarted server asks the Sentinels whom to follow instead of reusing the
# role it had (it may have been failed over meanwhile).
# The first start uses what the init container wrote just before (its marker).
# umask: the server rewrites its file on failovers (CONFIG REWRITE); it holds secrets.
START = (
    'umask 077; if [ -e "$1.fresh" ]; then rm -f "$1.fresh"; else sh "$0" restart; fi '
    f'|| exit 1; set -- "$1"; {SERVER}'
)
# ``sh -c SENTINEL <sentinel.conf>``: the sentinel container.
SENTINEL = f'umask 077; set -- "$0" --sentinel; {SERVER}'


# PING as the replication user (allowed +ping), with the internal password, so the
# probes never fail during a client password rotation (and every pod accepts the
# internal one they read, in each phase of its rotation); prints the server's answer.
_PING = (
    f'{CLI}REDISCLI_AUTH="$(cat "$REDIS_AUTH_DIR/replication")" '
    '"$cli" $tls --user replication -h 127.0.0.1 -p "$REDIS_PORT" ping'
)
# Started: the server answers commands (its data loaded).
STARTED = f"{_PING} | grep -qx PONG"
# Ready: started and, on a replica, linked to its primary with the data synced; a
# replica waiting for, or in the middle of, a full resync answers PING but has old
# or no data: no clients, and a rollout waits for it. Asked as user probe (+ping
# +info only), with the same never-changing password.
READY = (
    f'{STARTED} && info="$(REDISCLI_AUTH="$(cat "$REDIS_AUTH_DIR/replication")" '
    '"$cli" $tls --user probe -h 127.0.0.1 -p "$REDIS_PORT" info replication)" && '
    'echo "$info" | grep -q "^role:" && '
    '! echo "$info" | grep -qE "^(master_sync_in_progress:1|master_link_status:down)"'
)
# Alive: it answers at all. A replica loading a full resync, or any server loading
# a large data set, answers LOADING for minutes: killing it would start over.
ALIVE = f"{_PING} | grep -qE '^(PONG|LOADING)'"
# The Sentinel answers (as user sentinel, with the internal password).
SENTINEL_READY = (
    f'{CLI}REDISCLI_AUTH="$(cat "$REDIS_AUTH_DIR/replication")" '
    '"$cli" $tls --user sentinel -h 127.0.0.1 -p "$REDIS_SENTINEL_PORT" ping | grep -qx PONG'
)
