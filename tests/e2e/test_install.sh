#!/usr/bin/env bash
# tests/e2e/test_install.sh — `make install PREFIX=...` into a temp prefix: the
# binaries, man pages generated from --help (help2man), bash completion that
# completes commands and flags from the installed meshctl, and systemd units
# that `systemd-analyze verify` accepts without a warning.
. "$(dirname "$0")/lib.sh"
e2e_setup
BUILD_DIR=$(dirname "$MESH_BIN")
P="$D/prefix"

echo "install: into a temp prefix"
# -o: never rebuild a binary here (this may be an ASan build); install what is built.
out=$(make -C "$REPO" --no-print-directory install BUILD="$BUILD_DIR" PREFIX="$P" \
    -o "$BUILD_DIR/gen/mesh_build.h" -o "$BUILD_DIR/bin/meshd" -o "$BUILD_DIR/bin/meshctl" \
    -o "$BUILD_DIR/bin/mesh-sidecar" 2>&1)
check "make install succeeds" test $? -eq 0
for b in meshd mesh-sidecar meshctl; do
    check "bin/$b is installed and executable" test -x "$P/bin/$b"
    check_out "installed $b answers --version" "$b 0." "$P/bin/$b" --version
    man="$P/share/man/man1/$b.1"
    check "man page $b.1 is installed" test -s "$man"
    check "$b.1 is a man page (.TH) naming the binary" grep -q "^\.TH $(echo "$b" | tr a-z A-Z) \"1\"" "$man"
done
check "meshd.1 documents --listen" grep -q 'listen' "$P/share/man/man1/meshd.1"
check "meshctl.1 documents validate" grep -q 'validate' "$P/share/man/man1/meshctl.1"
check "mesh-sidecar.1 documents --token-file" grep -q 'token\\-file' "$P/share/man/man1/mesh-sidecar.1"
if command -v groff >/dev/null 2>&1; then
    check "meshctl.1 renders" bash -c "groff -man -Tutf8 '$P/share/man/man1/meshctl.1' 2>&1 >/dev/null | (! grep -q .)"
fi
check "no file is left writable by others" bash -c "! find '$P' -perm -o+w -type f | grep -q ."

echo "install: bash completion"
comp="$P/share/bash-completion/completions/meshctl"
check "completion is installed" test -s "$comp"
# complete WORDS...: what _meshctl offers for the last word.
complete_words() {
    PATH="$P/bin:$PATH" bash -c '. "$0"; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _meshctl;
        printf "%s\n" "${COMPREPLY[@]}"' "$comp" "$@"
}
check "commands complete (pro -> proxy-status)" test "$(complete_words meshctl pro)" = proxy-status
check_out "val completes to validate" "validate" complete_words meshctl val
check_out "a command's flags complete (apply --dr)" "--dry-run" complete_words meshctl apply --dr
check_out "global flags complete (--ou)" "--output" complete_words meshctl --ou
check_out "--output values complete" "json" complete_words meshctl --output j

echo "install: systemd units"
units="$P/lib/systemd/system"
for u in meshd.service mesh-sidecar@.service; do
    check "$u is installed" test -s "$units/$u"
    check "$u runs the installed binary" grep -q "ExecStart=$P/bin/" "$units/$u"
    vout=$(systemd-analyze verify --man=no "$units/$u" 2>&1)
    vrc=$?
    check "systemd-analyze verify accepts $u" test "$vrc" -eq 0
    check "systemd-analyze verify has no warning for $u" test -z "$vout"
    [ -n "$vout" ] && echo "       $vout"
    check "$u is sandboxed (ProtectSystem=strict, NoNewPrivileges)" \
        bash -c "grep -q '^ProtectSystem=strict' '$units/$u' && grep -q '^NoNewPrivileges=yes' '$units/$u'"
    # Exposure below 2.0 on systemd's own 0-10 scale ("OK").
    level=$(systemd-analyze security --offline=true "$units/$u" 2>/dev/null |
        sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
    check "$u exposure level is low ($level)" awk -v l="${level:-10}" 'BEGIN { exit !(l < 2.0) }'
done
check "sidecar token comes from a credential, not the command line" \
    grep -q '^LoadCredential=token:' "$units/mesh-sidecar@.service"
check "sysusers file names both users" \
    bash -c "grep -q '^u meshd ' '$P/lib/sysusers.d/meshd.conf' && grep -q '^u mesh-sidecar ' '$P/lib/sysusers.d/meshd.conf'"
e2e_finish
