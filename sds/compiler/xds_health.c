/* sds/compiler/xds_health.c — the UNHEALTHY endpoint set (see xds_health.h). */
#include "sds/compiler/xds_health.h"

#include <stdlib.h>
#include <string.h>

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int xds_health_build(xds_health *out, const char *const *names, size_t n, mesh_err *err)
{
    memset(out, 0, sizeof *out);
    if (n == 0)
        return MESH_OK;
    out->unhealthy = calloc(n, sizeof *out->unhealthy);
    if (!out->unhealthy)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory building the endpoint health set");
    for (size_t i = 0; i < n; i++) {
        if (!names[i])
            continue;
        if ((out->unhealthy[out->n] = strdup(names[i])) == NULL) {
            xds_health_free(out);
            return mesh_err_set(err, MESH_ENOMEM,
                                "out of memory building the endpoint health set");
        }
        out->n++;
    }
    qsort(out->unhealthy, out->n, sizeof *out->unhealthy, cmp_str);
    size_t k = 0;
    for (size_t i = 0; i < out->n; i++) {
        if (k > 0 && strcmp(out->unhealthy[k - 1], out->unhealthy[i]) == 0)
            free(out->unhealthy[i]);
        else
            out->unhealthy[k++] = out->unhealthy[i];
    }
    out->n = k;
    return MESH_OK;
}

void xds_health_free(xds_health *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->n; i++)
        free(h->unhealthy[i]);
    free(h->unhealthy);
    memset(h, 0, sizeof *h);
}

bool xds_health_is_unhealthy(const xds_health *h, const char *workload_name)
{
    if (!h || h->n == 0 || !workload_name)
        return false;
    return bsearch(&workload_name, h->unhealthy, h->n, sizeof *h->unhealthy, cmp_str) != NULL;
}

bool xds_health_equal(const xds_health *a, const xds_health *b)
{
    size_t na = a ? a->n : 0, nb = b ? b->n : 0;
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (strcmp(a->unhealthy[i], b->unhealthy[i]) != 0)
            return false;
    return true;
}
