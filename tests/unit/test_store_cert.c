/* tests/unit/test_store_cert.c — issued-certificate records: insert/get,
 * listing filters and order, latest, revocation, live counts per CA, and
 * durability of an insert across a SIGKILL. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/store.h"
#include "tests/unit/test_store_util.h"

static tstore_env env;

static void setup(void) { tstore_setup_any(&env, 1); }
static void teardown(void) { tstore_teardown(&env); }

static void insert_cert(unsigned serial, const char *id, int64_t ca, int64_t issued,
                        int64_t not_after)
{
    store_cert c;
    char buf[41];
    mesh_err err = {0};
    tstore_cert_init(&c, buf, serial, id, ca, issued, not_after);
    cr_assert_eq(store_cert_insert(env.st, &c, &err), MESH_OK, "%s", err.msg);
}

static const char *serial_of(unsigned n, char buf[41])
{
    snprintf(buf, 41, "%032x", n);
    return buf;
}

Test(store_cert, insert_get_roundtrip, .init = setup, .fini = teardown)
{
    mesh_err err = {0};
    int64_t ca = tstore_add_ca(env.st, "active", "01");
    store_cert c;
    char serial[41];
    tstore_cert_init(&c, serial, 0xbeef, TSTORE_ID_WEB, ca, 5000, 5000 + 86400);
    cr_assert_eq(store_cert_insert(env.st, &c, &err), MESH_OK, "%s", err.msg);

    store_cert got;
    cr_assert_eq(store_cert_get(env.st, serial, &got, &err), MESH_OK, "%s", err.msg);
    cr_assert_str_eq(got.serial_hex, serial);
    cr_assert_str_eq(got.spiffe_id, TSTORE_ID_WEB);
    cr_assert_str_eq(got.pubkey_sha256, c.pubkey_sha256);
    cr_assert_str_eq(got.cert_pem, c.cert_pem);
    cr_assert_eq(got.not_before, 4990);
    cr_assert_eq(got.not_after, 5000 + 86400);
    cr_assert_eq(got.issued_at, 5000);
    cr_assert_eq(got.ca_id, ca);
    cr_assert_eq(got.revoked, 0);
    cr_assert_eq(got.revoked_at, 0);
    cr_assert_str_eq(got.revoke_reason, "");
    store_cert_free(&got);

    cr_assert_eq(store_cert_insert(env.st, &c, &err), MESH_EEXISTS);
    cr_assert_not_null(strstr(err.msg, serial), "%s", err.msg);
    cr_assert_eq(store_cert_get(env.st, "ffff", &got, &err), MESH_ENOTFOUND);
    cr_assert_not_null(strstr(err.msg, "ffff"), "%s", err.msg);
}

Test(store_cert, insert_rejects_bad_rows, .init = setup, .fini = teardown)
{
    mesh_err err = {0};
    int64_t ca = tstore_add_ca(env.st, "active", "01");
    store_cert good, c;
    char serial[41];
    tstore_cert_init(&good, serial, 1, TSTORE_ID_WEB, ca, 5000, 9000);

    c = good;
    c.ca_id = ca + 7;   /* no such CA: the foreign key catches it */
    cr_assert_eq(store_cert_insert(env.st, &c, &err), MESH_EINVAL);
    cr_assert_not_null(strstr(err.msg, "does not exist"), "%s", err.msg);
    c = good;
    c.serial_hex = "0xBEEF";
    cr_assert_eq(store_cert_insert(env.st, &c, &err), MESH_EINVAL);
    c = good;
    c.serial_hex = "00112233445566778899aabbccddeeff0011223344";   /* > 20 bytes */
    cr_assert_eq(store_cert_insert(env.st, &c, &err), MESH_EINVAL);
    c = good;
    c.spiffe_id = "web";
    cr_assert_eq(store_cert_insert(env.st, &c, &err), MESH_EINVAL);
    c = good;
    c.pubkey_sha256 = "abcd";
    cr_assert_eq(store_cert_insert(env.st, &c, &err), MESH_EINVAL);
    c = good;
    c.cert_pem = NULL;
    cr_assert_eq(store_cert_insert(env.st, &c, &err), MESH_EINVAL);
    c = good;
    c.not_after = c.not_before - 1;
    cr_assert_eq(store_cert_insert(env.st, &c, &err), MESH_EINVAL);
    cr_assert_eq(store_cert_insert(env.st, NULL, &err), MESH_EINVAL);

    store_cert *list = NULL;
    size_t n = 9;
    cr_assert_eq(store_cert_list(env.st, NULL, 1, 0, &list, &n, &err), MESH_OK);
    cr_assert_eq(n, 0, "a rejected cert was stored");
    free(list);
}

