# tests/e2e/sidecar_lib.sh — helpers for the mesh-sidecar e2e tests (sourced after lib.sh).
#
# sc_mesh_init: store + CA + bundle in $E2E_DIR. sc_token ID: a join token file for ID.
# sc_start_meshd [ARGS]: meshd on $MESHD_PORT. sc_start_sidecar NAME ID [ARGS]: a sidecar
# with its state in $E2E_DIR/NAME, admin on a free port recorded in ADMIN_<NAME>.
# sc_get HOSTHDR PORT PATH: HTTP status of a request through an outbound listener.

M="$MESH_BIN/meshctl"
TD=example.org
SC_PORTS=" "

# free_port from lib.sh draws from 20000-60000, which overlaps the kernel's ephemeral
# range (32768-60999): an outgoing connection can hold the port by the time an app binds
# it. These tests draw below the ephemeral range and never hand out a port twice.
# sc_port VAR: sets VAR to a port (run in this shell, not in $(...), so the list of
# ports handed out survives).
sc_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 12000))
        case "$SC_PORTS" in *" $p "*) continue ;; esac
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            SC_PORTS="$SC_PORTS$p "
            printf -v "$1" '%s' "$p"
            return
        fi
    done
}

sc_mesh_init() {
    "$M" ca init --trust-domain "$TD" >/dev/null || return 1
    "$M" ca bundle >"$E2E_DIR/bundle.pem" || return 1
    sc_port MESHD_PORT
}

# sc_token ID FILE: registers ID (or mints a new token if registered) into FILE.
sc_token() {
    local id=$1 file=$2 out
    out=$("$M" --output json workload add "$id" 2>/dev/null) ||
        out=$("$M" --output json workload token "$id") || return 1
    printf '%s\n' "$out" | sed -n 's/.*"token":"\(mjt_[^"]*\)".*/\1/p' >"$file"
    [ -s "$file" ]
}

sc_start_meshd() {
    start meshd "$MESH_BIN/meshd" --db "$MESHD_DB" --listen "127.0.0.1:$MESHD_PORT" "$@"
    MESHD_PID=$LAST_PID
    wait_port "$MESHD_PORT" 10
}

# sc_start_sidecar NAME SPIFFE_ID [extra args]
sc_start_sidecar() {
    local name=$1 id=$2 port
    shift 2
    sc_port port
    eval "ADMIN_${name//-/_}=$port"
    start "sc-$name" "$MESH_BIN/mesh-sidecar" --meshd "127.0.0.1:$MESHD_PORT" \
        --ca-bundle "$E2E_DIR/bundle.pem" --state-dir "$E2E_DIR/state-$name" --id "$id" \
        --token-file "$E2E_DIR/$name.token" --admin "127.0.0.1:$port" --reconnect-max 1s "$@"
    eval "PID_${name//-/_}=$LAST_PID"
}

sc_admin() {
    local name=$1 path=$2 var="ADMIN_${1//-/_}"
    curl -s -m 3 "http://127.0.0.1:${!var}$path"
}

sc_ready() {
    local var="ADMIN_${1//-/_}"
    [ "$(curl -s -m 2 -o /dev/null -w '%{http_code}' "http://127.0.0.1:${!var}/ready")" = 200 ]
}

# sc_get HOST PORT [PATH]: prints the HTTP status ("000" on connection failure).
sc_get() {
    curl -s -m 5 -o /dev/null -w '%{http_code}' -H "Host: $1" "http://127.0.0.1:$2${3:-/}"
}

# sc_body HOST PORT [PATH]: prints the response body.
sc_body() {
    curl -s -m 5 -H "Host: $1" "http://127.0.0.1:$2${3:-/}"
}

# sc_count_apps HOST PORT N: N requests; prints "app=count" lines.
sc_count_apps() {
    local i
    for i in $(seq 1 "$3"); do
        curl -s -m 5 -H "Host: $1" "http://127.0.0.1:$2/" | sed -n 's/.*"app":"\([^"]*\)".*/\1/p'
    done | sort | uniq -c | awk '{print $2"="$1}'
}

# sc_stop PID: SIGTERM and wait up to 10 s; returns its exit status (137 if it had to
# be killed).
sc_stop() {
    local pid=$1 i=0
    kill -TERM "$pid" 2>/dev/null
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
}
