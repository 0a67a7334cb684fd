/* store/store_schema.c — the store's schema as an ordered list of migrations.
 *
 * store_migrations[i] takes PRAGMA user_version from i to i+1. To change the
 * schema, append a script; never edit one that has shipped (existing stores
 * already ran it). Each migration runs in its own BEGIN IMMEDIATE transaction
 * with foreign key enforcement off (SQLite's documented procedure for table
 * rebuilds) and PRAGMA foreign_key_check before COMMIT, so a migration that
 * would leave dangling references fails and leaves the store as it was. */
#include "store/store_internal.h"

#include <stdio.h>

#include "common/log.h"

static const char *const store_migrations[] = {
    /* 0 -> 1: initial schema. */
    "PRAGMA application_id = 1297303620;\n" /* STORE_APPLICATION_ID ("MSHD"); checked at open */
    "CREATE TABLE settings (\n"
    "  key   TEXT PRIMARY KEY NOT NULL,\n"
    "  value TEXT NOT NULL\n"
    ");\n"
    "INSERT INTO settings (key, value) VALUES ('config_version', '0');\n"
    "\n"
    "CREATE TABLE cas (\n"
    "  id         INTEGER PRIMARY KEY,\n"
    "  state      TEXT NOT NULL CHECK (state IN ('prepared', 'active', 'retired', 'removed')),\n"
    "  cert_pem   TEXT NOT NULL,\n"
    "  chain_pem  TEXT NOT NULL DEFAULT '',\n"
    "  key_path   TEXT NOT NULL,\n"
    "  serial_hex TEXT NOT NULL,\n"
    "  subject    TEXT NOT NULL,\n"
    "  key_type   TEXT NOT NULL,\n"
    "  not_before INTEGER NOT NULL,\n"
    "  not_after  INTEGER NOT NULL,\n"
    "  created_at INTEGER NOT NULL\n"
    ");\n"
    /* At most one signing CA, enforced by the database, not only by ca/. */
    "CREATE UNIQUE INDEX cas_one_active ON cas (state) WHERE state = 'active';\n"
    "\n"
    "CREATE TABLE registrations (\n"
    "  id         INTEGER PRIMARY KEY,\n"
    "  spiffe_id  TEXT NOT NULL UNIQUE,\n"
    "  selectors  TEXT NOT NULL DEFAULT '',\n"
    "  address    TEXT NOT NULL DEFAULT '',\n"
    "  created_at INTEGER NOT NULL\n"
    ");\n"
    "\n"
    /* No foreign key to registrations: spent tokens outlive their registration
     * as a record of who joined; store_registration_remove deletes unused ones. */
    "CREATE TABLE join_tokens (\n"
    "  token_hash TEXT PRIMARY KEY NOT NULL,\n"
    "  spiffe_id  TEXT NOT NULL,\n"
    "  created_at INTEGER NOT NULL,\n"
    "  expires_at INTEGER NOT NULL,\n"
    "  used_at    INTEGER\n"
    ");\n"
    "CREATE INDEX join_tokens_spiffe_id ON join_tokens (spiffe_id);\n"
    "\n"
    "CREATE TABLE certs (\n"
    "  serial_hex    TEXT PRIMARY KEY NOT NULL,\n"
    "  spiffe_id     TEXT NOT NULL,\n"
    "  pubkey_sha256 TEXT NOT NULL,\n"
    "  not_before    INTEGER NOT NULL,\n"
    "  not_after     INTEGER NOT NULL,\n"
    "  issued_at     INTEGER NOT NULL,\n"
    "  ca_id         INTEGER NOT NULL REFERENCES cas (id),\n"
    "  revoked       INTEGER NOT NULL DEFAULT 0,\n"
    "  revoked_at    INTEGER NOT NULL DEFAULT 0,\n"
    "  revoke_reason TEXT NOT NULL DEFAULT '',\n"
    "  cert_pem      TEXT NOT NULL\n"
    ");\n"
    "CREATE INDEX certs_spiffe_id ON certs (spiffe_id, issued_at);\n"
    "CREATE INDEX certs_not_after ON certs (not_after);\n"
    "CREATE INDEX certs_ca_id ON certs (ca_id, not_after);\n"
    "\n"
    "CREATE TABLE resources (\n"
    "  kind       TEXT NOT NULL,\n"
    "  name       TEXT NOT NULL,\n"
    "  body       TEXT NOT NULL,\n"
    "  source     TEXT NOT NULL DEFAULT '',\n"
    "  version    INTEGER NOT NULL,\n"
    "  updated_at INTEGER NOT NULL,\n"
    "  PRIMARY KEY (kind, name)\n"
    ");\n"
    "\n"
    "CREATE TABLE proxies (\n"
    "  node_id        TEXT PRIMARY KEY NOT NULL,\n"
    "  spiffe_id      TEXT NOT NULL DEFAULT '',\n"
    "  peer           TEXT NOT NULL DEFAULT '',\n"
    "  connected      INTEGER NOT NULL DEFAULT 0,\n"
    "  connected_at   INTEGER NOT NULL DEFAULT 0,\n"
    "  last_seen      INTEGER NOT NULL DEFAULT 0,\n"
    "  svid_not_after INTEGER NOT NULL DEFAULT 0,\n"
    "  meshd_instance TEXT NOT NULL DEFAULT ''\n"
    ");\n"
    "CREATE INDEX proxies_meshd_instance ON proxies (meshd_instance);\n"
    "CREATE TABLE proxy_types (\n"
    "  node_id       TEXT NOT NULL REFERENCES proxies (node_id) ON DELETE CASCADE,\n"
    "  type_url      TEXT NOT NULL,\n"
    "  sent_version  TEXT NOT NULL DEFAULT '',\n"
    "  acked_version TEXT NOT NULL DEFAULT '',\n"
    "  nack_version  TEXT NOT NULL DEFAULT '',\n"
    "  nack_error    TEXT NOT NULL DEFAULT '',\n"
    "  updated_at    INTEGER NOT NULL,\n"
    "  PRIMARY KEY (node_id, type_url)\n"
    ");\n"
    "\n"
    /* AUTOINCREMENT: ids never reused, so "newest first" is id order even if
     * the clock steps backwards. */
    "CREATE TABLE audit (\n"
    "  id      INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "  at      INTEGER NOT NULL,\n"
    "  actor   TEXT NOT NULL,\n"
    "  action  TEXT NOT NULL,\n"
    "  subject TEXT NOT NULL DEFAULT '',\n"
    "  detail  TEXT NOT NULL DEFAULT '',\n"
    "  ok      INTEGER NOT NULL\n"
    ");\n"
    "CREATE INDEX audit_at ON audit (at);\n",

    /* 1 -> 2: a proxy row is one instance of one verified identity, keyed by
     * (spiffe_id, node_id): a client with its own SVID that claims another
     * sidecar's Node.id gets its own row instead of replacing the other's, and
     * replicas of one identity (each with its own instance name) each have
     * theirs. Rebuilt the SQLite way: new tables, copy, drop, rename. */
    "CREATE TABLE proxies_v2 (\n"
    "  spiffe_id      TEXT NOT NULL,\n"
    "  node_id        TEXT NOT NULL,\n"
    "  peer           TEXT NOT NULL DEFAULT '',\n"
    "  connected      INTEGER NOT NULL DEFAULT 0,\n"
    "  connected_at   INTEGER NOT NULL DEFAULT 0,\n"
    "  last_seen      INTEGER NOT NULL DEFAULT 0,\n"
    "  svid_not_after INTEGER NOT NULL DEFAULT 0,\n"
    "  meshd_instance TEXT NOT NULL DEFAULT '',\n"
    "  PRIMARY KEY (spiffe_id, node_id)\n"
    ");\n"
    "INSERT INTO proxies_v2 (spiffe_id, node_id, peer, connected, connected_at, last_seen,\n"
    "  svid_not_after, meshd_instance)\n"
    "  SELECT spiffe_id, node_id, peer, connected, connected_at, last_seen, svid_not_after,\n"
    "    meshd_instance FROM proxies;\n"
    "CREATE TABLE proxy_types_v2 (\n"
    "  spiffe_id     TEXT NOT NULL,\n"
    "  node_id       TEXT NOT NULL,\n"
    "  type_url      TEXT NOT NULL,\n"
    "  sent_version  TEXT NOT NULL DEFAULT '',\n"
    "  acked_version TEXT NOT NULL DEFAULT '',\n"
    "  nack_version  TEXT NOT NULL DEFAULT '',\n"
    "  nack_error    TEXT NOT NULL DEFAULT '',\n"
    "  updated_at    INTEGER NOT NULL,\n"
    "  PRIMARY KEY (spiffe_id, node_id, type_url),\n"
    "  FOREIGN KEY (spiffe_id, node_id) REFERENCES proxies_v2 (spiffe_id, node_id)\n"
    "    ON DELETE CASCADE\n"
    ");\n"
    "INSERT INTO proxy_types_v2 (spiffe_id, node_id, type_url, sent_version, acked_version,\n"
    "  nack_version, nack_error, updated_at)\n"
    "  SELECT p.spiffe_id, t.node_id, t.type_url, t.sent_version, t.acked_version,\n"
    "    t.nack_version, t.nack_error, t.updated_at\n"
    "  FROM proxy_types t JOIN proxies p ON p.node_id = t.node_id;\n"
    "DROP TABLE proxy_types;\n"
    "DROP TABLE proxies;\n"
    "ALTER TABLE proxies_v2 RENAME TO proxies;\n"
    "ALTER TABLE proxy_types_v2 RENAME TO proxy_types;\n"
    "CREATE INDEX proxies_meshd_instance ON proxies (meshd_instance);\n"
    "CREATE INDEX proxies_node_id ON proxies (node_id, connected);\n",

    /* 2 -> 3: the change counter the witness file follows (see
     * store_sqlite_witness.c). store_id tells this store from any other;
     * seq rises with every committed change that matters, so a store
     * holding a lower seq than its witness recorded has lost commits.
     * Proxy status is left out: meshd rewrites it constantly and a lost
     * status row costs nothing. */
    "CREATE TABLE store_integrity (\n"
    "  id       INTEGER PRIMARY KEY CHECK (id = 1),\n"
    "  store_id TEXT NOT NULL,\n"
    "  seq      INTEGER NOT NULL\n"
    ");\n"
    "INSERT INTO store_integrity (id, store_id, seq) VALUES (1, lower(hex(randomblob(16))), 0);\n"
    "CREATE TRIGGER store_seq_settings_insert AFTER INSERT ON settings\n"
    "  BEGIN UPDATE store_integrity SET seq = seq + 1 WHERE id = 1; END;\n"
    "CREATE TRIGGER store_seq_settings_update AFTER UPDATE ON settings\n"
    "  BEGIN UPDATE store_integrity SET seq = seq + 1 WHERE id = 1; END;\n"
    "CREATE TRIGGER store_seq_settings_delete AFTER DELETE ON settings\n"
    "  BEGIN UPDATE store_integrity SET seq = seq + 1 WHERE id = 1; END;\n"
    "CREATE TRIGGER store_seq_cas_insert AFTER INSERT ON cas\n"
    "  BEGIN UPDATE store_integrity SET seq = seq + 1 WHERE id = 1; END;\n"
    "CREATE TRIGGER store_seq_cas_update AFTER UPDATE ON cas\n"
    "  BEGIN UPDATE store_integrity SET seq = seq + 1 WHERE id = 1; END;\n"
    "CREATE TRIGGER store_seq_cas_delete AFTER DELETE ON cas\n"
    "  BEGIN UPDATE store_integrity SET seq = seq + 1 WHERE id = 1; END;\n"
    "CREATE TRIGGER store_seq_registrations_insert AFTER INSERT ON registrations\n"
    "  BEGIN UPDATE store_integrity SET seq = seq + 1 WHERE id = 1; END;\n"
    "CREATE TRIGGER store_seq_registrations_update AFTER UPDATE ON registrations\n"
    "  BEGIN UPDATE store_integrity SET seq = seq + 1 WHERE id = 1; END;\n"
    "CREATE TRIGGER store_seq_registrations_delete AFTER DELETE ON registrations\n"
    "  BEGIN UPDATE store_integrity SET seq = seq + 1 WHERE id = 1; END;\n"
    "CREATE TRIGGER store_seq_join_tokens_insert AFTER INSERT ON join_tokens\n"
    "  BEGIN UPDATE store_integrity SET seq = seq + 1 WHERE id = 1; END;\n"
    "CREATE TRIGGER store_seq_join_tokens_update AFTER UPDATE ON join_tokens\n"
    "  BEGIN UPDATE store_integrity SET seq = seq + 1 WHERE id = 1; END;\n"
    "CREATE TRIGGER store_seq_join_tokens_delete AFTER DELETE ON join_tokens\n"
    "  BEGIN UPDATE store_integrity SET seq = seq + 1 WHERE id = 1; END;\n"
    "CREATE TRIGGER store_seq_certs_insert AFTER INSERT ON certs\n"
    "  BEGIN UPDATE store_integrity SET seq = seq + 1 WHERE id = 1; END;\n"
    "CREATE TRIGGER store_seq_certs_update AFTER UPDATE ON certs\n"
    "  BEGIN UPDATE store_integrity SET seq = seq + 1 WHERE id = 1; END;\n"
    "CREATE TRIGGER store_seq_certs_delete AFTER DELETE ON certs\n"
    "  BEGIN UPDATE store_integrity SET seq = seq + 1 WHERE id = 1; END;\n"
    "CREATE TRIGGER store_seq_resources_insert AFTER INSERT ON resources\n"
    "  BEGIN UPDATE store_integrity SET seq = seq + 1 WHERE id = 1; END;\n"
    "CREATE TRIGGER store_seq_resources_update AFTER UPDATE ON resources\n"
    "  BEGIN UPDATE store_integrity SET seq = seq + 1 WHERE id = 1; END;\n"
    "CREATE TRIGGER store_seq_resources_delete AFTER DELETE ON resources\n"
    "  BEGIN UPDATE store_integrity SET seq = seq + 1 WHERE id = 1; END;\n"
    "CREATE TRIGGER store_seq_audit_insert AFTER INSERT ON audit\n"
    "  BEGIN UPDATE store_integrity SET seq = seq + 1 WHERE id = 1; END;\n"
    "CREATE TRIGGER store_seq_audit_update AFTER UPDATE ON audit\n"
    "  BEGIN UPDATE store_integrity SET seq = seq + 1 WHERE id = 1; END;\n"
    "CREATE TRIGGER store_seq_audit_delete AFTER DELETE ON audit\n"
    "  BEGIN UPDATE store_integrity SET seq = seq + 1 WHERE id = 1; END;\n",

    /* 3 -> 4: revocation that reaches the data plane. A key reported
     * compromised is never certified again (compromised_keys); each CA in
     * the bundle has one signed CRL, stored so that every meshd replica and
     * every restart serves the same bytes (and so the same SDS version);
     * a proxy row can say why its sidecar is stranded. */
    "CREATE TABLE compromised_keys (\n"
    "  pubkey_sha256 TEXT PRIMARY KEY NOT NULL,\n"
    "  serial_hex    TEXT NOT NULL,\n"   /* the revocation that reported it */
    "  spiffe_id     TEXT NOT NULL,\n"
    "  reported_at   INTEGER NOT NULL\n"
    ");\n"
    "CREATE TABLE crls (\n"
    "  ca_id          INTEGER PRIMARY KEY NOT NULL REFERENCES cas (id),\n"
    "  crl_number     INTEGER NOT NULL,\n"
    "  this_update    INTEGER NOT NULL,\n"
    "  next_update    INTEGER NOT NULL,\n"
    "  n_entries      INTEGER NOT NULL,\n"
    "  entries_sha256 TEXT NOT NULL,\n"
    "  crl_pem        TEXT NOT NULL\n"
    ");\n"
    "CREATE INDEX certs_pubkey ON certs (pubkey_sha256, not_after);\n"
    "CREATE INDEX certs_revoked ON certs (ca_id, not_after) WHERE revoked = 1;\n"
    "ALTER TABLE proxies ADD COLUMN problem TEXT NOT NULL DEFAULT '';\n"
    /* Both tables are followed by the change counter of 2 -> 3: a lost
     * compromise record would let a compromised key be certified again. */
    "CREATE TRIGGER store_seq_compromised_keys_insert AFTER INSERT ON compromised_keys\n"
    "  BEGIN UPDATE store_integrity SET seq = seq + 1 WHERE id = 1; END;\n"
    "CREATE TRIGGER store_seq_compromised_keys_update AFTER UPDATE ON compromised_keys\n"
    "  BEGIN UPDATE store_integrity SET seq = seq + 1 WHERE id = 1; END;\n"
    "CREATE TRIGGER store_seq_compromised_keys_delete AFTER DELETE ON compromised_keys\n"
    "  BEGIN UPDATE store_integrity SET seq = seq + 1 WHERE id = 1; END;\n"
    "CREATE TRIGGER store_seq_crls_insert AFTER INSERT ON crls\n"
    "  BEGIN UPDATE store_integrity SET seq = seq + 1 WHERE id = 1; END;\n"
    "CREATE TRIGGER store_seq_crls_update AFTER UPDATE ON crls\n"
    "  BEGIN UPDATE store_integrity SET seq = seq + 1 WHERE id = 1; END;\n"
    "CREATE TRIGGER store_seq_crls_delete AFTER DELETE ON crls\n"
    "  BEGIN UPDATE store_integrity SET seq = seq + 1 WHERE id = 1; END;\n",

    /* 4 -> 5: which trust bundle each proxy has ACKed (CA rotation waits for the
     * new root to be in every sidecar's before activating it). Its own table,
     * keyed like proxies (verified identity, Node.id), so proxy-status writes and
     * trust writes never touch the same row and a client claiming another's
     * Node.id cannot speak for it. roots: sorted, comma-separated SHA-256 of the
     * root certs. */
    "CREATE TABLE proxy_trust (\n"
    "  spiffe_id      TEXT NOT NULL,\n"
    "  node_id        TEXT NOT NULL,\n"
    "  roots          TEXT NOT NULL,\n"
    "  acked_at       INTEGER NOT NULL,\n"
    "  meshd_instance TEXT NOT NULL DEFAULT '',\n"
    "  PRIMARY KEY (spiffe_id, node_id)\n"
    ");\n"
    /* Unlike proxies, followed by the change counter of 2 -> 3: activation
     * of a CA is decided from these rows, and they change only when a
     * sidecar's bundle does (not on every status event). */
    "CREATE TRIGGER store_seq_proxy_trust_insert AFTER INSERT ON proxy_trust\n"
    "  BEGIN UPDATE store_integrity SET seq = seq + 1 WHERE id = 1; END;\n"
    "CREATE TRIGGER store_seq_proxy_trust_update AFTER UPDATE ON proxy_trust\n"
    "  BEGIN UPDATE store_integrity SET seq = seq + 1 WHERE id = 1; END;\n"
    "CREATE TRIGGER store_seq_proxy_trust_delete AFTER DELETE ON proxy_trust\n"
    "  BEGIN UPDATE store_integrity SET seq = seq + 1 WHERE id = 1; END;\n",
    /* 5 -> 6: instances. The identity is the service account, shared by every
     * replica; what joins is one instance (a workload of the mesh config, by
     * name) with its own join token. A registration is one instance (name) of
     * an identity, or, name '', the identity as a whole: the only kind schema 1
     * had, kept so that stores from before keep working (one workload per
     * identity). A token and every cert record the instance they admit, so
     * meshd knows a sidecar's instance from its verified enrolment; renewals
     * carry it over. Resources record which apply set (the file they came
     * from, `meshctl apply --prune`) last wrote them; '' = none. */
    "CREATE TABLE registrations_v2 (\n"
    "  id         INTEGER PRIMARY KEY,\n"
    "  name       TEXT NOT NULL DEFAULT '',\n"
    "  spiffe_id  TEXT NOT NULL,\n"
    "  selectors  TEXT NOT NULL DEFAULT '',\n"
    "  address    TEXT NOT NULL DEFAULT '',\n"
    "  created_at INTEGER NOT NULL\n"
    ");\n"
    "INSERT INTO registrations_v2 (id, name, spiffe_id, selectors, address, created_at)\n"
    "  SELECT id, '', spiffe_id, selectors, address, created_at FROM registrations;\n"
    "DROP TABLE registrations;\n"
    "ALTER TABLE registrations_v2 RENAME TO registrations;\n"
    "CREATE UNIQUE INDEX registrations_name ON registrations (name) WHERE name <> '';\n"
    "CREATE UNIQUE INDEX registrations_identity_wide ON registrations (spiffe_id)\n"
    "  WHERE name = '';\n"
    "CREATE INDEX registrations_spiffe_id ON registrations (spiffe_id, name);\n"
    /* DROP TABLE took the change-counter triggers of 2 -> 3 with it. */
    "CREATE TRIGGER store_seq_registrations_insert AFTER INSERT ON registrations\n"
    "  BEGIN UPDATE store_integrity SET seq = seq + 1 WHERE id = 1; END;\n"
    "CREATE TRIGGER store_seq_registrations_update AFTER UPDATE ON registrations\n"
    "  BEGIN UPDATE store_integrity SET seq = seq + 1 WHERE id = 1; END;\n"
    "CREATE TRIGGER store_seq_registrations_delete AFTER DELETE ON registrations\n"
    "  BEGIN UPDATE store_integrity SET seq = seq + 1 WHERE id = 1; END;\n"
    "ALTER TABLE join_tokens ADD COLUMN instance TEXT NOT NULL DEFAULT '';\n"
    "ALTER TABLE certs ADD COLUMN instance TEXT NOT NULL DEFAULT '';\n"
    "ALTER TABLE resources ADD COLUMN apply_set TEXT NOT NULL DEFAULT '';\n",

    /* 6 -> 7: meshd replicas (issue 14). Each meshd registers itself under
     * its instance name (the name proxy rows record in meshd_instance) and
     * heartbeats; a proxy row held by a replica whose heartbeat is older
     * than STORE_REPLICA_STALE_S reads as not connected (store_replica.c),
     * so a crashed replica does not leave its sidecars "connected". stopped
     * is the time of a clean shutdown, 0 while it runs. Followed by the
     * change counter like every table but proxy status. */
    "CREATE TABLE replicas (\n"
    "  id        TEXT PRIMARY KEY NOT NULL,\n"
    "  address   TEXT NOT NULL DEFAULT '',\n"
    "  pid       INTEGER NOT NULL DEFAULT 0,\n"
    "  started   INTEGER NOT NULL,\n"
    "  heartbeat INTEGER NOT NULL,\n"
    "  stopped   INTEGER NOT NULL DEFAULT 0\n"
    ");\n"
    "CREATE TRIGGER store_seq_replicas_insert AFTER INSERT ON replicas\n"
    "  BEGIN UPDATE store_integrity SET seq = seq + 1 WHERE id = 1; END;\n"
    "CREATE TRIGGER store_seq_replicas_update AFTER UPDATE ON replicas\n"
    "  BEGIN UPDATE store_integrity SET seq = seq + 1 WHERE id = 1; END;\n"
    "CREATE TRIGGER store_seq_replicas_delete AFTER DELETE ON replicas\n"
    "  BEGIN UPDATE store_integrity SET seq = seq + 1 WHERE id = 1; END;\n",
};

