"""The shell that writes the Redis pods' configuration: init.sh (this pod's redis.conf
and sentinel.conf) and record.sh (the Sentinel's record of each election).

The image may hold Redis 6.0 to 8.x or Valkey (``valkey-server``/``valkey-cli``,
with or without the ``redis-*`` names): init.sh asks the server for its version
and writes only the directives that version knows. The containers' commands, probes
and preStop hand-over are in :mod:`minop_redis.containers`.
"""

from __future__ import annotations

# What clients (the default user) may run on Redis unless spec.auth.clientCommands
# says otherwise: data, scripting, Pub/Sub, transactions, WAIT, INFO; not @admin
# (CONFIG: masterauth is the internal password; REPLICAOF, FAILOVER, ACL, DEBUG,
# SHUTDOWN, MONITOR, SAVE, CLIENT KILL/PAUSE...). ROLE is @admin but tells no more
# than INFO replication, and Sentinel-aware clients check the primary with it.
CLIENT_COMMANDS = "+@all -@admin +role"
# On 6.x, where CLIENT and ACL are @admin as a whole: what libraries send on connect
# (client-side caching included), added to the default.
_CLIENT_6 = "setname getname id info reply tracking caching trackinginfo getredir"
CLIENT_COMMANDS_6 = " ".join(
    [*(f"+client|{sub}" for sub in _CLIENT_6.split()), "+acl|whoami", "+acl|cat"]
)

# The image's CLI ``$cli`` and, with spec.tls, its TLS options ``$tls``: the pod's
# own certificate too (needed when clients must present one, harmless when not).
# A variable, not a function, so that `timeout` can run it; used unquoted: the
# mount path has no spaces.
CLI = (
    "cli=redis-cli; command -v $cli >/dev/null || cli=valkey-cli; tls=''; "
    'if [ -n "${REDIS_TLS_DIR:-}" ]; then d="$REDIS_TLS_DIR"; '
    'tls="--tls --cacert $d/ca.crt --cert $d/tls.crt --key $d/tls.key"; fi; '
)


# With failover: "views" of whom a Sentinel names primary, "EPOCH HOST PORT" (EPOCH:
# the config epoch of that primary's election; a later election has a higher one).
# The file on the data volume outlives the pod: the newest view its Sentinel had.
VIEW = r"""
view_file="$REDIS_DATA_DIR/minop-primary"
# view "EPOCH HOST PORT": echoes it when well formed, else nothing.
view() {
  set -- $1
  if [ $# -eq 3 ] && [ "$1" -ge 0 ] 2>/dev/null && [ "$3" -gt 0 ] 2>/dev/null; then
    echo "$1 $2 $3"
  fi
}
# sentinel_view HOST PORT: the view of that Sentinel; nothing if it does not answer.
sentinel_view() {
  REDISCLI_AUTH="$(cat "$REDIS_AUTH_DIR/replication")" timeout 3 "$cli" $tls --user sentinel \
    -h "$1" -p "$2" sentinel master "$REDIS_MASTER_NAME" 2>/dev/null | {
    # field and value a line each (some values are empty lines)
    ip="" port="" epoch=""
    while read -r field && read -r value; do
      case "$field" in
        ip) ip="$value" ;; port) port="$value" ;; config-epoch) epoch="$value" ;;
      esac
    done
    view "$epoch $ip $port"
  }
}
# newer A B: the view with the higher epoch (A on a tie; either one if the other is empty).
newer() {
  if [ -z "$2" ]; then echo "$1"
  elif [ -z "$1" ] || [ "${2%% *}" -gt "${1%% *}" ]; then echo "$2"
  else echo "$1"; fi
}
recorded() { view "$(cat "$view_file" 2>/dev/null || true)"; }
# record VIEW; a pod an earlier plugin version made has no data volume in its init
# container: it starts without (its Sentinel records the next election)
record() {
  if ! { echo "$1" > "$view_file.tmp" && mv "$view_file.tmp" "$view_file"; } 2>/dev/null; then
    echo "cannot record the primary in $view_file: not writable here" >&2
  fi
}
# A static Sentinel ID per pod, from its address.
sentinel_id() { echo "$REDIS_MASTER_NAME $1" | sha256sum | cut -c1-40; }
# peers: "host:port" of every pod's Sentinel. In the ConfigMap, not the environment: it
# follows spec.replicas, and a scale restarts no pod.
peers() { cat "$REDIS_CONFIG_DIR/sentinel-peers" 2>/dev/null || true; }
"""

