/* common/pb_groups.c — drops unknown protobuf groups before protobuf-c decodes (see pb_groups.h).
 *
 * One walker does both passes: with out == NULL it only checks and measures
 * (the size a message has without its unknown groups), with out it writes that
 * form. pb_strip_groups measures first and writes only when something is to be
 * dropped, so a message without groups is never copied. */
#include "common/pb_groups.h"

#include <stdlib.h>
#include <string.h>

enum {
    WT_VARINT = 0,
    WT_FIXED64 = 1,
    WT_LEN = 2,
    WT_START_GROUP = 3,
    WT_END_GROUP = 4,
    WT_FIXED32 = 5,
};

#define MAX_FIELD_NUMBER 536870911u /* 2^29 - 1 */
#define MAX_VARINT_BYTES 10

typedef struct walk {
    const uint8_t *base; /* the whole message: offsets in errors count from here */
    mesh_err *err;
} walk;

static size_t offset_of(const walk *w, const uint8_t *p)
{
    return (size_t)(p - w->base);
}

/* Reads the varint at *p (before end) into *v and moves *p past it; -1 (err
 * set, naming what it was for) when it is cut off or longer than 10 bytes. */
static int read_varint(walk *w, const uint8_t **p, const uint8_t *end, uint64_t *v,
                       const char *what, const ProtobufCMessageDescriptor *desc)
{
    const uint8_t *q = *p;
    uint64_t val = 0;
    for (int i = 0; i < MAX_VARINT_BYTES; i++, q++) {
        if (q >= end) {
            mesh_err_set(w->err, MESH_EINVAL, "%s at offset %zu (in %s) is cut off by the end "
                         "of the message", what, offset_of(w, *p), desc->name);
            return -1;
        }
        val |= (uint64_t)(*q & 0x7f) << (7 * i);
        if (!(*q & 0x80)) {
            *v = val;
            *p = q + 1;
            return 0;
        }
    }
    mesh_err_set(w->err, MESH_EINVAL, "%s at offset %zu (in %s) is a varint longer than %d bytes",
                 what, offset_of(w, *p), desc->name, MAX_VARINT_BYTES);
    return -1;
}

/* Reads a field's tag: *num its number, *wt its wire type. */
static int read_tag(walk *w, const uint8_t **p, const uint8_t *end, uint32_t *num,
                    unsigned *wt, const ProtobufCMessageDescriptor *desc)
{
    const uint8_t *at = *p;
    uint64_t tag;
    if (read_varint(w, p, end, &tag, "a field tag", desc) != 0)
        return -1;
    /* A tag is 32 bits: protobuf-c and the C++ runtime both drop what a longer
     * varint carries above them, so field numbers stop at 2^29 - 1. */
    *wt = (unsigned)(tag & 7);
    *num = (uint32_t)tag >> 3;
    if (*num == 0) {
        mesh_err_set(w->err, MESH_EINVAL, "field number 0 at offset %zu (in %s) is out of range "
                     "(1 to %u)", offset_of(w, at), desc->name, MAX_FIELD_NUMBER);
        return -1;
    }
    return 0;
}

/* Moves *p past the payload of field num (wire type wt, its tag at `at`
 * already read); wire types 6 and 7 are refused. */
static int skip_scalar(walk *w, const uint8_t **p, const uint8_t *end, uint32_t num,
                       unsigned wt, const ProtobufCMessageDescriptor *desc, const uint8_t *at)
{
    uint64_t v;
    size_t need;
    switch (wt) {
    case WT_VARINT:
        return read_varint(w, p, end, &v, "a varint field", desc);
    case WT_FIXED64:
        need = 8;
        break;
    case WT_FIXED32:
        need = 4;
        break;
    case WT_LEN:
        if (read_varint(w, p, end, &v, "a length prefix", desc) != 0)
            return -1;
        if (v > (uint64_t)(end - *p)) {
            mesh_err_set(w->err, MESH_EINVAL, "field %u at offset %zu (in %s) is %llu bytes "
                         "long, past the end of the message (%zu bytes left)", num,
                         offset_of(w, at), desc->name, (unsigned long long)v,
                         (size_t)(end - *p));
            return -1;
        }
        *p += v;
        return 0;
    default:
        mesh_err_set(w->err, MESH_EINVAL, "field %u at offset %zu (in %s) has wire type %u, "
                     "which protobuf does not define", num, offset_of(w, at), desc->name, wt);
        return -1;
    }
    if ((size_t)(end - *p) < need) {
        mesh_err_set(w->err, MESH_EINVAL, "field %u at offset %zu (in %s) is cut off by the end "
                     "of the message", num, offset_of(w, at), desc->name);
        return -1;
    }
    *p += need;
    return 0;
}

