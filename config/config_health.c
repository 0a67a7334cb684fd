/* config/config_health.c — a service's endpoint-health defaults and the outlier
 * detection values in force. On their own (no libyaml, no store) so the xDS compiler
 * links without the YAML parser (tests/conformance/xds_dump). */
#include "config/config_internal.h"

#include <string.h>

void config_service_health_defaults(mesh_service *s)
{
    s->outlier = (mesh_outlier){
        .consecutive_5xx = CONFIG_DEFAULT_OUTLIER_5XX,
        .consecutive_gateway_failure = 0,
        .interval_ms = CONFIG_DEFAULT_OUTLIER_INTERVAL_MS,
        .base_ejection_ms = CONFIG_DEFAULT_BASE_EJECTION_MS,
        .max_ejection_ms = CONFIG_DEFAULT_MAX_EJECTION_MS,
        .max_ejection_percent = CONFIG_DEFAULT_MAX_EJECTION_PCT,
    };
    memset(&s->health_check, 0, sizeof s->health_check);
    memset(&s->circuit_breakers, 0, sizeof s->circuit_breakers);
}

/* Field by field: mesh_outlier has padding (after max_ejection_percent), which
 * a compound literal leaves undefined, so memcmp would compare stack garbage. */
int config_outlier_equal(const mesh_outlier *a, const mesh_outlier *b)
{
    return a->consecutive_5xx == b->consecutive_5xx &&
           a->consecutive_gateway_failure == b->consecutive_gateway_failure &&
           a->interval_ms == b->interval_ms && a->base_ejection_ms == b->base_ejection_ms &&
           a->max_ejection_ms == b->max_ejection_ms &&
           a->max_ejection_percent == b->max_ejection_percent;
}

const mesh_outlier *config_service_outlier(const mesh_service *s, mesh_outlier *buf)
{
    static const mesh_outlier unset;
    if (!config_outlier_equal(&s->outlier, &unset))
        return &s->outlier;
    mesh_service d;
    config_service_health_defaults(&d);
    *buf = d.outlier;
    return buf;
}
