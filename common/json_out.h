/* common/json_out.h — a small streaming JSON writer for CLI output and admin endpoints.
 *
 * Builds into a growable buffer; the writer tracks commas so callers only say
 * what to emit: json_obj_begin(j); json_key_str(j, "id", id); json_obj_end(j).
 * Strings are escaped per RFC 8259; the output is valid UTF-8 whatever the
 * input (invalid bytes become U+FFFD, control characters \u escapes). Allocation failure is sticky (j->oom) and
 * checked once at the end. */
#ifndef MESH_COMMON_JSON_OUT_H
#define MESH_COMMON_JSON_OUT_H

#include <stddef.h>
#include <stdint.h>

typedef struct json_out {
    char *buf;
    size_t len, cap;
    int need_comma;   /* a value was written at the current level */
    int oom;
} json_out;

void json_init(json_out *j);
void json_free(json_out *j);
/* Returns the NUL-terminated text (owned by j) or NULL after an allocation failure. */
const char *json_text(json_out *j);

void json_obj_begin(json_out *j);
void json_obj_end(json_out *j);
void json_arr_begin(json_out *j);
void json_arr_end(json_out *j);
void json_key(json_out *j, const char *key);   /* next value belongs to key */

void json_str(json_out *j, const char *s);     /* NULL writes null */
void json_int(json_out *j, int64_t v);
void json_num(json_out *j, double v);
void json_bool(json_out *j, int v);
void json_null(json_out *j);
/* One complete JSON value written by another json_out (json_text of it),
 * inserted as is: lets a caller build a value aside and drop it on error. */
void json_raw(json_out *j, const char *value);
/* Members of an object written by another json_out, without its braces
 * ("\"a\":1,\"b\":2"), added to the object being written; "" adds none. */
void json_raw_members(json_out *j, const char *members);

void json_key_str(json_out *j, const char *key, const char *s);
void json_key_int(json_out *j, const char *key, int64_t v);
void json_key_bool(json_out *j, const char *key, int v);

#endif
