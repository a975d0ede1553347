# Throwaway PostgreSQL clusters for the test, demo and benchmark scripts.
# Source this file, then:
#   cluster_start DIR [postgresql.conf lines...]   initdb + start as the postgres
#                                                  user, Unix socket only, in DIR
#   cluster_stop DIR                               stop it (DIR is left to the caller)
#   throwaway_work_dir NAME                        sets $work to a new directory under
#                                                  /tmp that the postgres user can read;
#                                                  its cluster (and simulator) are stopped
#                                                  and it is removed when the script exits
# cluster_start exports PGHOST, PGPORT and PGUSER for psql and pg_regress.

PG_BINDIR=$(pg_config --bindir)
CLUSTER_PORT=${CLUSTER_PORT:-54329}

cluster_start() {
  local dir=$1
  shift
  mkdir -p "$dir"
  chown postgres:postgres "$dir"
  chmod 700 "$dir"
  mkdir -p "$dir/keys"
  chown postgres:postgres "$dir/keys"
  chmod 700 "$dir/keys"
  runuser -u postgres -- "$PG_BINDIR/initdb" -D "$dir/data" -U postgres --auth=trust \
    --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || {
    cat "$dir/initdb.log" >&2
    return 1
  }
  {
    # Only a Unix socket in DIR: nothing else on the machine can collide with it.
    echo "listen_addresses = ''"
    echo "port = $CLUSTER_PORT"
    echo "unix_socket_directories = '$dir'"
    echo "max_worker_processes = 16"  # a later line of the caller's may raise it
    echo "max_parallel_workers = 8"
    echo "fsync = off"
    # connector refuses to store a secret until its key file is set, and never
    # inside the data directory: a throwaway cluster keeps it beside it.
    echo "connector.key_file = '$dir/keys/connector.key'"
    local line
    for line in "$@"; do echo "$line"; done
  } >>"$dir/data/postgresql.conf"
  runuser -u postgres -- "$PG_BINDIR/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start \
    >/dev/null || {
    cat "$dir/server.log" >&2
    return 1
  }
  export PGHOST=$dir PGPORT=$CLUSTER_PORT PGUSER=postgres
}

cluster_stop() {
  local dir=$1
  [ -d "$dir/data" ] || return 0
  runuser -u postgres -- "$PG_BINDIR/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
}

throwaway_work_dir() {
  work=$(mktemp -d "/tmp/connector-$1.XXXXXX")
  chmod 755 "$work"
  trap 'cluster_stop "$work/cluster"; if declare -F graph_sim_stop >/dev/null; then graph_sim_stop "$work/sim"; fi; rm -rf "$work"' EXIT
}
