/* config/config_json.c — a stored resource's canonical YAML as a JSON value,
 * for `meshctl get -o json` (a "spec" object a script can query with jq,
 * rather than YAML inside a JSON string).
 *
 * Works on the canonical text config_write.c produces, where a string that a
 * YAML reader would take for another type is always quoted; so a plain
 * scalar that looks like an integer, true/false or null is one, and every
 * other scalar is a string (durations such as "1s" stay strings, as in the
 * YAML). */
#include "config/mesh_config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "common/json_out.h"

/* Deeper and larger than any mesh resource: bound the recursion, and the
 * output of a body whose aliases repeat nodes ("billion laughs"). */
#define JSON_MAX_DEPTH 32
#define JSON_MAX_NODES 65536

static int plain_int(const char *s, int64_t *out)
{
    const char *p = s[0] == '-' ? s + 1 : s;
    if (!*p || strspn(p, "0123456789") != strlen(p) || (p[0] == '0' && p[1]))
        return 0;
    errno = 0;
    long long v = strtoll(s, NULL, 10);
    if (errno)
        return 0;
    *out = v;
    return 1;
}

static void scalar(json_out *j, const yaml_node_t *n)
{
    const char *s = (const char *)n->data.scalar.value;
    if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) {
        json_str(j, s);
        return;
    }
    int64_t v;
    if (plain_int(s, &v))
        json_int(j, v);
    else if (strcmp(s, "true") == 0 || strcmp(s, "false") == 0)
        json_bool(j, s[0] == 't');
    else if (!*s || strcmp(s, "null") == 0 || strcmp(s, "~") == 0)
        json_null(j);
    else
        json_str(j, s);
}

static int node(json_out *j, yaml_document_t *doc, yaml_node_t *n, int depth, size_t *budget)
{
    if (!n || depth > JSON_MAX_DEPTH || *budget == 0)
        return -1;
    --*budget;
    switch (n->type) {
    case YAML_SCALAR_NODE:
        scalar(j, n);
        return 0;
    case YAML_SEQUENCE_NODE:
        json_arr_begin(j);
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
             it++)
            if (node(j, doc, yaml_document_get_node(doc, *it), depth + 1, budget) != 0)
                return -1;
        json_arr_end(j);
        return 0;
    case YAML_MAPPING_NODE:
        json_obj_begin(j);
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
             p++) {
            yaml_node_t *k = yaml_document_get_node(doc, p->key);
            if (!k || k->type != YAML_SCALAR_NODE)
                return -1;
            json_key(j, (const char *)k->data.scalar.value);
            if (node(j, doc, yaml_document_get_node(doc, p->value), depth + 1, budget) != 0)
                return -1;
        }
        json_obj_end(j);
        return 0;
    default:
        return -1;
    }
}

int config_yaml_to_json(const char *yaml, size_t len, json_out *out, mesh_err *err)
{
    yaml_parser_t p;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&p))
        return mesh_err_set(err, MESH_ENOMEM, "YAML to JSON: out of memory");
    yaml_parser_set_input_string(&p, (const unsigned char *)yaml, len);
    if (!yaml_parser_load(&p, &doc)) {
        int rc = mesh_err_set(err, MESH_EINVAL, "stored resource is not YAML: %s",
                              p.problem ? p.problem : "parse error");
        yaml_parser_delete(&p);
        return rc;
    }
    /* Built aside, so that a failure leaves out as it was. */
    json_out j;
    json_init(&j);
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    int rc = MESH_OK;
    size_t budget = JSON_MAX_NODES;
    if (!root)
        json_null(&j);
    else if (node(&j, &doc, root, 0, &budget) != 0)
        rc = mesh_err_set(err, MESH_EINVAL, "stored resource has a shape JSON cannot hold "
                                            "(a non-scalar key, too deep or too large)");
    const char *text = json_text(&j);
    if (rc == MESH_OK && !text)
        rc = mesh_err_set(err, MESH_ENOMEM, "YAML to JSON: out of memory");
    if (rc == MESH_OK)
        json_raw(out, text);
    json_free(&j);
    yaml_document_delete(&doc);
    yaml_parser_delete(&p);
    return rc;
}
