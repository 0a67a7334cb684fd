/* tests/fuzz/fuzz_config.c — libFuzzer target: the operator's YAML mesh config.
 *
 * Parse (libyaml + our per-field checks), validate (cross references, SPIFFE
 * IDs in the trust domain, addresses), and the canonical round trip: a config
 * that parses writes YAML that parses again into a config that writes the
 * same YAML byte for byte (what `meshctl get -o yaml | meshctl apply` relies
 * on). Any difference aborts. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "config/mesh_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int quiet;
    if (!quiet) {
        log_set_level(LOG_ERROR);
        quiet = 1;
    }
    mesh_config cfg;
    memset(&cfg, 0, sizeof cfg);
    mesh_err err = {0};
    if (mesh_config_parse_buffer("fuzz.yaml", (const char *)data, size, &cfg, &err) != MESH_OK) {
        mesh_config_free(&cfg);
        return 0;
    }
    mesh_err verr = {0};
    int v1 = mesh_config_validate(&cfg, "example.org", &verr);
    char *y1 = mesh_config_to_yaml(&cfg);
    if (!y1)
        abort();
    mesh_config again;
    memset(&again, 0, sizeof again);
    mesh_err err2 = {0};
    if (mesh_config_parse_buffer("canonical.yaml", y1, strlen(y1), &again, &err2) != MESH_OK) {
        fprintf(stderr, "canonical YAML does not parse: %s\n---\n%s\n", err2.msg, y1);
        abort();
    }
    char *y2 = mesh_config_to_yaml(&again);
    if (!y2 || strcmp(y1, y2) != 0) {
        fprintf(stderr, "canonical YAML is not stable:\n--- first\n%s\n--- second\n%s\n", y1,
                y2 ? y2 : "(null)");
        abort();
    }
    mesh_err verr2 = {0};
    int v2 = mesh_config_validate(&again, "example.org", &verr2);
    if ((v1 == MESH_OK) != (v2 == MESH_OK)) {
        fprintf(stderr, "validation differs after the round trip: '%s' vs '%s'\n", verr.msg,
                verr2.msg);
        abort();
    }
    free(y1);
    free(y2);
    mesh_config_free(&again);
    mesh_config_free(&cfg);
    return 0;
}
