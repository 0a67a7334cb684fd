/* common/pb_json.c — protobuf-c to proto3 JSON (see pb_json.h). */
#include "common/pb_json.h"

#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PB_JSON_MAX_DEPTH 48

typedef struct pbj {
    json_out *j;
    const pb_json_opts *o;
    int depth;
} pbj;

static void write_msg(pbj *w, const ProtobufCMessage *m);

static const void *field_ptr(const ProtobufCMessage *m, unsigned off)
{
    return (const char *)m + off;
}

static void base64(json_out *j, const uint8_t *data, size_t len)
{
    size_t n = 4 * ((len + 2) / 3) + 1;
    unsigned char *b = malloc(n);
    if (!b) {
        json_null(j);
        return;
    }
    EVP_EncodeBlock(b, data, (int)len);
    json_str(j, (const char *)b);
    free(b);
}

static int redacted(const pbj *w, const char *name)
{
    for (const char *const *r = w->o ? w->o->redact : NULL; r && *r; r++)
        if (strcmp(*r, name) == 0)
            return 1;
    return 0;
}

static void write_enum(json_out *j, const ProtobufCEnumDescriptor *d, int v)
{
    const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(d, v);
    if (ev)
        json_str(j, ev->name);
    else
        json_int(j, v);
}

/* One scalar or message value at p, of field f. */
static void write_value(pbj *w, const ProtobufCFieldDescriptor *f, const void *p)
{
    json_out *j = w->j;
    char b[32];
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32:
        json_int(j, *(const int32_t *)p);
        break;
    case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32:
        json_int(j, *(const uint32_t *)p);
        break;
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
        snprintf(b, sizeof b, "%" PRId64, *(const int64_t *)p);
        json_str(j, b);
        break;
    case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64:
        snprintf(b, sizeof b, "%" PRIu64, *(const uint64_t *)p);
        json_str(j, b);
        break;
    case PROTOBUF_C_TYPE_FLOAT:
        json_num(j, *(const float *)p);
        break;
    case PROTOBUF_C_TYPE_DOUBLE:
        json_num(j, *(const double *)p);
        break;
    case PROTOBUF_C_TYPE_BOOL:
        json_bool(j, *(const protobuf_c_boolean *)p);
        break;
    case PROTOBUF_C_TYPE_ENUM:
        write_enum(j, f->descriptor, *(const int *)p);
        break;
    case PROTOBUF_C_TYPE_STRING:
        json_str(j, *(char *const *)p ? *(char *const *)p : "");
        break;
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *bd = p;
        base64(j, bd->data, bd->len);
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        write_msg(w, *(ProtobufCMessage *const *)p);
        break;
    }
}

/* Is the value at p the proto3 default (left out)? */
static int is_default(const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32: case PROTOBUF_C_TYPE_ENUM:
        return *(const uint32_t *)p == 0;
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64:
        return *(const uint64_t *)p == 0;
    case PROTOBUF_C_TYPE_FLOAT:
        return *(const float *)p == 0;
    case PROTOBUF_C_TYPE_DOUBLE:
        return *(const double *)p == 0;
    case PROTOBUF_C_TYPE_BOOL:
        return !*(const protobuf_c_boolean *)p;
    case PROTOBUF_C_TYPE_STRING:
        return !*(char *const *)p || !**(char *const *)p;
    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *)p)->len == 0;
    case PROTOBUF_C_TYPE_MESSAGE:
        return *(ProtobufCMessage *const *)p == NULL;
    }
    return 1;
}

static size_t value_size(const ProtobufCFieldDescriptor *f)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64:
        return 8;
    case PROTOBUF_C_TYPE_DOUBLE:
        return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    default:
        return 4;
    }
}

