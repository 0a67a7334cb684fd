/* bench/bench_pb_groups.c — what the unknown-group walk (common/pb_groups.c) costs
 * meshd per request, against protobuf-c's plain decode of the same bytes.
 *
 *   bench_pb_groups [ITERATIONS]     one JSON line per message shape on stdout
 *
 * Shapes: an ACK as Envoy sends it (Node on every request: id, cluster, a Struct
 * of metadata, build version, client features, 150 extensions: ~12 KB), a small
 * request (Node id only, one name), and the Envoy-sized one with unknown groups
 * (the copy path). For each: ns per plain protobuf-c unpack+free, per walk alone,
 * per pb_unpack (walk + unpack, what meshd does), and the ratio pb_unpack/plain
 * (for the shape with groups, plain is the same message without them: protobuf-c
 * refuses it as it is).
 * The reference (plain decode) is measured in the same run, interleaved; each
 * figure is the fastest of 20 rounds. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/pb_groups.h"
#include "envoy/service/discovery/v3/discovery.pb-c.h"

#define DESC (&envoy__service__discovery__v3__discovery_request__descriptor)

typedef struct wbuf {
    uint8_t *b;
    size_t n, cap;
} wbuf;

static void put(wbuf *w, const void *p, size_t n)
{
    if (w->n + n > w->cap) {
        w->cap = (w->n + n) * 2;
        w->b = realloc(w->b, w->cap);
        if (!w->b)
            exit(1);
    }
    memcpy(w->b + w->n, p, n);
    w->n += n;
}

static void varint(wbuf *w, uint64_t v)
{
    uint8_t b[10];
    size_t n = 0;
    while (v >= 0x80) {
        b[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    b[n++] = (uint8_t)v;
    put(w, b, n);
}

static void ld(wbuf *w, uint32_t num, const void *p, size_t n)
{
    varint(w, (uint64_t)num << 3 | 2);
    varint(w, n);
    put(w, p, n);
}

static void str(wbuf *w, uint32_t num, const char *s)
{
    ld(w, num, s, strlen(s));
}

static void sub(wbuf *w, uint32_t num, wbuf *inner)
{
    ld(w, num, inner->b, inner->n);
    free(inner->b);
    memset(inner, 0, sizeof *inner);
}

static void group(wbuf *w, uint32_t num)
{
    varint(w, (uint64_t)num << 3 | 3);
    str(w, 1, "a field of a newer schema");
    varint(w, 2 << 3 | 0);
    varint(w, 12345);
    varint(w, (uint64_t)num << 3 | 4);
}

static void envoy_node(wbuf *node, int with_groups)
{
    str(node, 1, "sidecar~10.1.2.3~web-7d9f8c-abcde.demo~demo.svc.cluster.local");
    str(node, 2, "web.demo");
    wbuf meta = {0};
    for (int i = 0; i < 10; i++) {
        wbuf entry = {0}, value = {0};
        char k[32], v[64];
        snprintf(k, sizeof k, "META_KEY_%d", i);
        snprintf(v, sizeof v, "some metadata value number %d", i);
        str(&value, 3, v); /* Value.string_value */
        str(&entry, 1, k);
        sub(&entry, 2, &value);
        sub(&meta, 1, &entry);
    }
    if (with_groups)
        group(&meta, 40);
    sub(node, 3, &meta);
    str(node, 6, "envoy");
    wbuf bv = {0}, sv = {0};
    varint(&sv, 1 << 3);
    varint(&sv, 1);
    varint(&sv, 2 << 3);
    varint(&sv, 28);
    sub(&bv, 1, &sv);
    sub(node, 8, &bv);
    for (int i = 0; i < 150; i++) {
        wbuf ext = {0};
        char name[64];
        snprintf(name, sizeof name, "envoy.filters.http.extension_number_%d", i);
        str(&ext, 1, name);
        str(&ext, 2, "envoy.filters.http");
        if (with_groups && i % 50 == 0)
            group(&ext, 30);
        sub(node, 9, &ext);
    }
    for (int i = 0; i < 8; i++)
        str(node, 10, "envoy.lb.does_not_support_overprovisioning");
    if (with_groups)
        group(node, 99);
}

static void request(wbuf *w, int big, int with_groups)
{
    wbuf node = {0};
    if (big)
        envoy_node(&node, with_groups);
    else
        str(&node, 1, "web-1");
    str(w, 1, "7");
    sub(w, 2, &node);
    str(w, 3, "default");
    if (big)
        str(w, 3, "ROOTCA");
    str(w, 4, "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret");
    str(w, 5, "42");
    if (with_groups)
        group(w, 1000);
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

enum { PLAIN, WALK, PB_UNPACK, MODES };

static void run_once(int mode, const wbuf *w)
{
    mesh_err err = {0};
    if (mode == WALK) {
        uint8_t *out = NULL;
        size_t n = 0;
        if (pb_strip_groups(DESC, w->b, w->n, &out, &n, &err) != MESH_OK)
            exit(1);
        free(out);
        return;
    }
    ProtobufCMessage *m = mode == PLAIN ? protobuf_c_message_unpack(DESC, NULL, w->n, w->b)
                                        : pb_unpack(DESC, w->b, w->n, &err);
    if (!m && mode == PB_UNPACK) {
        fprintf(stderr, "bench_pb_groups: %s\n", err.msg);
        exit(1);
    }
    if (m)
        protobuf_c_message_free_unpacked(m, NULL);
}

/* plain decodes ref (w itself, or w without its groups, which protobuf-c refuses). */
static void bench(const char *shape, const wbuf *w, const wbuf *ref, long iters)
{
    /* Rounds of each mode in turn, so a frequency change or a neighbour's load
     * hits all three alike; each figure is the fastest round's (the least
     * disturbed: the machine is shared). */
    enum { ROUNDS = 20 };
    double ns[MODES];
    long per_round = iters / ROUNDS > 0 ? iters / ROUNDS : 1;
    for (int mode = 0; mode < MODES; mode++)
        ns[mode] = 1e300;
    for (int round = 0; round < ROUNDS; round++)
        for (int mode = 0; mode < MODES; mode++) {
            double t0 = now_ns();
            for (long i = 0; i < per_round; i++)
                run_once(mode, mode == PLAIN ? ref : w);
            double t = (now_ns() - t0) / (double)per_round;
            if (t < ns[mode])
                ns[mode] = t;
        }
    printf("{\"shape\": \"%s\", \"bytes\": %zu, \"iterations\": %ld, \"plain_ns\": %.0f, "
           "\"walk_ns\": %.0f, \"pb_unpack_ns\": %.0f, \"ratio_pb_unpack_to_plain\": %.3f}\n",
           shape, w->n, per_round * ROUNDS, ns[PLAIN], ns[WALK], ns[PB_UNPACK],
           ns[PB_UNPACK] / ns[PLAIN]);
}

int main(int argc, char **argv)
{
    long iters = argc > 1 ? atol(argv[1]) : 20000;
    if (iters < 10)
        iters = 10;
    wbuf small = {0}, big = {0}, grouped = {0};
    request(&small, 0, 0);
    request(&big, 1, 0);
    request(&grouped, 1, 1);
    bench("small", &small, &small, iters * 10);
    bench("envoy_ack", &big, &big, iters);
    bench("envoy_ack_with_groups", &grouped, &big, iters);
    free(small.b);
    free(big.b);
    free(grouped.b);
    return 0;
}
