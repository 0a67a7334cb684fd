/* tests/unit/test_meshctl_help.c — meshctl's help table: one command's part,
 * the whole text, and "did you mean" for command words. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meshctl/meshctl.h"

static char *capture(int (*fn)(FILE *, const char *), const char *cmd, int *rc)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cr_assert_not_null(f);
    *rc = fn(f, cmd);
    fclose(f);
    return buf;
}

Test(meshctl_help, one_command_has_only_its_part)
{
    int rc = 0;
    char *t = capture(ctl_help_command, "cert", &rc);
    cr_assert_eq(rc, 0);
    cr_assert_not_null(strstr(t, "cert revoke SERIAL"));
    cr_assert_null(strstr(t, "apply -f FILE"));
    cr_assert_not_null(strstr(t, "Exit status"));
    free(t);
}

Test(meshctl_help, unknown_command_has_no_help)
{
    int rc = 0;
    char *t = capture(ctl_help_command, "frobnicate", &rc);
    cr_assert_eq(rc, -1);
    cr_assert_str_eq(t, "");
    free(t);
}

Test(meshctl_help, all_lists_every_command)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ctl_help_all(f);
    fclose(f);
    const char *cmds[] = {"  ca ", "  workload ", "  cert ", "  apply ", "  validate ", "  get ", "  delete ",
                          "  proxy-status ", "  describe ", "  audit ", "  store ", "  drill ", "  version ",
                          "  help "};
    for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++)
        cr_assert_not_null(strstr(buf, cmds[i]), "%s missing", cmds[i]);
    free(buf);
}

Test(meshctl_help, suggests_close_commands_only)
{
    cr_assert_str_eq(ctl_suggest_command("proxy-stauts"), "proxy-status");
    cr_assert_str_eq(ctl_suggest_command("aply"), "apply");
    cr_assert_str_eq(ctl_suggest_command("CERT"), "cert");
    cr_assert_null(ctl_suggest_command("frobnicate"));
    cr_assert_null(ctl_suggest_command(""));
}