int store_latest_schema_version(void)
{
    return (int)(sizeof store_migrations / sizeof store_migrations[0]);
}

static const char SQL_USER_VERSION[] = "PRAGMA user_version";
static const char SQL_FK_CHECK[] = "PRAGMA foreign_key_check";

int store_sqlite_schema_version(mesh_store *st)
{
    sqlite3_stmt *s;
    if (store_sqlite_stmt(st, SQL_USER_VERSION, &s, NULL) != MESH_OK)
        return -1;
    int v = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int(s, 0) : -1;
    store_sqlite_stmt_release(s);
    return v;
}

/* Runs migration `from` (user_version from -> from+1) inside the caller's
 * transaction. */
static int store_apply_migration(mesh_store *st, int from, mesh_err *err)
{
    char *errmsg = NULL;
    /* A script of several statements: sqlite3_exec. The scripts are constants
     * compiled into meshd, never built from input. */
    int src = sqlite3_exec(st->db, store_migrations[from], NULL, NULL, &errmsg);
    if (src != SQLITE_OK) {
        int code = store_map_sqlite_rc(src);
        if (code == MESH_OK)
            code = MESH_EINTERNAL;
        mesh_err_set(err, code, "applying schema migration %d -> %d to store %s: %s", from,
                     from + 1, st->path, errmsg ? errmsg : sqlite3_errstr(src));
        sqlite3_free(errmsg);
        return code;
    }

    sqlite3_stmt *s;
    int rc = store_sqlite_stmt(st, SQL_FK_CHECK, &s, err);
    if (rc != MESH_OK)
        return rc;
    src = sqlite3_step(s);
    if (src == SQLITE_ROW)
        rc = mesh_err_set(err, MESH_EINTERNAL,
                          "schema migration %d -> %d on store %s leaves a dangling reference "
                          "in table %s; the migration was rolled back",
                          from, from + 1, st->path, (const char *)sqlite3_column_text(s, 0));
    else if (src != SQLITE_DONE)
        rc = store_sqlite_error(st, err, src, "checking foreign keys after migration %d", from + 1);
    store_sqlite_stmt_release(s);
    if (rc != MESH_OK)
        return rc;

    /* PRAGMA takes no bound parameters; the value is our own loop counter. */
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", from + 1);
    src = sqlite3_exec(st->db, sql, NULL, NULL, NULL);
    if (src != SQLITE_OK)
        return store_sqlite_error(st, err, src, "recording schema version %d", from + 1);
    return MESH_OK;
}

int store_sqlite_migrate(mesh_store *st, mesh_err *err)
{
    int latest = store_latest_schema_version();
    for (;;) {
        /* Cheap unlocked peek first so an up-to-date store takes no write lock. */
        int v = store_schema_version(st);
        if (v < 0)
            return mesh_err_set(err, MESH_EIO, "reading schema version of store %s: %s",
                                st->path, sqlite3_errmsg(st->db));
        if (v >= latest)
            return MESH_OK;

        int rc = store_op_begin(st, 1, err);
        if (rc != MESH_OK)
            return rc;
        /* Re-read under the write lock: another process may have migrated
         * between the peek and BEGIN IMMEDIATE. */
        v = store_schema_version(st);
        if (v < 0)
            rc = mesh_err_set(err, MESH_EIO, "reading schema version of store %s", st->path);
        else if (v < latest)
            rc = store_apply_migration(st, v, err);
        rc = store_op_end(st, rc, err);
        if (rc != MESH_OK)
            return rc;
        if (v >= 0 && v < latest)
            log_info("store", "applied schema migration %d -> %d to %s", v, v + 1, st->path);
    }
}