static int too_deep(walk *w, const uint8_t *at, uint32_t num,
                    const ProtobufCMessageDescriptor *desc)
{
    mesh_err_set(w->err, MESH_EINVAL, "field %u at offset %zu (in %s) nests messages and groups "
                 "deeper than %d levels", num, offset_of(w, at), desc->name,
                 PB_GROUPS_MAX_DEPTH);
    return -1;
}

/* Moves *p past the group field num whose start tag began at `at` (already
 * read), nested groups included, through its matching end tag. */
static int skip_group(walk *w, const uint8_t **p, const uint8_t *end, uint32_t num,
                      const uint8_t *at, int depth, const ProtobufCMessageDescriptor *desc)
{
    if (depth > PB_GROUPS_MAX_DEPTH)
        return too_deep(w, at, num, desc);
    while (*p < end) {
        const uint8_t *field_at = *p;
        uint32_t inner;
        unsigned wt;
        if (read_tag(w, p, end, &inner, &wt, desc) != 0)
            return -1;
        if (wt == WT_END_GROUP) {
            if (inner == num)
                return 0;
            mesh_err_set(w->err, MESH_EINVAL, "end of group %u at offset %zu (in %s) does not "
                         "match the open group %u (offset %zu)", inner, offset_of(w, field_at),
                         desc->name, num, offset_of(w, at));
            return -1;
        }
        int rc = wt == WT_START_GROUP
                     ? skip_group(w, p, end, inner, field_at, depth + 1, desc)
                     : skip_scalar(w, p, end, inner, wt, desc, field_at);
        if (rc != 0)
            return -1;
    }
    mesh_err_set(w->err, MESH_EINVAL, "group %u at offset %zu (in %s) is not closed before the "
                 "end of its message (offset %zu)", num, offset_of(w, at), desc->name,
                 offset_of(w, end));
    return -1;
}

/* A varint of exactly `width` bytes (padded with continuation bits): the
 * stripped length of a nested message in the place of its original prefix. */
static void put_padded_varint(uint8_t *out, uint64_t v, size_t width)
{
    for (size_t i = 0; i + 1 < width; i++) {
        out[i] = (uint8_t)((v & 0x7f) | 0x80);
        v >>= 7;
    }
    out[width - 1] = (uint8_t)(v & 0x7f);
}

/* Walks the fields of one desc message in [p, end) at nesting depth. Returns
 * 0 with *kept the message's size without its unknown groups (written to out
 * when out is non-NULL), or -1 with the error set. */
