/* meshctl/meshctl_help.c — meshctl's help: the whole text, one command's part
 * (`meshctl CMD --help`, `meshctl help CMD`), and "did you mean" for a
 * mistyped command word.
 *
 * One table, so the overview and each command's help cannot disagree, and a
 * new command is one entry here and one in tools/meshctl.c's dispatch. */
#include "meshctl/meshctl.h"

#include <stdio.h>
#include <string.h>

#include "common/suggest.h"

typedef struct ctl_help_entry {
    const char *cmd;
    const char *text;
} ctl_help_entry;

static const ctl_help_entry help_entries[] = {
    {"ca",
     "  ca init --trust-domain TD [--key-type ec-p256|rsa-3072] [--ttl 10y] [--key-dir DIR]\n"
     "          [--import-cert F --import-key F [--import-chain F]]\n"
     "  ca show | ca bundle\n"
     "  ca rotate [--timeout 5m] [--force] [--key-type T] [--ttl D] [--import-cert F ...]\n"
     "          new CA: publish its root, wait until every sidecar ACKed it, then activate\n"
     "  ca rotate --prepare | --activate ID [--timeout D] [--force] | --prune   (single steps)\n"},
    {"workload",
     "  workload add NAME --id SPIFFE_ID [--address HOST:PORT] [--selectors K:V,..] [--token-ttl 1h]\n"
     "                                   one instance (the workload NAME of the mesh config) of an\n"
     "                                   identity replicas share; 'workload add SPIFFE_ID' registers\n"
     "                                   the identity as a whole (one workload per identity)\n"
     "  workload token NAME|SPIFFE_ID [--token-ttl 1h]    (a new join token)\n"
     "  workload list | workload remove NAME|SPIFFE_ID\n"},
    {"cert",
     "  cert issue --csr FILE --id SPIFFE_ID [--ttl 24h] [--out FILE]\n"
     "  cert list [--id SPIFFE_ID] [--all] | cert show SERIAL\n"
     "  cert revoke SERIAL [--reason unspecified|keyCompromise|superseded|cessationOfOperation|\n"
     "                             affiliationChanged|privilegeWithdrawn|cACompromise|aACompromise]\n"
     "                                   keyCompromise revokes every certificate of the key\n"},
    {"apply",
     "  apply -f FILE [--prune] [--dry-run] [--apply-set NAME] [--skip-size-check]\n"
     "                                   write mesh config (services, workloads, routes, authorization);\n"
     "                                   --prune removes what this file (its apply set, default its\n"
     "                                   absolute path) applied before and no longer holds;\n"
     "                                   --dry-run shows each add/update/remove, writes nothing;\n"
     "                                   refused if a workload's compiled xDS response would exceed\n"
     "                                   the 4 MiB delivery limit (--skip-size-check: store it anyway,\n"
     "                                   meshd will not send that response)\n"},
    {"validate",
     "  validate -f FILE [--trust-domain TD]\n"
     "                                   check a mesh config file without a store or writing:\n"
     "                                   every error and warning; exit 0 valid, 1 not\n"},
    {"get", "  get [services|workloads|routes|authorization]\n"},
    {"delete", "  delete KIND NAME\n"},
    {"proxy-status",
     "  proxy-status                     sidecars, ACKed versions, last NACK, seconds to SVID expiry\n"},
    {"describe",
     "  describe workload NAME           one instance from every side: identity, labels and\n"
     "                                   subsets, SVID, sidecar state, who may call it, what it may\n"
     "                                   call, the routes that send it traffic (and their share)\n"},
    {"replicas",
     "  replicas                         meshd replicas of the store: address, up/stale/stopped,\n"
     "                                   last heartbeat, sidecars held\n"},
    {"audit", "  audit [--limit N]\n"},
    {"store",
     "  store check [--repair] [--accept-loss]   full integrity check, store vs its witness\n"
     "  store backup PATH [--overwrite]          online backup (safe while meshd runs)\n"
     "  store restore BACKUP [--force]           put a backup in place (meshd stopped)\n"},
    {"drill",
     "  drill [--sidecars N] [--ttl 60s] [--rate 50] [--outage D] [--json F] [--csv F] [--svg F]\n"
     "        [--expect-...]   control-plane outage drill on 127.0.0.1 ('meshctl drill --help')\n"},
    {"version", "  version                          meshctl's version and build (also --version)\n"},
    {"help", "  help [COMMAND]                   this text, or one command's part of it\n"},
};

#define N_HELP (sizeof help_entries / sizeof help_entries[0])

static const char help_head[] =
    "usage: meshctl [--db PATH] [-o|--output text|json] [--init] COMMAND ...\n"
    "\n";

static const char help_tail[] =
    "\n"
    "The store path comes from --db or $MESHD_DB. Only 'ca init' creates a new store\n"
    "(or any command given --init); a missing or empty store is refused otherwise.\n"
    "Durations are a whole number and a unit (ms, s, m, h, d, y), e.g. 90s, 24h, 10y; a\n"
    "bare number is seconds. 'meshctl COMMAND --help' shows one command.\n"
    "\n"
    "Exit status: 0 done; 1 the operation failed (the message says why; with --output json\n"
    "it is a JSON object on stderr); 2 usage: an unknown command, flag or value. Two\n"
    "commands say more: drill exits 3 when an --expect-... was not met or a mesh process\n"
    "crashed; store check exits 3 when the store is damaged, 4 when it disagrees with its\n"
    "witness (moved backwards, or lost commits).\n";

static const ctl_help_entry *find(const char *cmd)
{
    for (size_t i = 0; cmd && i < N_HELP; i++)
        if (strcmp(help_entries[i].cmd, cmd) == 0)
            return &help_entries[i];
    return NULL;
}

void ctl_help_all(FILE *out)
{
    fputs(help_head, out);
    for (size_t i = 0; i < N_HELP; i++)
        fputs(help_entries[i].text, out);
    fputs(help_tail, out);
}

int ctl_help_command(FILE *out, const char *cmd)
{
    const ctl_help_entry *e = find(cmd);
    if (!e)
        return -1;
    fprintf(out, "usage: meshctl [--db PATH] [--output text|json] [--init] %s ...\n\n", e->cmd);
    fputs(e->text, out);
    fputs(help_tail, out);
    return 0;
}

const char *ctl_suggest_command(const char *word)
{
    const char *names[N_HELP];
    for (size_t i = 0; i < N_HELP; i++)
        names[i] = help_entries[i].cmd;
    return mesh_suggest(word, names, N_HELP);
}
