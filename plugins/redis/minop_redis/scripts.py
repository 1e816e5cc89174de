"""The shell the Redis pods run: init.sh (writes this pod's redis.conf), the
server's start command and the probes.

The image may hold Redis 6.0 to 8.x or Valkey (``valkey-server``/``valkey-cli``,
with or without the ``redis-*`` names): init.sh asks the server for its version
and writes only the directives that version knows; the start command and the
probes take whichever program the image has.
"""

from __future__ import annotations

# The init container's script. Pod 0 is the primary; every other pod replicates
# it through its stable DNS name.
INIT = r"""#!/bin/sh
# Writes this pod's redis.conf (minop's Redis init container). Pod 0 is the
# primary, every other pod replicates it. Client passwords are written as
# SHA-256 hashes; only the replication password is in clear (masterauth).
set -eu
ordinal="${POD_NAME##*-}"
server=""
for s in redis-server valkey-server; do
  if command -v "$s" >/dev/null; then server="$s"; break; fi
done
if [ -z "$server" ]; then
  echo "init: the image has neither redis-server nor valkey-server" >&2; exit 1
fi
version="$("$server" --version | sed -n 's/.* v=\([0-9][0-9]*\.[0-9][0-9]*\).*/\1/p')"
if [ -z "$version" ]; then
  echo "init: cannot read the version from '$("$server" --version)'" >&2; exit 1
fi
major="${version%%.*}"; minor="${version#*.}"
# since M N: the server is version M.N or later (Valkey 7.2+ counts as Redis 7.2+).
since() { [ "$major" -gt "$1" ] || { [ "$major" -eq "$1" ] && [ "$minor" -ge "$2" ]; }; }
if ! since 6 0; then
  echo "init: $server $version is too old: minop supports Redis 6.0 and later" >&2; exit 1
fi
echo "init: $server $version"
sha() { sha256sum < "$1" | cut -c1-64; }
# Pub/Sub channel rules (&*) exist from 6.2; 6.0 lets every user use every channel.
channels=""
if since 6 2; then channels=" &*"; fi
conf="$REDIS_RUN_DIR/redis.conf"
umask 077
{
  cat "$REDIS_CONFIG_DIR/redis.conf"
  # Optional addresses ("-::*": IPv6 if the node has it) and "*" exist from 6.2;
  # without a bind line 6.0 listens on every IPv4 and IPv6 address it can.
  if since 6 2 || [ "$REDIS_BIND" != "* -::*" ]; then echo "bind $REDIS_BIND"; fi
  echo "port $REDIS_PORT"
  echo "dir $REDIS_DATA_DIR"
  # 7.0 keeps the append-only files in a directory (6.x: one appendonly.aof in dir).
  if since 7 0; then echo 'appenddirname "appendonlydir"'; fi
  # Clients use the default user. During a password rotation it also accepts the
  # previous password(s), so nobody is locked out while the pods roll.
  if [ -f "$REDIS_AUTH_DIR/password" ]; then
    rules="reset on ~*$channels +@all"
    for f in "$REDIS_AUTH_DIR/password" "$REDIS_AUTH_DIR"/previous-*; do
      if [ -f "$f" ]; then rules="$rules #$(sha "$f")"; fi
    done
    echo "user default $rules"
  else
    echo "user default reset on nopass ~*$channels +@all"
  fi
  # Replicas (and the probes) authenticate as their own user, whose password
  # never changes: rotating the client password cannot break replication,
  # whatever order the pods restart in.
  echo "user replication reset on #$(sha "$REDIS_AUTH_DIR/replication") +psync +replconf +ping"
  echo "masteruser replication"
  echo "masterauth $(cat "$REDIS_AUTH_DIR/replication")"
  if [ "$ordinal" != 0 ]; then
    echo "replicaof $REDIS_PRIMARY_HOST $REDIS_PRIMARY_PORT"
  fi
} > "$conf.tmp"
mv "$conf.tmp" "$conf"
"""

# ``sh -c START <program> <args>``: runs the image's server program with the args.
START = (
    "for s in redis-server valkey-server; do "
    'if command -v "$s" >/dev/null; then exec "$s" "$@"; fi; done; '
    'echo "the image has neither redis-server nor valkey-server" >&2; exit 127'
)

# PING as the replication user (allowed +ping), whose password never changes, so
# the probes never fail during a password rotation; prints the server's answer.
_PING = (
    "cli=redis-cli; command -v $cli >/dev/null || cli=valkey-cli; "
    'REDISCLI_AUTH="$(cat "$REDIS_AUTH_DIR/replication")" '
    '"$cli" --user replication -h 127.0.0.1 -p "$REDIS_PORT" ping'
)
# Ready: the server answers commands.
READY = f"{_PING} | grep -qx PONG"
# Alive: it answers at all. A replica loading a full resync, or any server loading
# a large data set, answers LOADING for minutes: killing it would start over.
ALIVE = f"{_PING} | grep -qE '^(PONG|LOADING)'"
