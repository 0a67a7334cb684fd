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

const mesh_outlier *config_service_outlier(const mesh_service *s, mesh_outlier *buf)
{
    static const mesh_outlier unset;
    if (memcmp(&s->outlier, &unset, sizeof unset) != 0)
        return &s->outlier;
    mesh_service d;
    config_service_health_defaults(&d);
    *buf = d.outlier;
    return buf;
}