/* A map field: protoc generates a repeated "<Name>Entry" message with key=1, value=2. */
static int is_map(const ProtobufCFieldDescriptor *f)
{
    if (f->label != PROTOBUF_C_LABEL_REPEATED || f->type != PROTOBUF_C_TYPE_MESSAGE)
        return 0;
    const ProtobufCMessageDescriptor *d = f->descriptor;
    size_t nl = strlen(d->short_name);
    return nl > 5 && strcmp(d->short_name + nl - 5, "Entry") == 0 && d->n_fields == 2 &&
           strcmp(d->fields[0].name, "key") == 0 && strcmp(d->fields[1].name, "value") == 0;
}

static void write_map(pbj *w, const ProtobufCFieldDescriptor *f, size_t n,
                      ProtobufCMessage *const *entries)
{
    const ProtobufCMessageDescriptor *d = f->descriptor;
    json_obj_begin(w->j);
    for (size_t i = 0; i < n; i++) {
        const ProtobufCMessage *e = entries[i];
        const ProtobufCFieldDescriptor *kf = &d->fields[0], *vf = &d->fields[1];
        char key[64];
        const void *kp = field_ptr(e, kf->offset);
        if (kf->type == PROTOBUF_C_TYPE_STRING)
            json_key(w->j, *(char *const *)kp ? *(char *const *)kp : "");
        else {
            snprintf(key, sizeof key, "%lld", kf->type == PROTOBUF_C_TYPE_INT64 ||
                                                      kf->type == PROTOBUF_C_TYPE_UINT64
                                                  ? (long long)*(const int64_t *)kp
                                                  : (long long)*(const int32_t *)kp);
            json_key(w->j, key);
        }
        write_value(w, vf, field_ptr(e, vf->offset));
    }
    json_obj_end(w->j);
}

/* Duration / Timestamp / wrappers / Struct family / Any: their JSON forms; 0 if m is none. */
static int write_wkt(pbj *w, const ProtobufCMessage *m)
{
    json_out *j = w->j;
    const ProtobufCMessageDescriptor *d = m->descriptor;
    if (strncmp(d->name, "google.protobuf.", 16) != 0)
        return 0;
    const char *t = d->name + 16;
    if (strcmp(t, "Duration") == 0 || strcmp(t, "Timestamp") == 0) {
        int64_t secs = *(const int64_t *)field_ptr(m, d->fields[0].offset);
        int32_t nanos = *(const int32_t *)field_ptr(m, d->fields[1].offset);
        char b[64];
        if (t[0] == 'D') {
            int neg = secs < 0 || nanos < 0;
            long long s = secs < 0 ? -secs : secs;
            int ns = nanos < 0 ? -nanos : nanos;
            if (ns)
                snprintf(b, sizeof b, "%s%lld.%09ds", neg ? "-" : "", s, ns);
            else
                snprintf(b, sizeof b, "%s%llds", neg ? "-" : "", s);
            /* trim trailing zeros of the fraction, as the mapping allows (3, 6 or 9 digits) */
            char *dot = strchr(b, '.');
            if (dot) {
                size_t len = strlen(b);
                while (len > (size_t)(dot - b) + 4 && b[len - 2] == '0' && b[len - 3] == '0' &&
                       b[len - 4] == '0') {
                    memmove(&b[len - 4], &b[len - 1], 2);
                    len -= 3;
                }
            }
        } else {
            time_t tt = (time_t)secs;
            struct tm tm;
            gmtime_r(&tt, &tm);
            size_t n = strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%S", &tm);
            if (nanos)
                snprintf(b + n, sizeof b - n, ".%09dZ", nanos);
            else
                snprintf(b + n, sizeof b - n, "Z");
        }
        json_str(j, b);
        return 1;
    }
    if (strlen(t) > 5 && strcmp(t + strlen(t) - 5, "Value") == 0 && d->n_fields == 1 &&
        strcmp(d->fields[0].name, "value") == 0) { /* the wrappers */
        write_value(w, &d->fields[0], field_ptr(m, d->fields[0].offset));
        return 1;
    }
    if (strcmp(t, "Any") == 0) {
        const char *url = *(char *const *)field_ptr(m, d->fields[0].offset);
        const ProtobufCBinaryData *v = field_ptr(m, d->fields[1].offset);
        pb_json_write_any(j, url ? url : "", v->data, v->len, w->o);
        return 1;
    }
    if (strcmp(t, "Empty") == 0) {
        json_obj_begin(j);
        json_obj_end(j);
        return 1;
    }
    return 0; /* Struct, Value, ListValue: their fields print close enough for a dump */
}

