#!/usr/bin/env bash
# bench/bench_issue.sh — SVID issuance rate against the `openssl speed` ceiling.
#
# Builds bench/bench_issue.c against $BUILD/libmesh.a (bench/Makefile), measures
# the reference in the same run (`openssl speed -seconds 3 ecdsap256`, one core),
# then runs bench_issue: N pre-made EC P-256 CSRs through ca_issue_svid (CSR
# check + sign + durable SQLite commit + audit), 1 and 2 threads, store on the
# build disk and on /dev/shm (tmpfs: what durability costs), plus the raw
# fdatasync rate of the disk; in full runs also a callgrind profile of where an
# issuance's CPU goes. Writes its JSON to $BENCH_JSON.
#   N = 5000 (BENCH_QUICK=1: 500); BENCH_ISSUE_N overrides.
. "$(dirname "$0")/lib.sh"
bench_setup issue
ROOT=$(cd "$(dirname "$0")/.." && pwd)

command -v openssl >/dev/null || bench_skip "openssl (the reference) is not installed"
if [ "$BENCH_QUICK" = 1 ]; then N=${BENCH_ISSUE_N:-500}; SPEED_S=1; else N=${BENCH_ISSUE_N:-5000}; SPEED_S=3; fi

bench_info "building bench_issue against $BENCH_BUILD/libmesh.a"
make -s -C "$ROOT" -f bench/Makefile BUILD="$BENCH_BUILD" "$BENCH_PROGS/bench_issue" >&2 ||
    bench_skip "bench_issue does not build (see the compiler output above)"

bench_info "reference: openssl speed -seconds $SPEED_S ecdsap256 (one core)"
# -mr: machine-readable; "+F4:<idx>:<bits>:<sign/s>:<verify/s>" is the ECDSA result line.
speed=$(openssl speed -mr -seconds "$SPEED_S" ecdsap256 2>/dev/null | awk -F: '$1 == "+F4" && $3 == 256 {print $4, $5}')
read -r SIGN VERIFY <<<"$speed"
[ -n "${SIGN:-}" ] && [ -n "${VERIFY:-}" ] || bench_skip "could not parse 'openssl speed -mr ecdsap256' output"

mkdir -p "$BW/disk"
TMPFS_ARGS=()
if [ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ]; then
    SHM=$(mktemp -d /dev/shm/meshd-bench-XXXXXX)
    trap 'rm -rf "$SHM"; bench_cleanup' EXIT
    TMPFS_ARGS=(--tmpfs-dir "$SHM")
else
    bench_info "/dev/shm is not tmpfs: no durability split"
fi

bench_info "issuing $N SVIDs per phase"
"$BENCH_PROGS/bench_issue" --disk-dir "$BW/disk" "${TMPFS_ARGS[@]}" --n "$N" --threads 2 \
    --ref-sign "$SIGN" --ref-verify "$VERIFY" --json "$BW/issue.json" || exit 1

# Where the CPU of one issuance goes, by instruction count inside ca_issue_svid
# (callgrind; not timed, ~10 s). Default on in full runs when valgrind is there.
PROFILE=${BENCH_ISSUE_PROFILE:-$([ "$BENCH_QUICK" = 1 ] && echo 0 || echo 1)}
if [ "$PROFILE" = 1 ] && command -v valgrind >/dev/null && command -v callgrind_annotate >/dev/null; then
    bench_info "profile: 200 issuances under callgrind (instructions inside ca_issue_svid)"
    mkdir -p "$BW/profile"
    if valgrind --tool=callgrind --toggle-collect=ca_issue_svid --callgrind-out-file="$BW/callgrind.out" \
        "$BENCH_PROGS/bench_issue" --disk-dir "$BW/profile" --n 200 --profile >/dev/null 2>"$BW/callgrind.log"; then
        callgrind_annotate --inclusive=yes --threshold=100 "$BW/callgrind.out" >"$BW/callgrind.txt" 2>/dev/null
        # share FUNCTION: its inclusive % of everything collected (0 if absent).
        share() { grep -m1 -E "[?:]$1( |\[|$)" "$BW/callgrind.txt" | sed -n 's/.*( *\([0-9.]*\)%).*/\1/p' | grep . || echo 0; }
        verify=$(share ECDSA_do_verify); sign=$(share ECDSA_do_sign_ex)
        dec=$(share OSSL_DECODER_CTX_new_for_pkey); enc=$(share OSSL_ENCODER_CTX_new_for_pkey)
        db=$(awk -v a="$(share store_begin)" -v b="$(share store_cert_insert)" -v c="$(share store_audit)" \
            -v d="$(share store_commit)" 'BEGIN {printf "%.2f", a + b + c + d}')
        other=$(awk -v a="$verify" -v b="$sign" -v c="$dec" -v d="$enc" -v e="$db" 'BEGIN {printf "%.2f", 100 - a - b - c - d - e}')
        printf 'CPU of one issuance by instructions (callgrind, inside ca_issue_svid): ECDSA verify %s%%, ECDSA sign %s%%,\n' "$verify" "$sign"
        printf '  OpenSSL 3 key decoder/encoder set-up (PEM CSR parse, X509_set_pubkey, SPKI hash) %s%%, SQLite store calls %s%%, other %s%%\n' \
            "$(awk -v a="$dec" -v b="$enc" 'BEGIN {printf "%.2f", a + b}')" "$db" "$other"
        prof="\"profile_ir_share_pct\": {\"ecdsa_verify\": $verify, \"ecdsa_sign\": $sign, \"ossl_decoder_setup\": $dec, \"ossl_encoder_setup\": $enc, \"store\": $db, \"other\": $other}"
        # Splice it in as the last member of the object bench_issue wrote.
        sed -i '$ d' "$BW/issue.json"
        printf '  ,%s\n}\n' "$prof" >>"$BW/issue.json"
    else
        bench_info "profile: callgrind failed (see $BW/callgrind.log); no CPU split"
    fi
fi

if [ -n "${BENCH_JSON:-}" ]; then
    cp "$BW/issue.json" "$BENCH_JSON"
fi
