/* sidecar/xds_inputs.c — the record of explicit trust material taken in (see xds_inputs.h). */
#include "sidecar/xds_inputs.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca/join_token.h"
#include "common/log.h"
#include "sidecar/xds_persist.h"

#define MAGIC "meshd-explicit-inputs 1"

static int is_hex64(const char *s)
{
    if (strlen(s) != 64)
        return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return 0;
    return 1;
}

static void path_of(const char *dir, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", dir, XDSC_INPUTS_FILE);
}

int xdsc_inputs_load(const char *state_dir, xdsc_inputs *out, mesh_err *err)
{
    memset(out, 0, sizeof *out);
    char path[4200];
    path_of(state_dir, path, sizeof path);
    char *buf = NULL;
    int rc = xdsc_read_file(path, 64 * 1024, &buf, NULL, err);
    if (rc == MESH_ENOTFOUND) {
        mesh_err_clear(err);
        return MESH_OK;
    }
    if (rc != MESH_OK)
        return rc;
    out->exists = true;
    char *save = NULL;
    char *line = strtok_r(buf, "\n", &save);
    if (!line || strcmp(line, MAGIC) != 0) {
        free(buf);
        return mesh_err_set(err, MESH_ECORRUPT, "%s: not a record of explicit inputs", path);
    }
    while ((line = strtok_r(NULL, "\n", &save)) != NULL) {
        if (strncmp(line, "bundle ", 7) == 0 && is_hex64(line + 7)) {
            memcpy(out->bundle, line + 7, 65);
        } else if (strncmp(line, "token ", 6) == 0 && is_hex64(line + 6)) {
            xdsc_inputs_add_token(out, line + 6);
        } else if (line[0]) {
            free(buf);
            return mesh_err_set(err, MESH_ECORRUPT, "%s: unexpected line", path);
        }
    }
    free(buf);
    return MESH_OK;
}

int xdsc_inputs_save(const char *state_dir, const xdsc_inputs *in, mesh_err *err)
{
    char text[64 + 80 + XDSC_INPUTS_MAX_TOKENS * 80];
    size_t off = (size_t)snprintf(text, sizeof text, "%s\n", MAGIC);
    if (in->bundle[0])
        off += (size_t)snprintf(text + off, sizeof text - off, "bundle %s\n", in->bundle);
    for (size_t i = 0; i < in->n_tokens && off < sizeof text; i++)
        off += (size_t)snprintf(text + off, sizeof text - off, "token %s\n", in->tokens[i]);
    char path[4200];
    path_of(state_dir, path, sizeof path);
    return xdsc_write_file_atomic(path, text, off, err);
}

bool xdsc_inputs_has_token(const xdsc_inputs *in, const char *hash)
{
    for (size_t i = 0; i < in->n_tokens; i++)
        if (strcmp(in->tokens[i], hash) == 0)
            return true;
    return false;
}

void xdsc_inputs_add_token(xdsc_inputs *in, const char *hash)
{
    if (!is_hex64(hash) || xdsc_inputs_has_token(in, hash))
        return;
    if (in->n_tokens == XDSC_INPUTS_MAX_TOKENS) {
        memmove(in->tokens[0], in->tokens[1], sizeof in->tokens[0] * (XDSC_INPUTS_MAX_TOKENS - 1));
        in->n_tokens--;
    }
    memcpy(in->tokens[in->n_tokens++], hash, 65);
}

void xdsc_inputs_note_token(const char *state_dir, const char *hash)
{
    xdsc_inputs in;
    mesh_err err = {0};
    if (xdsc_inputs_load(state_dir, &in, &err) != MESH_OK) {
        log_warn("xds", "%s; starting it afresh", err.msg);
        memset(&in, 0, sizeof in);
    }
    xdsc_inputs_add_token(&in, hash);
    if (xdsc_inputs_save(state_dir, &in, &err) != MESH_OK)
        log_warn("xds", "cannot record the join token as used: %s (a restart with the same "
                 "token would try to re-enrol with it once more)", err.msg);
}

void xdsc_token_hash(const char *token, char out[65])
{
    join_token_parts parts;
    mesh_err err;
    if (token && join_token_parse(token, &parts, &err) == MESH_OK) {
        join_token_hash(parts.secret, out);
        OPENSSL_cleanse(&parts, sizeof parts);
        return;
    }
    join_token_hash(token ? token : "", out);
}
