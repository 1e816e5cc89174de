"""The failover part of init.sh, with Sentinel: whom this pod follows when it starts
(its record of the newest election, what the Sentinels say, an empty volume that
must not overwrite its peers), and the Sentinel's first configuration.

Shell fragments that :mod:`minop_redis.scripts` puts into init.sh (``VIEW`` also
into record.sh); they use its helpers (``$cli``, ``since``, ``redis_password``...).
"""

from __future__ import annotations

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
# redis_peers: "host:port" of every pod's Redis (the ConfigMap too).
redis_peers() { cat "$REDIS_CONFIG_DIR/redis-peers" 2>/dev/null || true; }
"""

# Before redis.conf is written: the primary this pod follows (``$primary_host``,
# ``$primary_port``; empty: this pod) and its ``$priority``.
FOLLOW = r"""# ask_sentinels: "epoch host port" of the primary the Sentinels that answer name,
# the highest config epoch (the newest failover) winning; nothing if none answers.
ask_sentinels() {
  best=""
  for peer in $(peers); do
    best="$(newer "$best" "$(sentinel_view "${peer%:*}" "${peer##*:}")")"
  done
  echo "$best"
}
# peers_data: "data" when another pod's Redis holds keys or is loading them, else
# "unknown" when one does not answer; nothing when every one answers empty.
peers_data() {
  state=""
  for peer in $(redis_peers); do
    if [ "$peer" = "$REDIS_ANNOUNCE_HOST:$REDIS_PORT" ]; then continue; fi
    out="$(REDISCLI_AUTH="$(redis_password)" timeout 3 "$cli" $tls --user probe \
      -h "${peer%:*}" -p "${peer##*:}" info 2>/dev/null || true)"
    case "$out" in
      *loading:1*|*keys=*) echo data; return ;;
      *_version:*) ;;
      *) state=unknown ;;
    esac
  done
  echo "$state"
}
# A volume with neither a record nor data: a new claim, or one whose data was lost.
fresh=1
for f in "$REDIS_DATA_DIR"/* "$REDIS_DATA_DIR"/.[!.]*; do
  if [ -e "$f" ] && [ "${f##*/}" != lost+found ]; then fresh=""; break; fi
done
mine="$(recorded)"
if [ -n "${REDIS_SENTINEL_PORT:-}" ]; then
  if ! since 6 2; then
    echo "init: failover (spec.sentinel) needs Redis 6.2 or later (Sentinel hostnames" \
      "and ACL users); $server is $version" >&2
    exit 1
  fi
  # Whom the Sentinels elected wins over the ordinal: after a failover pod 0 is
  # a replica like any other, and it must never come back as a second primary.
  me="$REDIS_ANNOUNCE_HOST $REDIS_PORT"
  known="$(ask_sentinels)" answered="$known"
  echo "init: recorded here: ${mine:-nothing}; the Sentinels: ${known:-no answer}"
  parallel=""
  # (unset in a pod an earlier plugin version made: its StatefulSet was OrderedReady)
  if [ "${REDIS_POD_MANAGEMENT:-OrderedReady}" = Parallel ]; then parallel=1; fi
  # A cold start (no Sentinel answers: every pod restarted) of a pod whose record names
  # itself primary: it may have been away while another pod took writes (its record
  # names an older election). Wait a while for the peers' Sentinels (they start when
  # their pods' init is done), rather than run as a primary, which a Sentinel would
  # take for the best replica to promote (a primary reports no replica-priority).
  if [ -z "$known" ] && [ -n "$parallel" ] && [ "${mine#* }" = "$me" ] \
    && [ "$(peers | wc -w)" -gt 1 ]; then
    deadline=$(( $(date +%s) + 20 ))
    while [ -z "$known" ] && [ "$(date +%s)" -lt "$deadline" ]; do
      sleep 1
      known="$(ask_sentinels)"
    done
  fi
  # replica-priority (lower first, 0 never): whom the Sentinels promote when offsets
  # cannot tell (a restart loses them with appendonly), as in a cold start. Never an
  # empty volume of a Redis that had data; last a pod whose record predates the
  # newest election the Sentinels name (it was away); with no Sentinel answering (a
  # cold start: all restart) the pod whose record holds the newest election first.
  # The operator sets the default (100) again once a primary serves.
  own_epoch="${mine%% *}" own_epoch="${own_epoch:-0}" priority=""
  if [ -n "$fresh" ] && [ -f "$REDIS_CONFIG_DIR/established" ]; then
    priority=0
    echo "init: an empty volume: never promoted (replica-priority 0) until it has synced"
  elif [ -z "$known" ] && [ -n "$mine" ]; then
    priority=$(( own_epoch < 999999 ? 1000000 - own_epoch : 1 ))
  elif [ "${known%% *}" -gt "$own_epoch" ]; then
    priority=1000000
  fi
  if [ -n "$fresh" ] && [ -f "$REDIS_CONFIG_DIR/established" ] && [ "$(peers | wc -w)" -gt 1 ]
  then
    # An empty volume in a Redis that has had a primary: a peer syncing from this pod
    # would lose its data. Start only as a replica of a primary the Sentinels name;
    # while they name this pod (the newest election chose it before its data was
    # lost) stay down until they promote a peer, for as long as a peer holds data.
    # (Peers that do not answer are waited for a minute: their node may be gone.)
    deadline=$(( $(date +%s) + 60 )) said=0
    while [ -z "$known" ] || [ "${known#* }" = "$me" ]; do
      held="$(peers_data)"
      if [ -z "$held" ] || { [ "$held" = unknown ] && [ "$(date +%s)" -ge "$deadline" ]; }; then
        break
      fi
      if [ "$(date +%s)" -ge "$said" ]; then
        echo "init: empty volume, peers hold data ($held): waiting for the Sentinels to" \
          "name a primary other than this pod (now: ${known:-none})"
        said=$(( $(date +%s) + 10 ))
      fi
      sleep 1
      known="$(ask_sentinels)"
    done
  # Named primary by running Sentinels but just (re)started: its data may be older
  # than a replica's (writes after the last fsync). Stay down, so the Sentinels
  # promote the most up-to-date replica, unless none is elected in time (e.g. no
  # replica left). (In a cold start every pod restarted: none is more up to date.)
  elif [ "${answered#* }" = "$me" ] && [ "$(peers | wc -w)" -gt 1 ]; then
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
  if [ -n "$parallel" ]; then
    known="$(newer "$known" "$mine")"
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
"""

# After redis.conf: sentinel.conf, once per pod.
SENTINEL_CONF = r"""# The Sentinel's file is its state (it rewrites it): written once per pod only.
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
    # and every other pod as a replica: a primary that never answers again (its
    # volume lost, its node gone) can be replaced in a cold start, when no Sentinel
    # has heard of its replicas from it
    for peer in $(redis_peers); do
      if [ "$peer" != "$primary_host:$primary_port" ]; then
        echo "sentinel known-replica $m ${peer%:*} ${peer##*:}"
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
