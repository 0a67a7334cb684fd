/* tests/unit/test_ca_spiffe.c — SPIFFE ID parsing, validation and formatting. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "ca/spiffe_id.h"

Test(ca_spiffe, parses_workload_id)
{
    spiffe_id_parts id;
    mesh_err err = {0};
    cr_assert_eq(spiffe_id_parse_workload("spiffe://example.org/ns/default/sa/web", &id, &err),
                 MESH_OK, "%s", err.msg);
    cr_assert_str_eq(id.trust_domain, "example.org");
    cr_assert_str_eq(id.path, "/ns/default/sa/web");
    cr_assert_str_eq(id.ns, "default");
    cr_assert_str_eq(id.sa, "web");
}

Test(ca_spiffe, parses_trust_domain_id_and_other_shapes)
{
    spiffe_id_parts id;
    mesh_err err = {0};
    cr_assert_eq(spiffe_id_parse("spiffe://example.org", &id, &err), MESH_OK, "%s", err.msg);
    cr_assert_str_eq(id.path, "");
    cr_assert_str_eq(id.ns, "");
    cr_assert_eq(spiffe_id_parse("spiffe://a-b_c.9/Path.With-Mixed_CASE/x", &id, &err), MESH_OK,
                 "%s", err.msg);
    cr_assert_str_eq(id.trust_domain, "a-b_c.9");
    cr_assert_str_eq(id.ns, "", "not ns/sa shaped");
    /* ns/sa shape needs exactly four segments */
    cr_assert_eq(spiffe_id_parse("spiffe://td/ns/a/sa/b/c", &id, &err), MESH_OK);
    cr_assert_str_eq(id.ns, "");
}

Test(ca_spiffe, length_limit_is_2048_bytes)
{
    char buf[2100];
    spiffe_id_parts id;
    mesh_err err = {0};
    strcpy(buf, "spiffe://example.org/");
    size_t n = strlen(buf);
    memset(buf + n, 'a', 2048 - n);
    buf[2048] = '\0';
    cr_assert_eq(spiffe_id_parse(buf, &id, &err), MESH_OK, "exactly 2048: %s", err.msg);
    buf[2048] = 'a';
    buf[2049] = '\0';
    cr_assert_eq(spiffe_id_parse(buf, &id, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "longer than 2048"), "%s", err.msg);
}

struct bad_case {
    const char *uri;
    const char *msg;
};