static int walk_message(walk *w, const ProtobufCMessageDescriptor *desc, const uint8_t *p,
                        const uint8_t *end, int depth, uint8_t *out, size_t *kept)
{
    size_t n = 0;
    while (p < end) {
        const uint8_t *at = p;
        uint32_t num;
        unsigned wt;
        if (read_tag(w, &p, end, &num, &wt, desc) != 0)
            return -1;
        const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(desc, num);
        if (wt == WT_END_GROUP) {
            mesh_err_set(w->err, MESH_EINVAL, "end of group %u at offset %zu (in %s) has no "
                         "start", num, offset_of(w, at), desc->name);
            return -1;
        }
        if (wt == WT_START_GROUP) {
            if (f) {
                mesh_err_set(w->err, MESH_EINVAL, "field %u (%s) at offset %zu (in %s) is sent "
                             "as a group; the schema has it as a %s field", num, f->name,
                             offset_of(w, at), desc->name,
                             f->type == PROTOBUF_C_TYPE_MESSAGE ? "message" : "scalar");
                return -1;
            }
            if (skip_group(w, &p, end, num, at, depth + 1, desc) != 0)
                return -1;
            continue; /* unknown: dropped */
        }
        if (wt == WT_LEN && f && f->type == PROTOBUF_C_TYPE_MESSAGE) {
            if (depth + 1 > PB_GROUPS_MAX_DEPTH)
                return too_deep(w, at, num, desc);
            const uint8_t *len_at = p;
            uint64_t len;
            if (read_varint(w, &p, end, &len, "a length prefix", desc) != 0)
                return -1;
            if (len > (uint64_t)(end - p)) {
                mesh_err_set(w->err, MESH_EINVAL, "field %u (%s) at offset %zu (in %s) is %llu "
                             "bytes long, past the end of the message (%zu bytes left)", num,
                             f->name, offset_of(w, at), desc->name, (unsigned long long)len,
                             (size_t)(end - p));
                return -1;
            }
            size_t head = (size_t)(p - at), width = (size_t)(p - len_at), sub = 0;
            if (out)
                memcpy(out + n, at, (size_t)(len_at - at));
            if (walk_message(w, f->descriptor, p, p + len, depth + 1, out ? out + n + head : NULL,
                             &sub) != 0)
                return -1;
            if (out)
                put_padded_varint(out + n + (size_t)(len_at - at), sub, width);
            n += head + sub;
            p += len;
            continue;
        }
        if (skip_scalar(w, &p, end, num, wt, desc, at) != 0)
            return -1;
        if (out)
            memcpy(out + n, at, (size_t)(p - at));
        n += (size_t)(p - at);
    }
    *kept = n;
    return 0;
}

int pb_strip_groups(const ProtobufCMessageDescriptor *desc, const uint8_t *buf, size_t len,
                    uint8_t **out, size_t *out_len, mesh_err *err)
{
    *out = NULL;
    *out_len = len;
    walk w = {.base = buf, .err = err};
    size_t kept = 0;
    if (len == 0)
        return MESH_OK;
    if (walk_message(&w, desc, buf, buf + len, 0, NULL, &kept) != 0)
        return MESH_EINVAL;
    if (kept == len)
        return MESH_OK;
    uint8_t *copy = malloc(kept ? kept : 1);
    if (!copy)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory copying a %s of %zu bytes",
                            desc->name, len);
    size_t written = 0;
    if (walk_message(&w, desc, buf, buf + len, 0, copy, &written) != 0 || written != kept) {
        free(copy);
        return mesh_err_set(err, MESH_EINTERNAL, "dropping unknown groups from a %s: the "
                            "second pass disagrees with the first", desc->name);
    }
    *out = copy;
    *out_len = kept;
    return MESH_OK;
}

ProtobufCMessage *pb_unpack(const ProtobufCMessageDescriptor *desc, const uint8_t *buf,
                            size_t len, mesh_err *err)
{
    uint8_t *copy = NULL;
    size_t n = len;
    mesh_err why = {0};
    if (pb_strip_groups(desc, buf, len, &copy, &n, &why) != MESH_OK) {
        if (why.code == MESH_EINVAL)
            mesh_err_set(err, MESH_EINVAL, "%s of %zu bytes is not valid protobuf: %s",
                         desc->short_name, len, why.msg);
        else
            mesh_err_set(err, why.code, "%s", why.msg);
        return NULL;
    }
    ProtobufCMessage *m = protobuf_c_message_unpack(desc, NULL, n, copy ? copy : buf);
    free(copy);
    if (!m)
        mesh_err_set(err, MESH_EINVAL, "%s of %zu bytes is not valid protobuf", desc->short_name,
                     len);
    return m;
}