# The init container's script.
INIT = (
    r"""#!/bin/sh
# Writes this pod's redis.conf and, with failover, sentinel.conf (minop's Redis
# init container; the redis container runs it again on every start). Pod 0 is
# the first primary, every other pod replicates it; with Sentinel, the primary
# the Sentinels elected. Client passwords are written as SHA-256 hashes; only the
# internal password is in clear (masterauth, Sentinel's auth-pass).
set -eu
# "restart": run by the redis container when it starts again within its pod.
mode="${1:-init}"
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
"""
    + CLI
    + r"""
# A build without TLS would only say "Bad directive" about tls-port.
if [ -n "${REDIS_TLS_DIR:-}" ] && ! "$cli" --tls --version >/dev/null 2>&1; then
  echo "init: spec.tls needs a Redis built with TLS; $server $version of this image is not" >&2
  exit 1
fi
sha() { sha256sum < "$1" | cut -c1-64; }
# Pub/Sub channel rules (&*) exist from 6.2; 6.0 lets every user use every channel.
channels=""
if since 6 2; then channels=" &*"; fi
umask 077
redis_password() { cat "$REDIS_AUTH_DIR/replication"; }
# internal_hashes: " #<sha256>" of each internal password the internal users accept:
# the one sent (replication) and, while it rotates, the next or the previous one.
internal_hashes() {
  for f in replication replication-next replication-previous; do
    if [ -f "$REDIS_AUTH_DIR/$f" ]; then printf ' #%s' "$(sha "$REDIS_AUTH_DIR/$f")"; fi
  done
}
"""
    + VIEW
    + r"""
# default_user COMMANDS: the ACL line of the default user (clients), allowed
# COMMANDS. During a password rotation it also accepts the previous password(s):
# nobody is locked out while the pods roll.
default_user() {
  rules="reset on ~*$channels $1"
  if [ -f "$REDIS_AUTH_DIR/password" ]; then
    for f in "$REDIS_AUTH_DIR/password" "$REDIS_AUTH_DIR"/previous-*; do
      if [ -f "$f" ]; then rules="$rules #$(sha "$f")"; fi
    done
  else
    rules="$rules nopass"
  fi
  echo "user default $rules"
}
# exporter_lines: spec.metrics' exporter user (minop_redis.metrics says what it may
# do, and why no more) and, beside redis.conf, its password file.
exporter_lines() {
  # (6.x has no LATENCY HISTOGRAM but takes the rule: it answers the exporter's try
  # with an error, not a refusal in the ACL LOG)
  rules="+ping +info +client|setname +latency|latest +latency|histogram"
  echo "user $REDIS_EXPORTER_USER reset on$(internal_hashes) $rules"
  scheme=redis; if [ -n "${REDIS_TLS_DIR:-}" ]; then scheme=rediss; fi
  printf '{"%s://%s@127.0.0.1:%s": "%s"}\n' "$scheme" "$REDIS_EXPORTER_USER" "$REDIS_PORT" \
    "$(redis_password)" > "$REDIS_RUN_DIR/exporter.json.tmp"
  mv "$REDIS_RUN_DIR/exporter.json.tmp" "$REDIS_RUN_DIR/exporter.json"
}
# client_commands: what clients may run on Redis (spec.auth.clientCommands, the
# ConfigMap's client-commands). The default leaves out @admin: CONFIG (which reads
# masterauth), REPLICAOF, FAILOVER, ACL, DEBUG, SHUTDOWN, MONITOR, SAVE...
client_commands() {
  rules="$(cat "$REDIS_CONFIG_DIR/client-commands")"
  # 6.x files all of CLIENT and ACL under @admin (7.0 sorts their subcommands):
  # the default gives back what client libraries send, nothing that administers
  if [ "$rules" = "$default_client_commands" ] && ! since 7 0; then
    rules="$rules $client_commands_6"
  fi
  echo "$rules"
}
"""
    + f'default_client_commands="{CLIENT_COMMANDS}"\n'
    + f'client_commands_6="{CLIENT_COMMANDS_6}"\n'
    + r"""# What clients ask a Sentinel: discovery (the primary, the replicas, the Sentinels)
# and the +switch-master notifications; never FAILOVER, SET, REMOVE, RESET or
# CONFIG, which only the operator and the Sentinels themselves (user sentinel) run.
sentinel_clients="-@all +ping +hello +auth +role +info +client|setname +client|getname"
sentinel_clients="$sentinel_clients +subscribe +psubscribe +unsubscribe +punsubscribe"
for sub in get-master-addr-by-name master masters replicas slaves sentinels myid \
  ckquorum; do
  sentinel_clients="$sentinel_clients +sentinel|$sub"
done
# protected_mode: on where a client password is set (a later ACL SETUSER default nopass
# then still refuses clients from other pods); off without one, or nobody else could
# connect at all.
protected_mode() {
  if [ -f "$REDIS_AUTH_DIR/password" ]; then echo "protected-mode yes"
  else echo "protected-mode no"; fi
}
bind_line() {
  # Optional addresses ("-::*": IPv6 if the node has it) and "*" exist from 6.2;
  # without a bind line 6.0 listens on every IPv4 and IPv6 address it can.
  if since 6 2 || [ "$REDIS_BIND" != "* -::*" ]; then echo "bind $REDIS_BIND"; fi
}
# listen_lines PORT: where the server listens. With spec.tls only TLS (port 0: no
# plain listener), and TLS to the primary, the replicas and the other Sentinels.
listen_lines() {
  if [ -z "${REDIS_TLS_DIR:-}" ]; then echo "port $1"; return; fi
  echo "port 0"
  echo "tls-port $1"
  echo "tls-cert-file $REDIS_TLS_DIR/tls.crt"
  echo "tls-key-file $REDIS_TLS_DIR/tls.key"
  echo "tls-ca-cert-file $REDIS_TLS_DIR/ca.crt"
  echo "tls-auth-clients $REDIS_TLS_AUTH_CLIENTS"
  echo "tls-replication yes"
}
# ask_sentinels: "epoch host port" of the primary the Sentinels that answer name,
# the highest config epoch (the newest failover) winning; nothing if none answers.
ask_sentinels() {
  best=""
  for peer in $(peers); do
    best="$(newer "$best" "$(sentinel_view "${peer%:*}" "${peer##*:}")")"
  done
  echo "$best"
}
primary_host="" primary_port=""
if [ "$ordinal" != 0 ]; then
  primary_host="$REDIS_PRIMARY_HOST" primary_port="$REDIS_PRIMARY_PORT"
fi
if [ -n "${REDIS_SENTINEL_PORT:-}" ]; then
  if ! since 6 2; then
    echo "init: failover (spec.sentinel) needs Redis 6.2 or later (Sentinel hostnames" \
      "and ACL users); $server is $version" >&2
    exit 1
  fi
  # Whom the Sentinels elected wins over the ordinal: after a failover pod 0 is
  # a replica like any other, and it must never come back as a second primary.
  me="$REDIS_ANNOUNCE_HOST $REDIS_PORT"
  known="$(ask_sentinels)"
  # Named primary but just (re)started: its data may be older than a replica's
  # (writes after the last fsync). Stay down, so the Sentinels promote the most
  # up-to-date replica, unless none is elected in time (e.g. no replica left).
  if [ "${known#* }" = "$me" ] && [ "$(peers | wc -w)" -gt 1 ]; then
    wait_s=$(( (REDIS_SENTINEL_DOWN_AFTER_MS + REDIS_SENTINEL_FAILOVER_TIMEOUT_MS) / 1000 + 10 ))
    echo "init: the Sentinels still name this pod primary: waiting up to ${wait_s}s for a failover"
    deadline=$(( $(date +%s) + wait_s ))
    while [ "${known#* }" = "$me" ] && [ "$(date +%s)" -lt "$deadline" ]; do
      sleep 1
      known="$(ask_sentinels)"
    done
  fi
  # A cold start (every pod restarted, no Sentinel knows more yet): the primary this
  # pod last recorded, if newer, not pod 0 (which may have been away for hours). Only
  # when the pods start together: with OrderedReady the others start once this one
  # is Ready, which a replica of a primary that has not started never is.
  # (unset in a pod an earlier plugin version made: its StatefulSet was OrderedReady)
  if [ "${REDIS_POD_MANAGEMENT:-OrderedReady}" = Parallel ]; then
    known="$(newer "$known" "$(recorded)")"
  fi
  epoch=0
  if [ -n "$known" ]; then
    epoch="${known%% *}" known="${known#* }"
    echo "init: the primary is ${known% *}:${known#* } (config epoch $epoch)"
    if [ "$known" = "$me" ]; then
      primary_host="" primary_port=""
    else
      primary_host="${known% *}" primary_port="${known#* }"
    fi
  fi
  record "$epoch ${primary_host:-$REDIS_ANNOUNCE_HOST} ${primary_port:-$REDIS_PORT}"
fi
clients="$(client_commands)"  # set -e: without the ConfigMap key the pod does not start
conf="$REDIS_RUN_DIR/redis.conf"
{
  cat "$REDIS_CONFIG_DIR/redis.conf"
  bind_line
  protected_mode
  listen_lines "$REDIS_PORT"
  echo "dir $REDIS_DATA_DIR"
  # 7.0 keeps the append-only files in a directory (6.x: one appendonly.aof in dir).
  if since 7 0; then echo 'appenddirname "appendonlydir"'; fi
  default_user "$clients"
  # Replicas (and the probes) authenticate as their own user, with the internal
  # password: rotating the client password cannot break replication, whatever
  # order the pods restart in (the internal one rotates in three phases: auth.py).
  echo "user replication reset on$(internal_hashes) +psync +replconf +ping"
  echo "user probe reset on$(internal_hashes) +ping +info"
  if [ -n "${REDIS_EXPORTER_USER:-}" ]; then exporter_lines; fi
  echo "masteruser replication"
  echo "masterauth $(redis_password)"
  if [ -n "${REDIS_SENTINEL_PORT:-}" ]; then
    # What a Sentinel needs on a Redis (and ROLE/INFO, which the operator reads, and
    # CONFIG SET, for replica-priority during rollouts; CLIENT PAUSE/UNPAUSE for
    # handover.sh).
    echo "user sentinel reset on$(internal_hashes) resetchannels" \
      "&__sentinel__:hello" \
      "+client|setname +client|kill +subscribe +publish +ping +info +role +multi +exec" \
      "+slaveof +replicaof +config|rewrite +config|set +script|kill +client|pause" \
      "+client|unpause"
    # Sentinels and replicas find this pod by its stable DNS name, not its IP.
    echo "replica-announce-ip $REDIS_ANNOUNCE_HOST"
  fi
  if [ -n "$primary_host" ]; then echo "replicaof $primary_host $primary_port"; fi
} > "$conf.tmp"
mv "$conf.tmp" "$conf"
if [ "$mode" != restart ]; then : > "$conf.fresh"; fi
# The Sentinel's file is its state (it rewrites it): written once per pod only.
sentinel_conf="$REDIS_RUN_DIR/sentinel.conf"
if [ -n "${REDIS_SENTINEL_PORT:-}" ] && [ ! -f "$sentinel_conf" ]; then
  if [ -z "$primary_host" ]; then
    primary_host="$REDIS_ANNOUNCE_HOST" primary_port="$REDIS_PORT"
  fi
  m="$REDIS_MASTER_NAME"
  {
    bind_line
    listen_lines "$REDIS_SENTINEL_PORT"
    echo "dir $REDIS_RUN_DIR"
    echo 'logfile ""'
    protected_mode
    echo "sentinel resolve-hostnames yes"
    echo "sentinel announce-hostnames yes"
    echo "sentinel announce-ip $REDIS_ANNOUNCE_HOST"
    echo "sentinel announce-port $REDIS_SENTINEL_PORT"
    # A static ID per pod (from its address): a recreated pod's Sentinel is the same
    # Sentinel to the others, not a new one beside the old, which 6.2 keeps counting
    # toward the majority a failover needs.
    addr="$REDIS_ANNOUNCE_HOST:$REDIS_SENTINEL_PORT"
    echo "sentinel myid $(sentinel_id "$addr")"
    quorum="$(cat "$REDIS_CONFIG_DIR/sentinel-quorum")"
    echo "sentinel monitor $m $primary_host $primary_port $quorum"
    # The epoch of that primary's election, and every peer Sentinel known by its
    # static ID: on a cold start the Sentinels tell each other (hellos) whom they
    # last knew, and all follow the newest election, whomever they monitored first.
    echo "sentinel current-epoch $epoch"
    echo "sentinel config-epoch $m $epoch"
    for peer in $(peers); do
      if [ "$peer" != "$addr" ]; then
        echo "sentinel known-sentinel $m ${peer%:*} ${peer##*:} $(sentinel_id "$peer")"
      fi
    done
    # every primary it learns of is recorded on the data volume (record.sh)
    echo "sentinel client-reconfig-script $m $REDIS_CONFIG_DIR/record.sh"
    echo "sentinel down-after-milliseconds $m $REDIS_SENTINEL_DOWN_AFTER_MS"
    echo "sentinel failover-timeout $m $REDIS_SENTINEL_FAILOVER_TIMEOUT_MS"
    echo "sentinel parallel-syncs $m 1"
    echo "sentinel auth-user $m sentinel"
    echo "sentinel auth-pass $m $(redis_password)"
    # Clients ask with the client password; Sentinels among themselves (and the
    # operator) as user sentinel.
    default_user "$sentinel_clients"
    echo "user sentinel on$(internal_hashes) ~* &* +@all"
    echo "sentinel sentinel-user sentinel"
    echo "sentinel sentinel-pass $(redis_password)"
  } > "$sentinel_conf.tmp"
  mv "$sentinel_conf.tmp" "$sentinel_conf"
fi
"""
)

# The Sentinel's client-reconfig-script (record.sh in the ConfigMap).
RECORD = (
    r"""#!/bin/sh
# Run by this pod's Sentinel when another primary is elected (it led the election:
# before it switches itself) or it learns of one from a peer (after):
#   record.sh <name> leader|observer start|end <from-host> <from-port> <to-host> <to-port>
# Records the new primary and the epoch of its election on the data volume, never
# over a newer record. On a cold start (every pod restarted) init.sh follows the
# newest record.
set -u
"""
    + CLI
    + VIEW
    + r"""
epoch="$(sentinel_view 127.0.0.1 "$REDIS_SENTINEL_PORT")"
[ -n "$epoch" ] || exit 1  # the Sentinel runs it again
now="$(view "${epoch%% *} $6 $7")"
[ -n "$now" ] || { echo "record.sh: unexpected arguments $*" >&2; exit 2; }
record "$(newer "$now" "$(recorded)")"
echo "record.sh: the primary is $6:$7 (config epoch ${epoch%% *})"
"""
)