Test(ca_spiffe, rejects_malformed_ids_with_specific_messages)
{
    static const struct bad_case cases[] = {
        {"", "empty"},
        {"https://example.org/x", "must start with 'spiffe://'"},
        {"example.org/x", "must start with 'spiffe://'"},
        {"SPIFFE://example.org/x", "lowercase 'spiffe://'"},
        {"spiffe://Example.org/x", "trust domain must be lowercase"},
        {"spiffe://EXAMPLE.ORG", "trust domain must be lowercase"},
        {"spiffe:///x", "trust domain is empty"},
        {"spiffe://", "trust domain is empty"},
        {"spiffe://example.org//x", "empty segment"},
        {"spiffe://example.org/x/", "trailing '/'"},
        {"spiffe://example.org/", "trailing '/'"},
        {"spiffe://example.org/ns/../sa/x", "'.' and '..'"},
        {"spiffe://example.org/./x", "'.' and '..'"},
        {"spiffe://example.org/x/..", "'.' and '..'"},
        {"spiffe://example.org/x?y=1", "query"},
        {"spiffe://example.org?y=1", "query"},
        {"spiffe://example.org/x#frag", "fragment"},
        {"spiffe://example.org:8443/x", "port"},
        {"spiffe://user@example.org/x", "userinfo"},
        {"spiffe://user:pw@example.org/x", "port"},
        {"spiffe://example.org/x%20y", "percent-encoding"},
        {"spiffe://example.org/x y", "byte 0x20"},
        {"spiffe://exa$mple.org/x", "character '$'"},
        {"spiffe://example.org/x\xc3\xa9", "byte 0xc3"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        spiffe_id_parts id;
        mesh_err err = {0};
        int rc = spiffe_id_parse(cases[i].uri, &id, &err);
        cr_expect_eq(rc, MESH_EINVAL, "'%s' should be rejected", cases[i].uri);
        cr_expect(strstr(err.msg, cases[i].msg), "'%s': message '%s' lacks '%s'", cases[i].uri,
                  err.msg, cases[i].msg);
    }
    mesh_err err = {0};
    cr_assert_eq(spiffe_id_parse(NULL, NULL, &err), MESH_EINVAL);
}

Test(ca_spiffe, long_trust_domain_rejected)
{
    char buf[400] = "spiffe://";
    memset(buf + 9, 'a', 256);
    strcpy(buf + 9 + 256, "/x");
    mesh_err err = {0};
    cr_assert_eq(spiffe_id_parse(buf, NULL, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "limit is 255"), "%s", err.msg);
}

Test(ca_spiffe, workload_parse_requires_ns_sa_shape)
{
    static const char *bad[] = {
        "spiffe://example.org",
        "spiffe://example.org/ns/default",
        "spiffe://example.org/ns/default/sa",
        "spiffe://example.org/ns/default/sa/web/extra",
        "spiffe://example.org/foo/default/sa/web",
        "spiffe://example.org/ns/default/xx/web",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mesh_err err = {0};
        spiffe_id_parts id;
        cr_expect_eq(spiffe_id_parse_workload(bad[i], &id, &err), MESH_EINVAL, "%s", bad[i]);
        cr_expect(strstr(err.msg, "not a workload identity"), "%s: %s", bad[i], err.msg);
    }
    /* a malformed ID reports the syntax problem, not the shape */
    mesh_err err = {0};
    cr_assert_eq(spiffe_id_parse_workload("spiffe://example.org/ns//sa/web", NULL, &err),
                 MESH_EINVAL);
    cr_assert(strstr(err.msg, "empty segment"), "%s", err.msg);
}

Test(ca_spiffe, trust_domain_validation)
{
    mesh_err err = {0};
    cr_assert_eq(spiffe_id_valid_trust_domain("example.org", &err), MESH_OK);
    cr_assert_eq(spiffe_id_valid_trust_domain("cluster-1.local_x", &err), MESH_OK);
    cr_assert_eq(spiffe_id_valid_trust_domain("", &err), MESH_EINVAL);
    cr_assert_eq(spiffe_id_valid_trust_domain(NULL, &err), MESH_EINVAL);
    cr_assert_eq(spiffe_id_valid_trust_domain("Example.org", &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "lowercase"), "%s", err.msg);
    cr_assert_eq(spiffe_id_valid_trust_domain("spiffe://example.org", &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "without the 'spiffe://'"), "%s", err.msg);
    cr_assert_eq(spiffe_id_valid_trust_domain("example.org:443", &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "port"), "%s", err.msg);
    cr_assert_eq(spiffe_id_valid_trust_domain("example.org/x", &err), MESH_EINVAL);
    char big[300];
    memset(big, 'a', 256);
    big[256] = '\0';
    cr_assert_eq(spiffe_id_valid_trust_domain(big, &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "longer than 255"), "%s", err.msg);
}

Test(ca_spiffe, format_workload)
{
    char buf[256];
    mesh_err err = {0};
    cr_assert_eq(spiffe_id_format_workload(buf, sizeof buf, "example.org", "prod", "api", &err),
                 MESH_OK, "%s", err.msg);
    cr_assert_str_eq(buf, "spiffe://example.org/ns/prod/sa/api");
    spiffe_id_parts id;
    cr_assert_eq(spiffe_id_parse_workload(buf, &id, &err), MESH_OK);
    cr_assert_str_eq(id.sa, "api");

    cr_assert_eq(spiffe_id_format_workload(buf, sizeof buf, "Bad", "prod", "api", &err),
                 MESH_EINVAL);
    cr_assert_eq(spiffe_id_format_workload(buf, sizeof buf, "td", "a/b", "api", &err),
                 MESH_EINVAL);
    cr_assert(strstr(err.msg, "namespace"), "%s", err.msg);
    cr_assert_eq(spiffe_id_format_workload(buf, sizeof buf, "td", "ns", "..", &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "service account"), "%s", err.msg);
    cr_assert_eq(spiffe_id_format_workload(buf, sizeof buf, "td", "", "x", &err), MESH_EINVAL);
    cr_assert_eq(spiffe_id_format_workload(buf, 10, "td", "ns", "sa", &err), MESH_EINVAL);
    cr_assert(strstr(err.msg, "does not fit"), "%s", err.msg);
}
