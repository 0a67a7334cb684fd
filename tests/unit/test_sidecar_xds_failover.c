/* tests/unit/test_sidecar_xds_failover.c — the pieces of fail-over between meshd
 * replicas: the --meshd list (parsing, refusals), resolution of a name into several
 * replicas (injected resolver and the real getaddrinfo on "localhost"), the rotor's
 * rounds (next replica at once, backoff only after a whole round), and the TCP probe
 * that cuts a long backoff short only on a down -> up edge. The client thread moving
 * between fake replicas is in test_sidecar_xds_client.c. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "sidecar/xds_probe.h"
#include "sidecar/xds_targets.h"

Test(sidecar_xds_targets, parses_a_list)
{
    xdsc_targets t = {0};
    mesh_err err;
    cr_assert_eq(xdsc_targets_parse(&t, "a:1, b.example:15010 ,[::1]:3", &err), MESH_OK, "%s",
                 err.msg);
    cr_assert_eq(t.n_entry, 3);
    cr_assert_str_eq(t.entry[0], "a:1");
    cr_assert_str_eq(t.entry[1], "b.example:15010", "blanks around an item are dropped");
    cr_assert_str_eq(t.entry[2], "[::1]:3");
}

Test(sidecar_xds_targets, refuses_bad_lists)
{
    static const char *bad[] = {"", ",", "a:1,,b:2", "a", "a:", ":1", "a:0", "a:65536", "a:-1",
                                "a:+1", "a:1x", "::1:2", "[::1]", "[::1]2", "[]:1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        xdsc_targets t = {0};
        mesh_err err = {0};
        cr_assert_neq(xdsc_targets_parse(&t, bad[i], &err), MESH_OK, "'%s' accepted", bad[i]);
        cr_assert(strstr(err.msg, "--meshd"), "'%s': %s", bad[i], err.msg);
    }
    char many[1024] = "";
    for (int i = 0; i <= XDSC_TARGETS_MAX; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "%sh%d:1", i ? "," : "", i);
    xdsc_targets t = {0};
    mesh_err err;
    cr_assert_neq(xdsc_targets_parse(&t, many, &err), MESH_OK);
    cr_assert(strstr(err.msg, "more than"), "%s", err.msg);
}

/* "replicas" resolves to three addresses, "gone" to nothing, anything else to itself. */
static int fake_resolve(void *ctx, const char *host, const char *port,
                        char (*out)[XDSC_TARGET_LEN], size_t max, size_t *n, mesh_err *err)
{
    int *calls = ctx;
    (*calls)++;
    *n = 0;
    if (strcmp(host, "gone") == 0)
        return mesh_err_set(err, MESH_EIO, "cannot resolve gone");
    if (strcmp(host, "replicas") == 0) {
        for (int i = 1; i <= 3 && *n < max; i++)
            snprintf(out[(*n)++], XDSC_TARGET_LEN, "127.0.0.%d:%s", i, port);
        return MESH_OK;
    }
    snprintf(out[(*n)++], XDSC_TARGET_LEN, "%s:%s", host, port);
    return MESH_OK;
}

