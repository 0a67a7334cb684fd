#!/usr/bin/env bash
# tests/e2e/test_store_integrity.sh — the store-integrity breaks of issue 12, with
# real files and real processes: a mistyped --db, an index bit flip that only
# integrity_check sees, a zero-length store, a flipped byte in the -wal after 420
# certificates and a kill -9 (SQLite drops every frame after a bad checksum without
# an error), and a full disk under meshd's CreateCertificate. Each one must be
# refused or reported with what to do, never served. (meshd's refusals run under
# `timeout`: a meshd that serves a broken store instead fails the check, not the run.)
. "$(dirname "$0")/lib.sh"
e2e_setup
TD=example.org
ID=spiffe://$TD/ns/demo/sa/web

# flip_byte FILE OFFSET: xor the byte at OFFSET with 1, in place.
flip_byte() {
    local b
    b=$(od -An -tu1 -j "$2" -N 1 "$1" | tr -d ' ')
    printf "$(printf '\\%03o' $((b ^ 1)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
be32() { od -An -tu1 -j "$2" -N 4 "$1" | awk '{ print $1 * 16777216 + $2 * 65536 + $3 * 256 + $4 }'; }
hex_at() { od -An -tx1 -j "$2" -N "$3" "$1" | tr -d ' \n'; }
# wal_frames WAL: "N PAGE_SIZE", N the frames of the WAL's current generation (their
# salts match the header's; later frames are leftovers of an earlier generation).
wal_frames() {
    local wal=$1 page salts size n=0 off=32
    page=$(be32 "$wal" 8)
    salts=$(hex_at "$wal" 16 8)
    size=$(stat -c %s "$wal")
    while [ $((off + 24 + page)) -le "$size" ] && [ "$(hex_at "$wal" $((off + 8)) 8)" = "$salts" ]; do
        n=$((n + 1))
        off=$((off + 24 + page))
    done
    echo "$n $page"
}
# certs_in DB: certificates as SQLite alone sees them (read-only: never checkpoints).
certs_in() { sqlite3 -readonly "$1" "SELECT count(*) FROM certs"; }
# table_serials: the serials of every certificate row, read from the table itself (a
# plain SELECT of serial_hex would scan the serial index, the part that is damaged).
table_serials() { sqlite3 -readonly "$MESHD_DB" "SELECT serial_hex FROM certs NOT INDEXED"; }
# index_misses: some certificate row cannot be found by its serial (SQLite alone).
index_misses() {
    local s
    for s in $(table_serials); do
        [ -n "$(sqlite3 -readonly "$MESHD_DB" "SELECT rowid FROM certs WHERE serial_hex = '$s'")" ] ||
            return 0
    done
    return 1
}
# show_all: `cert show` finds every certificate row, and answers with the serial asked for.
show_all() {
    local s
    for s in $(table_serials); do
        [ "$("$M" cert show "$s" --output json 2>/dev/null | jq -r .serial)" = "$s" ] || return 1
    done
}
# json_true_cmd FILTER CMD...: FILTER (jq) is true of the JSON CMD prints (whatever its status).
json_true_cmd() {
    local filter=$1
    shift
    "$@" 2>/dev/null | json_is "$filter"
}
exit_is() {
    local want=$1
    shift
    "$@" >/dev/null 2>&1
    [ $? -eq "$want" ]
}
csr() {
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$D/k.pem" \
        -subj "/" -addext "subjectAltName=URI:$ID" -out "$D/csr.pem" 2>/dev/null
}
issue() { "$M" cert issue --csr "$D/csr.pem" --id "$ID" --out /dev/null >/dev/null; }
issue_n() {
    local i
    for i in $(seq "$1"); do issue || return 1; done
}

echo "store: a mistyped --db creates nothing"
MESHD_PORT=$(free_port)
check_err "meshctl on a missing store says how a store is made" "meshctl ca init" \
    "$M" --db "$D/typo.db" cert list
check_err "meshd on a missing store refuses" "does not exist" \
    timeout 20 "$MD" --db "$D/typo.db" --listen 127.0.0.1:"$MESHD_PORT"
check "... and neither left a store or a witness behind" \
    test ! -e "$D/typo.db" -a ! -e "$D/typo.db-witness" -a ! -e "$D/typo.db-wal"
check_err "get on a missing store is refused too" "does not exist" \
    "$M" --db "$D/typo.db" get services
check "ca init creates the store, its witness (0600) and the CA" ca_init "$TD"
check "the witness is 0600" test "$(stat -c %a "$MESHD_DB-witness")" = 600
workload_add "$ID" >/dev/null
csr
check "20 certificates issued" issue_n 20
check_out "store check: healthy" "healthy" "$M" store check
check "store check exits 0" exit_is 0 "$M" store check

echo "store: an index bit flip"
cp "$MESHD_DB" "$D/before-flip.db"
PAGE=$(sqlite3 "$MESHD_DB" "SELECT pageno FROM dbstat WHERE name = 'sqlite_autoindex_certs_1' AND pagetype = 'leaf' LIMIT 1")
flip_byte "$MESHD_DB" $(((PAGE - 1) * 4096 + 4000))
check "quick_check alone (the old start-up check) passes the flipped store" \
    test "$(sqlite3 "$MESHD_DB" 'PRAGMA quick_check')" = ok
check "... while a lookup by serial through the index misses a certificate row (the break)" \
    index_misses
check_err "cert list refuses the store instead of listing unfindable serials" \
    "integrity_check" "$M" cert list
check_err "meshd refuses to start on it" "integrity_check" \
    timeout 20 "$MD" --db "$MESHD_DB" --listen 127.0.0.1:"$MESHD_PORT"
check "store check exits 3 (damaged)" exit_is 3 "$M" store check
check_out "store check says only indexes are hit and how to rebuild them" \
    "only indexes are damaged (sqlite_autoindex_certs_1 (certs))" even_if_fails "$M" store check
check_out "... naming the command" "store check --repair" even_if_fails "$M" store check
check_out "store check --repair rebuilds the indexes" "rebuilt" "$M" store check --repair
check "store check exits 0 afterwards" exit_is 0 "$M" store check
check "every certificate row is found by cert show under its own serial" show_all

echo "store: a zero-length store file"
check "a backup while nothing runs" "$M" store backup "$D/b-zero.db"
: >"$MESHD_DB"
rm -f "$MESHD_DB-wal" "$MESHD_DB-shm"
check_err "an emptied store is refused, not taken as new" "is an empty file" "$M" cert list
check_err "... and names the backup to restore" "$D/b-zero.db" "$M" cert list
check_err "ca init does not write a new store over it" "not re-created" \
    "$M" ca init --trust-domain "$TD"
check "... the file stays empty" test ! -s "$MESHD_DB"
check "store check exits 4 (lost)" exit_is 4 "$M" store check
check_out "store restore puts the backup back" "restored" "$M" store restore "$D/b-zero.db"
check "the restored store has its 20 certificates" test "$(certs_in "$MESHD_DB")" -eq 20

echo "store: a flipped byte in the -wal after 420 certificates and kill -9"
start_meshd meshd --instance e2e-store
check "meshd listens" wait_port "$MESHD_PORT" 15
check "100 certificates issued while meshd holds the store" issue_n 100
check_out "an online backup while meshd runs" "integrity_check ok" "$M" store backup "$D/b100.db"
AT_BACKUP=$(certs_in "$D/b100.db")
check "another 320 certificates issued (420)" issue_n 320
BEFORE=$(certs_in "$MESHD_DB")
kill -KILL "$MESHD_PID"
wait "$MESHD_PID" 2>/dev/null
check "the killed meshd left a WAL behind" test -s "$MESHD_DB-wal"
read -r FRAMES PAGESZ <<<"$(wal_frames "$MESHD_DB-wal")"
check "the WAL holds frames of the last commits ($FRAMES)" test "$FRAMES" -gt 2
flip_byte "$MESHD_DB-wal" $((32 + (FRAMES / 2) * (24 + PAGESZ) + 24 + PAGESZ / 2))
mkdir -p "$D/copy"
cp "$MESHD_DB" "$MESHD_DB-wal" "$MESHD_DB-witness" "$D/copy/"
check_err "cert list refuses: the store moved backwards" "moved backwards" "$M" cert list
check_err "... and names the backup to restore" "store restore $D/b100.db" "$M" cert list
check_err "... and the way to accept the loss" "--accept-loss" "$M" cert list
check_err "meshd refuses to start on it" "moved backwards" \
    timeout 20 "$MD" --db "$MESHD_DB" --listen 127.0.0.1:"$MESHD_PORT"
AFTER=$(certs_in "$MESHD_DB")
check "SQLite alone sees $AFTER of $BEFORE certificates, without an error (the silent loss)" \
    test "$AFTER" -lt "$BEFORE"
check "store check exits 4 (moved backwards)" exit_is 4 "$M" store check
"$M" store check --output json >"$D/check.json" 2>/dev/null
check "store check --output json: rolled-back, counter below the witness" \
    json_true "$D/check.json" '.health == "rolled-back" and .seq < .witness.seq and .problems == [] and .exit_code == 4'
check_out "store restore of the backup" "restored" "$M" store restore "$D/b100.db"
check "the restored store holds what the backup held ($AT_BACKUP)" \
    test "$(certs_in "$MESHD_DB")" -eq "$AT_BACKUP"
check "the replaced store was kept beside it" test -n "$(ls "$MESHD_DB".replaced-* 2>/dev/null)"
start_meshd meshd2 --instance e2e-store
check "meshd starts on the restored store" wait_port "$MESHD_PORT" 15
check "and issues again" issue
kill -TERM "$MESHD_PID"
wait "$MESHD_PID" 2>/dev/null
check "meshd's stop (SIGTERM) recorded a clean close in the witness" \
    json_true_cmd '.witness.clean_close == true' "$M" store check --output json
# The copy of the broken state: keep it as it is, deliberately.
CM=("$M" --db "$D/copy/meshd.db")
check_err "the copy is refused as well" "moved backwards" "${CM[@]}" cert list
check_out "store check --accept-loss keeps it as it is" "loss was accepted" \
    "${CM[@]}" store check --accept-loss
check "after which it opens" "${CM[@]}" cert list
check_out "and the decision is in its audit log" "store.loss_accepted" "${CM[@]}" audit

echo "store: the CA key files witness a lost store"
mkdir -p "$D/lost"
LM=("$M" --db "$D/lost/meshd.db")
"${LM[@]}" ca init --trust-domain "$TD" >/dev/null
rm -f "$D/lost/meshd.db" "$D/lost/meshd.db-witness" # the store and its witness both gone
check_err "ca init refuses: the key directory holds a lost CA's key" "already holds a CA key" \
    "${LM[@]}" ca init --trust-domain "$TD"
check "... and leaves no empty store behind" test ! -e "$D/lost/meshd.db"
check "a separate CA with its own --key-dir is created" \
    "${LM[@]}" ca init --trust-domain "$TD" --key-dir "$D/lost/other-keys"

echo "store: a lost store given up deliberately"
mkdir -p "$D/gone"
GM=("$M" --db "$D/gone/meshd.db")
"${GM[@]}" ca init --trust-domain "$TD" >/dev/null
: >"$D/gone/meshd.db"
check_out "store check --accept-loss forgets it and says how to start anew" "--key-dir <new dir>" \
    "${GM[@]}" store check --accept-loss
check_err "ca init beside the lost CA's keys is still refused" "already holds a CA key" \
    "${GM[@]}" ca init --trust-domain "$TD"
check "... and leaves the store file as it was (empty)" \
    test -e "$D/gone/meshd.db" -a ! -s "$D/gone/meshd.db"
check "ca init with a key directory of its own makes the new store" \
    "${GM[@]}" ca init --trust-domain "$TD" --key-dir "$D/gone/new-keys"
check "... which is healthy" exit_is 0 "${GM[@]}" store check

echo "store: a full disk answers UNAVAILABLE"
SMALL=$D/small
mkdir -p "$SMALL"
umount_small() { mountpoint -q "$SMALL" && umount -l "$SMALL"; }
trap 'umount_small; e2e_cleanup' EXIT
if mount -t tmpfs -o size=2m,mode=0700 tmpfs "$SMALL" 2>/dev/null; then
    MESHD_DB=$SMALL/meshd.db
    MESHD_PORT=$(free_port)
    ca_init "$TD"
    TOKEN=$(workload_add "$ID")
    start_meshd meshd-small --instance e2e-small
    check "meshd on a store in a 2 MiB tmpfs listens" wait_port "$MESHD_PORT" 15
    dd if=/dev/zero of="$SMALL/fill" bs=4k status=none 2>/dev/null
    check "the tmpfs is full" test "$(df --output=avail "$SMALL" | tail -n 1 | tr -d ' ')" -eq 0
    check "CreateCertificate on a full disk: UNAVAILABLE" \
        "$XC" "${S[@]}" --token "$TOKEN" --id "$ID" --state-dir "$D/xc" --no-stream \
        --expect-status UNAVAILABLE
    check "meshd said why in its log" grep -q "file system holding the store is full" \
        "$D/meshd-small.log"
    rm -f "$SMALL/fill"
    check "once space is freed, the same join token gets its certificate (no restart)" \
        "$XC" "${S[@]}" --token "$TOKEN" --id "$ID" --state-dir "$D/xc" --no-stream
    kill -TERM "$MESHD_PID"
    wait "$MESHD_PID" 2>/dev/null
    umount_small
else
    missing_dep "a tmpfs can be mounted for the full-disk check (needs root)" \
        "cannot mount a tmpfs here (needs root); full-disk check not run"
fi

e2e_finish
