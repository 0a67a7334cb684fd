# tests/e2e/sidecar_lib.sh — helpers for the mesh-sidecar e2e tests (sourced after lib.sh).
#
# sc_mesh_init: store + CA + bundle in $E2E_DIR. sc_token ID FILE: a join token file for ID.
# sc_start_meshd [ARGS]: meshd on $MESHD_PORT. sc_start_sidecar NAME ID [ARGS]: a sidecar
# with its state in $E2E_DIR/state-NAME, admin on a free port recorded in ADMIN_<NAME>.
# sc_web_api_up [MESHD ARGS]: the two-workload mesh (web calls api) up and checked.
# sc_get HOSTHDR PORT PATH: HTTP status of a request through an outbound listener.

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
    ca_init "$TD" || return 1
    sc_port MESHD_PORT
}

# sc_token ID FILE: registers ID (or mints a new token if registered) into FILE.
sc_token() {
    local id=$1 file=$2 out
    out=$("$M" --output json workload add "$id" 2>/dev/null) ||
        out=$("$M" --output json workload token "$id") || return 1
    printf '%s\n' "$out" | jq -r '.token | select(startswith("mjt_"))' >"$file"
    [ -s "$file" ]
}

sc_start_meshd() {
    start_meshd meshd "$@"
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
        curl -s -m 5 -H "Host: $1" "http://127.0.0.1:$2/" | jq -r '.app // empty' 2>/dev/null
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

# sc_web_api_up [MESHD ARGS...]: the two-sidecar mesh most sidecar tests start from:
# web ($WEB, outbound listener on P_WEB_OUT) may call api ($API, a mesh-testapp on
# P_API_APP); applies it, starts the app, meshd (with ARGS) and both sidecars (as
# instances web-1 and api-1), and checks that each is up (after sc_mesh_init; join
# tokens in web.token and api.token). Variations, set before the call:
#   SC_ROUTES="..."      a routes: block (YAML, top level) for the mesh
#   SC_AUTHZ_EXTRA="..." more authorization entries (YAML list items)
#   SC_WEB_APP=1         also start web's own mesh-testapp on P_WEB_APP
#   SC_WEB_ARGS="..."    more mesh-sidecar flags for web (split on spaces)
#   SC_API_ARGS="..."    the same for api
sc_web_api_up() {
    sc_token "$WEB" "$E2E_DIR/web.token"
    sc_token "$API" "$E2E_DIR/api.token"
    sc_port P_WEB_IN; sc_port P_WEB_OUT; sc_port P_WEB_APP; sc_port P_API_IN; sc_port P_API_APP
    cat >"$E2E_DIR/mesh.yaml" <<YAML
services:
  - {name: web, protocol: http, port: $P_WEB_APP}
  - {name: api, protocol: http, port: $P_API_APP}
workloads:
  - {name: web-1, spiffe_id: "$WEB", service: web, inbound: "127.0.0.1:$P_WEB_IN",
     app: "127.0.0.1:$P_WEB_APP", outbound: "127.0.0.1:$P_WEB_OUT"}
  - {name: api-1, spiffe_id: "$API", service: api, inbound: "127.0.0.1:$P_API_IN",
     app: "127.0.0.1:$P_API_APP"}
${SC_ROUTES:-}
authorization:
  - {service: api, allow: ["$WEB"]}
${SC_AUTHZ_EXTRA:-}
YAML
    check "apply the mesh" "$M" apply -f "$E2E_DIR/mesh.yaml"
    start app-api "$MESH_BIN/mesh-testapp" --listen "127.0.0.1:$P_API_APP" --name api
    check "test app is up" wait_port "$P_API_APP" 10
    if [ "${SC_WEB_APP:-0}" = 1 ]; then
        start app-web "$MESH_BIN/mesh-testapp" --listen "127.0.0.1:$P_WEB_APP" --name web
    fi
    sc_start_meshd "$@"
    check "meshd is up" wait_port "$MESHD_PORT" 10
    # shellcheck disable=SC2086 # SC_WEB_ARGS is a list of flags
    sc_start_sidecar web "$WEB" --workload web-1 ${SC_WEB_ARGS:-}
    # shellcheck disable=SC2086
    sc_start_sidecar api "$API" --workload api-1 ${SC_API_ARGS:-}
    check "sidecar web becomes ready" wait_for 20 sc_ready web
    check "sidecar api becomes ready" wait_for 20 sc_ready api
    check "outbound listener is up" wait_port "$P_WEB_OUT" 10
}