Test(sidecar_xds_targets, a_name_with_several_addresses_is_several_replicas)
{
    int calls = 0;
    xdsc_targets t = {.resolve = fake_resolve, .resolve_ctx = &calls};
    mesh_err err;
    cr_assert_eq(xdsc_targets_parse(&t, "replicas:15010,127.0.0.2:15010,gone:9", &err), MESH_OK);
    cr_assert_eq(xdsc_targets_resolve(&t, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(calls, 3);
    cr_assert_eq(t.n, 4, "three from the name, the duplicate literal once, the unresolved one");
    cr_assert_str_eq(t.addr[0], "127.0.0.1:15010");
    cr_assert_str_eq(t.addr[2], "127.0.0.3:15010");
    cr_assert_str_eq(t.addr[3], "gone:9", "an unresolvable name is kept as written");
    cr_assert(strstr(err.msg, "gone"), "the resolution error is reported: %s", err.msg);
}

Test(sidecar_xds_targets, localhost_resolves_with_getaddrinfo)
{
    xdsc_targets t = {0};
    mesh_err err;
    cr_assert_eq(xdsc_targets_parse(&t, "localhost:15010", &err), MESH_OK);
    cr_assert_eq(xdsc_targets_resolve(&t, &err), MESH_OK, "%s", err.msg);
    cr_assert_geq(t.n, 1);
    bool v4 = false;
    for (size_t i = 0; i < t.n; i++) {
        v4 = v4 || strcmp(t.addr[i], "127.0.0.1:15010") == 0;
        cr_assert(strcmp(t.addr[i], "localhost:15010") != 0, "resolved to numbers");
    }
    cr_assert(v4, "localhost gives 127.0.0.1 (first: %s)", t.addr[0]);
}

Test(sidecar_xds_targets, rounds_back_off_only_when_every_replica_failed)
{
    xdsc_rotor r = {0};
    cr_assert_not(xdsc_rotor_failed(&r, 3), "the second replica is tried at once");
    cr_assert_eq(r.idx, 1);
    cr_assert_not(xdsc_rotor_failed(&r, 3));
    cr_assert_eq(r.idx, 2);
    cr_assert(xdsc_rotor_failed(&r, 3), "all three failed: back off");
    cr_assert_eq(r.idx, 0, "the next round starts over");
    cr_assert_not(xdsc_rotor_failed(&r, 3));
    xdsc_rotor_ok(&r);
    cr_assert_not(xdsc_rotor_failed(&r, 3));
    cr_assert_not(xdsc_rotor_failed(&r, 3), "a success started a new round");
    xdsc_rotor one = {0};
    cr_assert(xdsc_rotor_failed(&one, 1), "one replica: every failure is a whole round");
    cr_assert(xdsc_rotor_failed(&one, 0));

    int calls = 0;
    xdsc_targets t = {.resolve = fake_resolve, .resolve_ctx = &calls};
    mesh_err err;
    cr_assert_eq(xdsc_targets_parse(&t, "replicas:1", &err), MESH_OK);
    cr_assert_eq(xdsc_targets_resolve(&t, &err), MESH_OK);
    xdsc_rotor m = {.idx = 0, .failed = 2};
    xdsc_rotor_move_to(&m, &t, "127.0.0.3:1");
    cr_assert_eq(m.idx, 2);
    cr_assert_eq(m.failed, 0);
    cr_assert_str_eq(xdsc_targets_at(&t, &m), "127.0.0.3:1");
    xdsc_rotor_move_to(&m, &t, "10.0.0.1:1");
    cr_assert_eq(m.idx, 2, "an unknown address leaves the rotor");
}

/* ---- probe ---------------------------------------------------------------------------------- */

static int listener(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(fd, 8), 0);
    socklen_t l = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &l);
    *port = ntohs(a.sin_port);
    return fd;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Steps the probe until it returns something other than PENDING/IDLE, or ms pass. */
static int step_until(xdsc_probe *p, const xdsc_targets *t, int64_t *clock, int64_t ms)
{
    int64_t end = mono_ms() + ms;
    while (mono_ms() < end) {
        int r = xdsc_probe_step(p, t, *clock);
        if (r != XDSC_PROBE_PENDING && r != XDSC_PROBE_IDLE)
            return r;
        usleep(5000);
        *clock += 50;
    }
    return XDSC_PROBE_PENDING;
}

Test(sidecar_xds_probe, fires_only_when_a_replica_comes_back)
{
    int p1, p2;
    int l1 = listener(&p1), l2 = listener(&p2);
    close(l2);          /* a free port nobody listens on: "replica 2 is down" */
    close(l1);          /* replica 1 down too, for now */
    char list[64];
    snprintf(list, sizeof list, "127.0.0.1:%d,127.0.0.1:%d", p1, p2);
    xdsc_targets t = {0};
    mesh_err err;
    cr_assert_eq(xdsc_targets_parse(&t, list, &err), MESH_OK);
    cr_assert_eq(xdsc_targets_resolve(&t, &err), MESH_OK);
    xdsc_probe p;
    xdsc_probe_init(&p);
    int64_t clock = 1000000;
    cr_assert_eq(step_until(&p, &t, &clock, 2000), XDSC_PROBE_ALL_DOWN);

    /* Replica 2 comes back on its port. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                            .sin_port = htons((uint16_t)p2)};
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(fd, 8), 0);
    clock += XDSC_PROBE_EVERY_MS;
    cr_assert_eq(step_until(&p, &t, &clock, 3000), 1, "the probe names the replica that is back");

    /* Up all along: no edge, the backoff keeps deciding. */
    clock += XDSC_PROBE_EVERY_MS;
    int64_t end = mono_ms() + 500;
    while (mono_ms() < end) {
        int r = xdsc_probe_step(&p, &t, clock);
        cr_assert(r < 0, "no shortcut without a down -> up edge (got %d)", r);
        usleep(5000);
        clock += 50;
    }
    xdsc_probe_stop(&p);
    close(fd);
}

Test(sidecar_xds_probe, a_name_that_is_not_numeric_counts_as_down)
{
    xdsc_targets t = {0};
    mesh_err err;
    cr_assert_eq(xdsc_targets_parse(&t, "no-such-host.invalid:1", &err), MESH_OK);
    snprintf(t.addr[0], sizeof t.addr[0], "%s", t.entry[0]);
    t.n = 1;
    xdsc_probe p;
    xdsc_probe_init(&p);
    xdsc_probe_start(&p, &t, 0);
    cr_assert_eq(xdsc_probe_poll(&p, 0), XDSC_PROBE_ALL_DOWN);
    cr_assert_eq(xdsc_probe_poll(&p, 0), XDSC_PROBE_IDLE);
}