static void write_field(pbj *w, const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    const void *p = field_ptr(m, f->offset);
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        size_t n = *(const size_t *)field_ptr(m, f->quantifier_offset);
        if (n == 0)
            return;
        json_key(w->j, f->name);
        const char *arr = *(const char *const *)p;
        if (is_map(f)) {
            write_map(w, f, n, (ProtobufCMessage *const *)arr);
            return;
        }
        json_arr_begin(w->j);
        for (size_t i = 0; i < n; i++)
            write_value(w, f, arr + i * value_size(f));
        json_arr_end(w->j);
        return;
    }
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        if (*(const uint32_t *)field_ptr(m, f->quantifier_offset) != f->id)
            return;
    } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_MESSAGE &&
               f->type != PROTOBUF_C_TYPE_STRING && f->quantifier_offset) {
        if (!*(const protobuf_c_boolean *)field_ptr(m, f->quantifier_offset))
            return;
    } else if (is_default(f, p)) {
        return;
    }
    json_key(w->j, f->name);
    if (redacted(w, f->name))
        json_str(w->j, "[redacted]");
    else
        write_value(w, f, p);
}

static void write_msg(pbj *w, const ProtobufCMessage *m)
{
    if (!m) {
        json_null(w->j);
        return;
    }
    if (++w->depth > PB_JSON_MAX_DEPTH) {
        json_str(w->j, "[too deep]");
        w->depth--;
        return;
    }
    if (!write_wkt(w, m)) {
        json_obj_begin(w->j);
        for (unsigned i = 0; i < m->descriptor->n_fields; i++)
            write_field(w, m, &m->descriptor->fields[i]);
        json_obj_end(w->j);
    }
    w->depth--;
}

void pb_json_write(json_out *j, const ProtobufCMessage *m, const pb_json_opts *o)
{
    pbj w = {.j = j, .o = o};
    write_msg(&w, m);
}

void pb_json_write_any(json_out *j, const char *type_url, const uint8_t *data, size_t len,
                       const pb_json_opts *o)
{
    const ProtobufCMessageDescriptor *d = o && o->resolve ? o->resolve(type_url) : NULL;
    ProtobufCMessage *m = d ? protobuf_c_message_unpack(d, NULL, len, data) : NULL;
    json_obj_begin(j);
    json_key_str(j, "@type", type_url);
    if (!m) {
        /* unknown (or undecodable): the bytes as they are */
        json_key(j, "value");
        base64(j, data, len);
        json_obj_end(j);
        return;
    }
    /* A message's fields go beside "@type"; a well-known type goes under "value". */
    json_out inner;
    json_init(&inner);
    pb_json_write(&inner, m, o);
    const char *t = json_text(&inner);
    if (t && t[0] == '{' && strcmp(t, "{}") != 0 && strncmp(d->name, "google.protobuf.", 16) != 0) {
        /* splice the object's members after "@type" */
        size_t n = strlen(t);
        char *members = strndup(t + 1, n - 2);
        if (members) {
            json_raw_members(j, members);
            free(members);
        }
    } else if (t && strncmp(d->name, "google.protobuf.", 16) == 0) {
        json_key(j, "value");
        json_raw(j, t);
    }
    json_free(&inner);
    protobuf_c_message_free_unpacked(m, NULL);
    json_obj_end(j);
}
