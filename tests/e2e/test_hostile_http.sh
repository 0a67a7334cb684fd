#!/usr/bin/env bash
# tests/e2e/test_hostile_http.sh — hostile HTTP/1.1 clients and upstreams against real
# sidecars on 127.0.0.1 (app -> web's outbound -> mTLS -> api's inbound -> mesh-testapp):
# raw requests over bash's /dev/tcp that RFC 9112 says to refuse (whitespace before the
# colon forging XFCC, 'Transfer-Encoding :' smuggling a second request, obs-fold, bare
# LF, HTTP/9.9, two Host headers, an unknown transfer coding), look-alike spellings of
# the mesh's own headers, the header limit across both hops (431 at the first sidecar),
# a slow head (408), the keep-alive idle timeout, and upstream responses that break the
# rules (502). The app must never see a forged identity.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sidecar_lib.sh"
e2e_setup
D="$E2E_DIR"

WEB=spiffe://$TD/ns/default/sa/web
API=spiffe://$TD/ns/default/sa/api

echo "hostile: setup"
sc_mesh_init || { fail "CA init"; e2e_finish; exit 1; }
SC_ROUTES='routes:
  - name: api
    hosts: [api]
    rules:
      - match: {prefix: /}
        destinations: [{service: api}]' \
SC_WEB_ARGS="--request-headers-timeout 1s --idle-timeout 2s" sc_web_api_up
check_out "a normal request goes through" '"app":"api"' sc_body api "$P_WEB_OUT" /hello

# raw REQUEST: sends printf-style bytes to web's outbound listener and prints everything
# that comes back until the sidecar closes (at most 5 s).
raw() {
    timeout 5 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
                       printf "$2" >&3
                       cat <&3' _ "$P_WEB_OUT" "$1" 2>/dev/null
}
# lacks TEXT STRING...: none of the strings is in TEXT.
lacks() {
    local text=$1 p
    shift
    for p in "$@"; do
        if printf '%s' "$text" | grep -qF -- "$p"; then
            echo "found '$p' in: $text"
            return 1
        fi
    done
}
# Requests the api sidecar's inbound listener has answered so far.
inbound_count() {
    sc_admin api /stats | awk '/^mesh_sidecar_http_requests_total\{direction="inbound"/ {s += $2}
                              END {print s + 0}'
}

echo "hostile: RFC 9112 on requests (400/501/505, the reason, a close)"
before=$(inbound_count)
out=$(raw 'GET /headers HTTP/1.1\r\nHost: api\r\nX-Forwarded-Client-Cert : By=x;URI=spiffe://example.org/ns/default/sa/admin\r\n\r\n')
check_out "whitespace before the colon (forged XFCC) is 400" "HTTP/1.1 400 " printf '%s' "$out"
check_out "and the body says why" "whitespace in header field name 'X-Forwarded-Client-Cert '" \
    printf '%s' "$out"
check_out "and the connection is closed" "connection: close" printf '%s' "$out"
out=$(raw 'POST / HTTP/1.1\r\nHost: api\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: api\r\n\r\n')
check_out "'Transfer-Encoding :' is 400" "HTTP/1.1 400 " printf '%s' "$out"
check "and the request behind it is never answered" \
    test "$(printf '%s' "$out" | grep -c '^HTTP/1.1 ')" -eq 1
check_out "obs-fold is 400" "obsolete line folding" \
    raw 'GET / HTTP/1.1\r\nHost: api\r\nX-A: one\r\n two\r\n\r\n'
check_out "bare LF line ends are 400" "bare LF" raw 'GET / HTTP/1.1\nHost: api\n\n'
check_out "HTTP/9.9 is 505" "HTTP/1.1 505 " raw 'GET / HTTP/9.9\r\nHost: api\r\n\r\n'
check_out "two Host headers are 400" "more than one Host header" \
    raw 'GET / HTTP/1.1\r\nHost: api\r\nHost: evil\r\n\r\n'
check_out "a transfer coding other than chunked is 501" "HTTP/1.1 501 " \
    raw 'POST / HTTP/1.1\r\nHost: api\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n'
check_out "Transfer-Encoding in HTTP/1.0 is 400" "HTTP/1.1 400 " \
    raw 'POST / HTTP/1.0\r\nHost: api\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'
check_out "an absolute-form target is 400" "not a forward proxy" \
    raw 'GET http://evil/ HTTP/1.1\r\nHost: api\r\n\r\n'
