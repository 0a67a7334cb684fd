/* sidecar/dp_health.c — outlier ejection and health-check thresholds (see dp_health.h). */
#include "sidecar/dp_health.h"

static bool is_5xx(int result)
{
    return result < 0 || result >= 500;
}

static bool is_gateway_failure(int result)
{
    return result < 0 || result == 502 || result == 503 || result == 504;
}

/* The level after the intervals h spent in since it last changed. */
static uint32_t decayed_level(const dp_outlier_host *h, const dp_outlier_cfg *cfg,
                              int64_t now_ms)
{
    if (h->ejected || h->ejection_level == 0 || cfg->interval_ms <= 0)
        return h->ejection_level;
    int64_t steps = (now_ms - h->level_since_ms) / cfg->interval_ms;
    return steps >= (int64_t)h->ejection_level ? 0 : h->ejection_level - (uint32_t)steps;
}

bool dp_outlier_ejected(dp_outlier_host *h, int64_t now_ms)
{
    if (h->ejected && now_ms >= h->ejected_until_ms) {
        h->ejected = false;
        h->level_since_ms = now_ms;
        h->consecutive_5xx = 0;
        h->consecutive_gateway = 0;
    }
    return h->ejected;
}

int64_t dp_outlier_next_ejection_ms(const dp_outlier_host *h, const dp_outlier_cfg *cfg,
                                    int64_t now_ms)
{
    uint32_t level = decayed_level(h, cfg, now_ms) + 1;
    int64_t max = cfg->max_ejection_ms > 0 ? cfg->max_ejection_ms : DP_DEFAULT_MAX_EJECTION_MS;
    int64_t base = cfg->base_ejection_ms > 0 ? cfg->base_ejection_ms : DP_DEFAULT_BASE_EJECTION_MS;
    if (base >= max)
        return base;
    if ((int64_t)level > max / base)
        return max;     /* also keeps base x level from overflowing */
    int64_t ms = base * (int64_t)level;
    return ms > max ? max : ms;
}

bool dp_outlier_record(dp_outlier_host *h, const dp_outlier_cfg *cfg, int result,
                       int64_t now_ms, size_t n_ejected, size_t n_hosts)
{
    if (!cfg->enabled || dp_outlier_ejected(h, now_ms))
        return false;   /* results of requests that started before the ejection */
    if (!is_5xx(result)) {
        h->consecutive_5xx = 0;
        h->consecutive_gateway = 0;
        return false;
    }
    h->consecutive_5xx++;
    if (is_gateway_failure(result))
        h->consecutive_gateway++;
    else
        h->consecutive_gateway = 0;
    bool trip = (cfg->consecutive_5xx > 0 && h->consecutive_5xx >= cfg->consecutive_5xx) ||
                (cfg->consecutive_gateway_failure > 0 &&
                 h->consecutive_gateway >= cfg->consecutive_gateway_failure);
    if (!trip)
        return false;
    /* Counters restart either way: a refused ejection is retried after
     * another full run of failures, as in Envoy. */
    h->consecutive_5xx = 0;
    h->consecutive_gateway = 0;
    if (n_hosts == 0 || n_ejected * 100 >= (size_t)cfg->max_ejection_percent * n_hosts)
        return false;
    int64_t ms = dp_outlier_next_ejection_ms(h, cfg, now_ms);
    h->ejection_level = decayed_level(h, cfg, now_ms) + 1;
    h->level_since_ms = now_ms;
    h->ejected = true;
    h->ejected_until_ms = now_ms + ms;
    h->ejections_total++;
    return true;
}

bool dp_hc_record(dp_hc_host *h, const dp_health_check_cfg *cfg, bool success)
{
    uint32_t healthy = cfg->healthy_threshold ? cfg->healthy_threshold : 1;
    uint32_t unhealthy = cfg->unhealthy_threshold ? cfg->unhealthy_threshold : 1;
    if (success) {
        h->probes_ok++;
        h->failures = 0;
        h->successes++;
        if (h->failed && h->successes >= healthy) {
            h->failed = false;
            return true;
        }
        return false;
    }
    h->probes_failed++;
    h->successes = 0;
    h->failures++;
    if (!h->failed && h->failures >= unhealthy) {
        h->failed = true;
        return true;
    }
    return false;
}

int64_t dp_hc_first_delay_ms(const dp_health_check_cfg *cfg, uint64_t r)
{
    int64_t interval = cfg->interval_ms > 0 ? cfg->interval_ms : 1000;
    int64_t jitter = cfg->interval_jitter_ms + interval * (int64_t)cfg->interval_jitter_percent / 100;
    if (jitter <= 0)
        jitter = interval / 10;
    if (jitter > interval)
        jitter = interval;
    return (int64_t)(r % (uint64_t)(jitter + 1));
}

int64_t dp_hc_next_delay_ms(const dp_health_check_cfg *cfg, uint64_t r)
{
    int64_t interval = cfg->interval_ms > 0 ? cfg->interval_ms : 1000;
    int64_t jitter = cfg->interval_jitter_ms + interval * (int64_t)cfg->interval_jitter_percent / 100;
    if (jitter <= 0)
        return interval;
    return interval + (int64_t)(r % (uint64_t)(jitter + 1));
}
