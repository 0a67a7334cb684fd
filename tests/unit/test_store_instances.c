/* tests/unit/test_store_instances.c — identity per service account in the store
 * (issue 13): registrations and join tokens per instance, many instances of one
 * SPIFFE ID, and the migration of a store from before instances (schema 4), whose
 * identity-wide registrations, tokens and certificates must keep working. */
#include <criterion/criterion.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca/join_token.h"
#include "tests/unit/test_store_util.h"

static tstore_env env;

static void setup(void) { tstore_setup_any(&env, 1); }
static void teardown(void) { tstore_teardown(&env); }

TestSuite(store_instances, .init = setup, .fini = teardown);

Test(store_instances, replicas_share_an_identity)
{
    mesh_err err = {0};
    cr_assert_eq(store_registration_add(env.st, "web-1", TSTORE_ID_WEB, "", "127.0.0.1:1", &err),
                 MESH_OK, "%s", err.msg);
    cr_assert_eq(store_registration_add(env.st, "web-2", TSTORE_ID_WEB, "", "127.0.0.1:2", &err),
                 MESH_OK, "%s: a second instance of one identity", err.msg);
    cr_assert_eq(store_registration_add(env.st, "web-1", TSTORE_ID_DB, "", "", &err), MESH_EEXISTS,
                 "an instance name is unique across identities");
    int64_t n = 0;
    cr_assert_eq(store_registration_count(env.st, TSTORE_ID_WEB, &n, &err), MESH_OK);
    cr_assert_eq(n, 2);
    store_registration r;
    cr_assert_eq(store_registration_get(env.st, "web-2", NULL, &r, &err), MESH_OK, "%s", err.msg);
    cr_assert_str_eq(r.spiffe_id, TSTORE_ID_WEB);
    cr_assert_str_eq(r.address, "127.0.0.1:2");
    store_registration_free(&r);
    cr_assert_eq(store_registration_get(env.st, "web-2", TSTORE_ID_DB, &r, &err), MESH_ENOTFOUND,
                 "an instance of another identity is not found");
    cr_assert_eq(store_registration_get(env.st, "", TSTORE_ID_WEB, &r, &err), MESH_ENOTFOUND,
                 "no identity-wide registration was made");
    cr_assert_eq(store_registration_remove(env.st, "web-1", NULL, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(store_registration_count(env.st, TSTORE_ID_WEB, &n, &err), MESH_OK);
    cr_assert_eq(n, 1, "removing one replica leaves the other");
}

Test(store_instances, a_token_admits_one_instance)
{
    mesh_err err = {0};
    cr_assert_eq(store_registration_add(env.st, "web-1", TSTORE_ID_WEB, "", "", &err), MESH_OK);
    cr_assert_eq(store_registration_add(env.st, "web-2", TSTORE_ID_WEB, "", "", &err), MESH_OK);
    char *t1 = NULL, *t2 = NULL, *id = NULL, *inst = NULL;
    cr_assert_eq(join_token_create(env.st, "web-1", NULL, 0, &t1, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(join_token_create(env.st, "web-2", TSTORE_ID_WEB, 0, &t2, &err), MESH_OK, "%s",
                 err.msg);
    cr_assert_eq(join_token_create(env.st, "web-2", TSTORE_ID_DB, 0, &id, &err), MESH_ENOTFOUND,
                 "web-2 is not an instance of db");
    cr_assert_eq(join_token_create(env.st, "web-3", NULL, 0, &id, &err), MESH_ENOTFOUND);
    cr_assert(strstr(err.msg, "web-3"), "%s", err.msg);
    cr_assert_eq(join_token_create(env.st, "", TSTORE_ID_WEB, 0, &id, &err), MESH_ENOTFOUND,
                 "no identity-wide registration: no identity-wide token");

    int64_t now = (int64_t)time(NULL);
    cr_assert_eq(join_token_redeem(env.st, t2, now, &id, &inst, &err), MESH_OK, "%s", err.msg);
    cr_assert_str_eq(id, TSTORE_ID_WEB);
    cr_assert_str_eq(inst, "web-2", "the token names its instance, not just the identity");
    free(id);
    free(inst);
    cr_assert_eq(join_token_redeem(env.st, t1, now, &id, &inst, &err), MESH_OK, "%s", err.msg);
    cr_assert_str_eq(inst, "web-1");
    free(id);
    free(inst);
    /* Removing an instance drops its unused tokens only. */
    char *t3 = NULL;
    cr_assert_eq(join_token_create(env.st, "web-1", NULL, 0, &t3, &err), MESH_OK);
    free(t2);   /* spent above */
    cr_assert_eq(join_token_create(env.st, "web-2", NULL, 0, &t2, &err), MESH_OK);
    cr_assert_eq(store_registration_remove(env.st, "web-1", NULL, &err), MESH_OK);
    cr_assert_eq(join_token_redeem(env.st, t3, now, &id, &inst, &err), MESH_ENOTFOUND);
    cr_assert_eq(join_token_redeem(env.st, t2, now, &id, &inst, &err), MESH_OK, "%s", err.msg);
    cr_assert_str_eq(inst, "web-2");
    free(id);
    free(inst);
    free(t1);
    free(t2);
    free(t3);
}

Test(store_instances, the_cert_records_its_instance)
{
    mesh_err err = {0};
    int64_t ca = tstore_add_ca(env.st, "active", "01");
    store_cert c;
    char serial[41];
    int64_t now = (int64_t)time(NULL);
    tstore_cert_init(&c, serial, 7, TSTORE_ID_WEB, ca, now, now + 3600);
    c.instance = "web-2";
    cr_assert_eq(store_cert_insert(env.st, &c, &err), MESH_OK, "%s", err.msg);
    store_cert got;
    cr_assert_eq(store_cert_get(env.st, serial, &got, &err), MESH_OK, "%s", err.msg);
    cr_assert_str_eq(got.instance, "web-2");
    store_cert_free(&got);
    tstore_cert_init(&c, serial, 8, TSTORE_ID_WEB, ca, now, now + 3600);
    c.instance = NULL;
    cr_assert_eq(store_cert_insert(env.st, &c, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(store_cert_get(env.st, serial, &got, &err), MESH_OK, "%s", err.msg);
    cr_assert_str_eq(got.instance, "", "NULL is identity-wide");
    store_cert_free(&got);
}

/* ---- migration from the schema before instances ------------------------------ */

static void exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, &msg), SQLITE_OK, "%s: %s", sql,
                 msg ? msg : "?");
}

/* Turns the store at env.path back into schema 5, the last before instances: registrations
 * keyed by SPIFFE ID alone, no instance on tokens and certs, no apply sets. */
static void downgrade_to_schema_5(void)
{
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(env.path, &db), SQLITE_OK);
    exec(db, "BEGIN;"
             "DROP TABLE registrations;"
             "CREATE TABLE registrations (id INTEGER PRIMARY KEY, spiffe_id TEXT NOT NULL UNIQUE,"
             "  selectors TEXT NOT NULL DEFAULT '', address TEXT NOT NULL DEFAULT '',"
             "  created_at INTEGER NOT NULL);"
             "CREATE TRIGGER store_seq_registrations_insert AFTER INSERT ON registrations"
             "  BEGIN UPDATE store_integrity SET seq = seq + 1 WHERE id = 1; END;"
             "ALTER TABLE join_tokens DROP COLUMN instance;"
             "ALTER TABLE certs DROP COLUMN instance;"
             "ALTER TABLE resources DROP COLUMN apply_set;"
             "DROP TABLE replicas;" /* migration 6 -> 7 */
             "PRAGMA user_version = 5;"
             "COMMIT;");
    /* What such a store held: one registration per identity, a pending token, a cert. */
    char hash[65];
    join_token_hash("mjt_old-token", hash);
    char sql[1024];
    snprintf(sql, sizeof sql,
             "INSERT INTO registrations (spiffe_id, selectors, address, created_at)"
             "  VALUES ('%s', 'k:v', '127.0.0.1:15001', 1);"
             "INSERT INTO join_tokens (token_hash, spiffe_id, created_at, expires_at)"
             "  VALUES ('%s', '%s', 1, 4000000000);"
             "INSERT INTO certs (serial_hex, spiffe_id, pubkey_sha256, not_before, not_after,"
             "  issued_at, ca_id, cert_pem) SELECT 'aa01', '%s', '%064d', 1, 4000000000, 1,"
             "  id, 'PEM' FROM cas LIMIT 1;",
             TSTORE_ID_WEB, hash, TSTORE_ID_WEB, TSTORE_ID_WEB, 0);
    exec(db, sql);
    sqlite3_close(db);
}

Test(store_instances, migration_keeps_identity_wide_registrations)
{
    if (tstore_on_pg())
        cr_skip_test("rewrites an SQLite file to schema 5; every PostgreSQL store is new");
    tstore_add_ca(env.st, "active", "01");
    store_close(env.st);
    env.st = NULL;
    downgrade_to_schema_5();

    mesh_err err = {0};
    cr_assert_eq(store_open(&env.st, env.path, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(store_schema_version(env.st), store_latest_schema_version());

    store_registration r;
    cr_assert_eq(store_registration_get(env.st, "", TSTORE_ID_WEB, &r, &err), MESH_OK, "%s",
                 err.msg);
    cr_assert_str_eq(r.name, "", "an old registration is identity-wide");
    cr_assert_str_eq(r.selectors, "k:v");
    cr_assert_str_eq(r.address, "127.0.0.1:15001");
    store_registration_free(&r);

    char hash[65], *id = NULL, *inst = NULL;
    join_token_hash("mjt_old-token", hash);
    cr_assert_eq(store_token_consume(env.st, hash, (int64_t)time(NULL), &id, &inst, &err), MESH_OK,
                 "%s: a token minted before the migration still works", err.msg);
    cr_assert_str_eq(id, TSTORE_ID_WEB);
    cr_assert_str_eq(inst, "");
    free(id);
    free(inst);

    store_cert c;
    cr_assert_eq(store_cert_get(env.st, "aa01", &c, &err), MESH_OK, "%s", err.msg);
    cr_assert_str_eq(c.instance, "", "an old cert is identity-wide");
    store_cert_free(&c);

    /* The new kinds sit beside the old: instances of the same identity, one name each. */
    cr_assert_eq(store_registration_add(env.st, "web-1", TSTORE_ID_WEB, "", "", &err), MESH_OK,
                 "%s", err.msg);
    cr_assert_eq(store_registration_add(env.st, "web-1", TSTORE_ID_WEB, "", "", &err),
                 MESH_EEXISTS);
    cr_assert_eq(store_registration_add(env.st, "", TSTORE_ID_WEB, "", "", &err), MESH_EEXISTS,
                 "still one identity-wide registration per identity");
    int64_t n = 0;
    cr_assert_eq(store_registration_count(env.st, TSTORE_ID_WEB, &n, &err), MESH_OK);
    cr_assert_eq(n, 2);

    store_resource *rows = NULL;
    size_t nr = 0;
    int changed = 0;
    cr_assert_eq(store_resource_put(env.st, "service", "web", "name: web\n", "f:1", &changed, &err),
                 MESH_OK, "%s", err.msg);
    cr_assert_eq(store_resource_list(env.st, NULL, &rows, &nr, &err), MESH_OK);
    cr_assert_eq(nr, 1);
    cr_assert_str_eq(rows[0].apply_set, "", "a resource of no apply set");
    store_resource_free_list(rows, nr);

    /* Reopening migrates nothing more; the change counter still follows registrations. */
    store_close(env.st);
    cr_assert_eq(store_open(&env.st, env.path, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(store_registration_remove(env.st, "", TSTORE_ID_WEB, &err), MESH_OK, "%s",
                 err.msg);
    cr_assert_eq(store_registration_count(env.st, TSTORE_ID_WEB, &n, &err), MESH_OK);
    cr_assert_eq(n, 1);
}