check_out "a field name that begins with Transfer-Encoding is 400" "begins with Transfer-Encoding" \
    raw 'GET /ws HTTP/1.1\r\nHost: api\r\nConnection: Upgrade\r\nUpgrade: x\r\nTransfer-EncodingX: chunked\r\n\r\n'
check "none of them reached the inbound sidecar" test "$(inbound_count)" -eq "$before"

echo "hostile: the mesh's own headers in any spelling"
body=$(curl -s -m 5 -H "Host: api" -H "x_forwarded_client_cert: By=x;URI=spiffe://$TD/ns/default/sa/admin" \
    -H "X-FORWARDED-CLIENT-CERT: By=x;URI=forged" "http://127.0.0.1:$P_WEB_OUT/headers")
check_out "the app sees the real caller" "\"xfcc\":\"By=$API;URI=$WEB\"" printf '%s' "$body"
check "the app never sees a forged XFCC" lacks "$body" forged sa/admin
check "exactly one XFCC line reaches the app" \
    test "$(printf '%s' "$body" | grep -o -i 'x.forwarded.client.cert' | wc -l)" -eq 1
body=$(curl -s -m 5 -H "Host: api" -H "X-Request-Id: one" -H "x_request_id: two" \
    "http://127.0.0.1:$P_WEB_OUT/headers")
check "two request ids: the sidecar states its own" lacks "$body" '"one"' '"two"'
check_out "and exactly one" 1 sh -c "printf '%s' '$body' | grep -o '\"x-request-id\"' | wc -l"

echo "hostile: one header limit on both hops"
hdrs() { local i; for i in $(seq 1 "$1"); do printf -- '-H\0x-f%d: v\0' "$i"; done; }
# many N: a request with Host and N more fields (curl's own User-Agent and Accept left out).
many() { hdrs "$1" | xargs -0 curl -s -m 5 -o "$D/many.out" -w '%{http_code}' -H "Host: api" \
    -H "User-Agent:" -H "Accept:" "http://127.0.0.1:$P_WEB_OUT/headers"; }
check_out "124 extra fields (125 with Host) reach the app" 200 many 124
check_out "126 extra fields (127 with Host): 431 at the first sidecar" 431 many 126
check_out "the 431 names the limit" "the limit is 128 per hop" cat "$D/many.out"

echo "hostile: slow heads and idle connections (web: --request-headers-timeout 1s --idle-timeout 2s)"
t0=$(date +%s%N)
out=$(timeout 8 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
                         printf "GET / HTTP/1.1\r\nHost: ap" >&3
                         cat <&3' _ "$P_WEB_OUT")
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
check_out "a head that never completes gets 408" "HTTP/1.1 408 " printf '%s' "$out"
check "after about 1 s (${ms} ms)" test "$ms" -ge 900 -a "$ms" -lt 5000
t0=$(date +%s%N)
out=$(timeout 8 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
                         (for c in G E T " " / " " H T T P / 1 . 1; do printf "%s" "$c"; sleep 0.2; done) >&3 &
                         cat <&3' _ "$P_WEB_OUT")
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
check_out "a head trickled a byte at a time still gets 408" "HTTP/1.1 408 " printf '%s' "$out"
check "after about 1 s although bytes kept coming (${ms} ms)" test "$ms" -lt 3000
t0=$(date +%s%N)
out=$(timeout 8 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
                         printf "GET /hello HTTP/1.1\r\nHost: api\r\n\r\n" >&3
                         cat <&3' _ "$P_WEB_OUT")
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
check_out "a keep-alive request is answered" "HTTP/1.1 200 " printf '%s' "$out"
check "then the idle connection is closed after about 2 s (${ms} ms)" \
    test "$ms" -ge 1800 -a "$ms" -lt 6000

echo "hostile: upstream responses that break the rules are 502"
for kind in dup-length length-and-chunked space-before-colon obs-fold bare-lf http-9.9 gzip; do
    check_out "upstream $kind: 502" 502 sc_get api "$P_WEB_OUT" "/bad-response/$kind"
done
check_out "and the body says the upstream sent a malformed response" \
    "sent a malformed HTTP response" sc_body api "$P_WEB_OUT" /bad-response/dup-length
check_out "the sidecars still serve" '"app":"api"' sc_body api "$P_WEB_OUT" /hello

e2e_finish