Test(store_cert, list_filters_and_order, .init = setup, .fini = teardown)
{
    mesh_err err = {0};
    int64_t ca = tstore_add_ca(env.st, "active", "01");
    int64_t now = 100000;
    insert_cert(1, TSTORE_ID_WEB, ca, now - 5000, now - 1);      /* expired */
    insert_cert(2, TSTORE_ID_WEB, ca, now - 100, now + 1000);
    insert_cert(3, TSTORE_ID_DB, ca, now - 50, now + 1000);
    insert_cert(4, TSTORE_ID_WEB, ca, now - 10, now);           /* expires exactly now: live */
    insert_cert(5, TSTORE_ID_WEB, ca, now - 10, now + 5);       /* same issued_at as 4 */

    store_cert *list = NULL;
    size_t n = 0;
    char b[41];
    cr_assert_eq(store_cert_list(env.st, NULL, 1, now, &list, &n, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(n, 5);
    /* issued_at descending; ties newest-inserted first. */
    cr_assert_str_eq(list[0].serial_hex, serial_of(5, b));
    cr_assert_str_eq(list[1].serial_hex, serial_of(4, b));
    cr_assert_str_eq(list[2].serial_hex, serial_of(3, b));
    cr_assert_str_eq(list[3].serial_hex, serial_of(2, b));
    cr_assert_str_eq(list[4].serial_hex, serial_of(1, b));
    store_cert_free_list(list, n);

    cr_assert_eq(store_cert_list(env.st, NULL, 0, now, &list, &n, &err), MESH_OK);
    cr_assert_eq(n, 4, "expired cert not hidden");
    for (size_t i = 0; i < n; i++)
        cr_assert_geq(list[i].not_after, now);
    store_cert_free_list(list, n);

    cr_assert_eq(store_cert_list(env.st, TSTORE_ID_WEB, 0, now, &list, &n, &err), MESH_OK);
    cr_assert_eq(n, 3);
    for (size_t i = 0; i < n; i++)
        cr_assert_str_eq(list[i].spiffe_id, TSTORE_ID_WEB);
    store_cert_free_list(list, n);

    cr_assert_eq(store_cert_list(env.st, TSTORE_ID_WEB, 1, now, &list, &n, &err), MESH_OK);
    cr_assert_eq(n, 4);
    store_cert_free_list(list, n);

    cr_assert_eq(store_cert_list(env.st, "spiffe://example.org/ns/none/sa/x", 1, now, &list, &n,
                                 &err),
                 MESH_OK);
    cr_assert_eq(n, 0);
    free(list);
}

Test(store_cert, latest_skips_revoked, .init = setup, .fini = teardown)
{
    mesh_err err = {0};
    int64_t ca = tstore_add_ca(env.st, "active", "01");
    store_cert got;
    char b[41];
    cr_assert_eq(store_cert_latest(env.st, TSTORE_ID_WEB, &got, &err), MESH_ENOTFOUND);
    insert_cert(1, TSTORE_ID_WEB, ca, 1000, 2000);
    insert_cert(2, TSTORE_ID_WEB, ca, 3000, 4000);
    insert_cert(3, TSTORE_ID_DB, ca, 5000, 6000);
    cr_assert_eq(store_cert_latest(env.st, TSTORE_ID_WEB, &got, &err), MESH_OK, "%s", err.msg);
    cr_assert_str_eq(got.serial_hex, serial_of(2, b));
    store_cert_free(&got);

    cr_assert_eq(store_cert_revoke(env.st, serial_of(2, b), "key compromise", 3500, &err),
                 MESH_OK, "%s", err.msg);
    /* Latest unrevoked is the older one, even though it is expired. */
    cr_assert_eq(store_cert_latest(env.st, TSTORE_ID_WEB, &got, &err), MESH_OK);
    cr_assert_str_eq(got.serial_hex, serial_of(1, b));
    store_cert_free(&got);

    cr_assert_eq(store_cert_revoke(env.st, serial_of(1, b), NULL, 3600, &err), MESH_OK);
    cr_assert_eq(store_cert_latest(env.st, TSTORE_ID_WEB, &got, &err), MESH_ENOTFOUND);
    cr_assert_not_null(strstr(err.msg, TSTORE_ID_WEB), "%s", err.msg);
}

Test(store_cert, revoke_once, .init = setup, .fini = teardown)
{
    mesh_err err = {0};
    int64_t ca = tstore_add_ca(env.st, "active", "01");
    char b[41];
    insert_cert(1, TSTORE_ID_WEB, ca, 1000, 2000);
    cr_assert_eq(store_cert_revoke(env.st, serial_of(1, b), "decommissioned", 1500, &err),
                 MESH_OK, "%s", err.msg);
    store_cert got;
    cr_assert_eq(store_cert_get(env.st, b, &got, &err), MESH_OK);
    cr_assert_eq(got.revoked, 1);
    cr_assert_eq(got.revoked_at, 1500);
    cr_assert_str_eq(got.revoke_reason, "decommissioned");
    store_cert_free(&got);

    cr_assert_eq(store_cert_revoke(env.st, b, "again", 1600, &err), MESH_EEXISTS);
    cr_assert_not_null(strstr(err.msg, "already revoked"), "%s", err.msg);
    cr_assert_not_null(strstr(err.msg, "decommissioned"), "%s", err.msg);
    /* The first revocation's record is kept. */
    cr_assert_eq(store_cert_get(env.st, b, &got, &err), MESH_OK);
    cr_assert_eq(got.revoked_at, 1500);
    cr_assert_str_eq(got.revoke_reason, "decommissioned");
    store_cert_free(&got);

    cr_assert_eq(store_cert_revoke(env.st, serial_of(99, b), "x", 1600, &err), MESH_ENOTFOUND);
    cr_assert_eq(store_cert_revoke(env.st, NULL, "x", 1600, &err), MESH_EINVAL);
}

Test(store_cert, count_live_for_ca, .init = setup, .fini = teardown)
{
    mesh_err err = {0};
    int64_t old_ca = tstore_add_ca(env.st, "retired", "01");
    int64_t new_ca = tstore_add_ca(env.st, "active", "02");
    insert_cert(1, TSTORE_ID_WEB, old_ca, 1000, 2000);
    insert_cert(2, TSTORE_ID_DB, old_ca, 1000, 3000);
    insert_cert(3, TSTORE_ID_WEB, new_ca, 2500, 9000);
    int64_t count = -1;
    cr_assert_eq(store_cert_count_live_for_ca(env.st, old_ca, 1500, &count, &err), MESH_OK);
    cr_assert_eq(count, 2);
    cr_assert_eq(store_cert_count_live_for_ca(env.st, old_ca, 2500, &count, &err), MESH_OK);
    cr_assert_eq(count, 1);
    cr_assert_eq(store_cert_count_live_for_ca(env.st, old_ca, 3001, &count, &err), MESH_OK);
    cr_assert_eq(count, 0);
    cr_assert_eq(store_cert_count_live_for_ca(env.st, new_ca, 3001, &count, &err), MESH_OK);
    cr_assert_eq(count, 1);
    cr_assert_eq(store_cert_count_live_for_ca(env.st, 12345, 0, &count, &err), MESH_OK);
    cr_assert_eq(count, 0);
}

/* The contract meshd relies on: once store_cert_insert returned, the record
 * survives the process dying on the spot. */
Test(store_durability, insert_survives_sigkill, .init = setup, .fini = teardown)
{
    int64_t ca = tstore_add_ca(env.st, "active", "01");
    store_close(env.st);
    env.st = NULL;
    char serial[41];
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        mesh_store *st = NULL;
        store_cert c;
        tstore_cert_init(&c, serial, 0xd00d, TSTORE_ID_WEB, ca, 1000, 90000);
        if (store_open(&st, env.path, NULL) != MESH_OK || store_cert_insert(st, &c, NULL) != MESH_OK)
            _exit(1);
        kill(getpid(), SIGKILL);   /* no close, no checkpoint, no atexit */
        _exit(2);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
              "child failed before the kill (status %d)", status);

    mesh_err err = {0};
    cr_assert_eq(store_open(&env.st, env.path, &err), MESH_OK, "%s", err.msg);
    store_cert got;
    cr_assert_eq(store_cert_get(env.st, serial_of(0xd00d, serial), &got, &err), MESH_OK, "%s",
                 err.msg);
    cr_assert_str_eq(got.spiffe_id, TSTORE_ID_WEB);
    store_cert_free(&got);
}
