/* tests/unit/test_sidecar_flags.c — mesh-sidecar's command line follows the
 * one duration rule (common/duration.h): a bare number is seconds, " +5m" and
 * out-of-range values are refused with the flag named. meshd, meshctl, its
 * drill and mesh-xdsclient are checked end to end by
 * tests/e2e/test_cli_durations.sh (meshd's flag parser cannot be linked
 * without its main). */
#include <criterion/criterion.h>
#include <string.h>

#include "sidecar/run.h"

#define ARGC(a) ((int)(sizeof(a) / sizeof(a[0])) - 1)

static int sidecar_parse(char **argv, int argc, sc_opts *o, mesh_err *err)
{
    int help = 0;
    memset(err, 0, sizeof *err);
    return sc_parse_flags(argc, argv, o, &help, err);
}

Test(sidecar_flags, durations)
{
    char *argv[] = {"mesh-sidecar", "--meshd", "127.0.0.1:1", "--state-dir", "d",
                    "--drain-time", "3", "--reconnect-max", "1500ms", NULL};
    sc_opts o;
    mesh_err err;
    cr_assert_eq(sidecar_parse(argv, ARGC(argv), &o, &err), MESH_OK, "%s", err.msg);
    cr_assert_eq(o.drain_ms, 3000, "a bare --drain-time is seconds");
    cr_assert_eq(o.reconnect_max_ms, 1500);
}

Test(sidecar_flags, bad_values_are_refused_naming_the_flag)
{
    static const struct { const char *flag, *value; } bad[] = {
        {"--drain-time", " +5m"},    {"--drain-time", "6m"},      {"--drain-time", "2 s"},
        {"--reconnect-max", " +5m"}, {"--reconnect-max", "10ms"}, {"--reconnect-max", "2h"},
        {"--reconnect-max", "fast"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *argv[] = {"mesh-sidecar", "--meshd", "127.0.0.1:1", "--state-dir", "d",
                        (char *)bad[i].flag, (char *)bad[i].value, NULL};
        sc_opts o;
        mesh_err err;
        cr_assert_neq(sidecar_parse(argv, ARGC(argv), &o, &err), MESH_OK, "%s '%s' accepted",
                      bad[i].flag, bad[i].value);
        cr_assert(strstr(err.msg, bad[i].flag), "%s '%s': %s", bad[i].flag, bad[i].value,
                  err.msg);
    }
}

Test(sidecar_flags, several_meshd_replicas)
{
    char *argv[] = {"mesh-sidecar", "--meshd", "127.0.0.1:1,127.0.0.1:2", "--state-dir", "d",
                    "--meshd", "localhost:3", NULL};
    sc_opts o;
    mesh_err err;
    cr_assert_eq(sidecar_parse(argv, ARGC(argv), &o, &err), MESH_OK, "%s", err.msg);
    cr_assert_str_eq(o.meshd, "127.0.0.1:1,127.0.0.1:2,localhost:3",
                     "a repeated --meshd joins the list");
}

Test(sidecar_flags, bad_meshd_lists_are_refused)
{
    static const char *bad[] = {"127.0.0.1:1,", ",127.0.0.1:1", "127.0.0.1", "127.0.0.1:0",
                                "127.0.0.1:65536", "a:1,b", "::1:15010", "[::1]15010", ":1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *argv[] = {"mesh-sidecar", "--meshd", (char *)bad[i], "--state-dir", "d", NULL};
        sc_opts o;
        mesh_err err;
        cr_assert_neq(sidecar_parse(argv, ARGC(argv), &o, &err), MESH_OK, "'%s' accepted",
                      bad[i]);
        cr_assert(strstr(err.msg, "--meshd"), "'%s': %s", bad[i], err.msg);
    }
}
