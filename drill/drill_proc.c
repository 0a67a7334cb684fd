/* drill/drill_proc.c — the drill's child processes (meshd, sidecars, test apps).
 *
 * Each child runs in its own process group, so the terminal's Ctrl-C reaches only
 * meshctl, which then stops the children in order (and writes its report); and it
 * gets SIGKILL as its parent-death signal, so even a SIGKILLed meshctl leaves no
 * sidecar behind. Output goes to <dir>/<name>.log. Children are reaped by polling
 * (waitpid WNOHANG) from the drill's own loop: no SIGCHLD handler to race with. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "drill/drill.h"

/* detach: a new session and no parent-death signal (the operator's commands). */
static int spawn(drill_child *ch, const char *dir, const char *log_name, char *const argv[],
                 int detach, mesh_err *err)
{
    char log_path[4300];
    snprintf(ch->name, sizeof ch->name, "%s", log_name);
    snprintf(log_path, sizeof log_path, "%s/%s.log", dir, log_name);
    ch->pid = 0;
    ch->exited = 0;
    ch->status = 0;
    ch->expected = 0;
    ch->exited_at = -1;
    if (!argv)
        return mesh_err_set(err, MESH_ENOMEM, "out of memory");
    int logfd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (logfd < 0)
        return mesh_err_set(err, MESH_EIO, "cannot open %s: %s", log_path, strerror(errno));
    int nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (nullfd < 0) {
        close(logfd);
        return mesh_err_set(err, MESH_EIO, "cannot open /dev/null: %s", strerror(errno));
    }
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(logfd);
        close(nullfd);
        return mesh_err_set(err, MESH_EIO, "cannot start %s: fork: %s", argv[0], strerror(e));
    }
    if (pid == 0) {
        /* Child: async-signal-safe calls only until exec. */
        if (detach) {
            setsid();
        } else {
            setpgid(0, 0);
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() != parent)
                _exit(127);   /* meshctl died before we could arm the death signal */
        }
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        dup2(nullfd, 0);
        dup2(logfd, 1);
        dup2(logfd, 2);
        execv(argv[0], argv);
        static const char msg[] = "meshctl drill: exec failed\n";
        ssize_t w = write(2, msg, sizeof msg - 1);
        (void)w;
        _exit(127);
    }
    if (!detach)
        setpgid(pid, pid);   /* also here: whichever runs first wins, no window either way */
    close(logfd);
    close(nullfd);
    ch->pid = pid;
    return MESH_OK;
}

int drill_spawn(drill_child *ch, const char *dir, const char *log_name, char *const argv[],
                mesh_err *err)
{
    return spawn(ch, dir, log_name, argv, 0, err);
}

int drill_spawn_cmd(drill_child *ch, const char *dir, const char *log_name, const char *cmd,
                    mesh_err *err)
{
    char *argv[] = {"/bin/sh", "-c", (char *)cmd, NULL};
    return spawn(ch, dir, log_name, argv, 1, err);
}

int drill_child_poll(drill_child *ch, double now_t)
{
    if (ch->exited || ch->pid <= 0)
        return ch->exited;
    int st;
    pid_t w = waitpid(ch->pid, &st, WNOHANG);
    if (w == ch->pid || (w < 0 && errno == ECHILD)) {
        ch->exited = 1;
        ch->status = w == ch->pid ? st : 0;
        ch->exited_at = now_t;
    }
    return ch->exited;
}

void drill_child_kill(drill_child *ch, double now_t)
{
    if (ch->pid <= 0 || ch->exited)
        return;
    ch->expected = 1;
    if (kill(-ch->pid, SIGKILL) != 0)
        kill(ch->pid, SIGKILL);
    int st;
    pid_t w;
    do {
        w = waitpid(ch->pid, &st, 0);
    } while (w < 0 && errno == EINTR);
    ch->exited = 1;
    ch->status = w == ch->pid ? st : 0;
    ch->exited_at = now_t;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

void drill_children_stop(drill_child **list, size_t n, int grace_ms)
{
    for (size_t i = 0; i < n; i++) {
        drill_child *ch = list[i];
        if (ch->pid > 0 && !drill_child_poll(ch, -1)) {
            ch->expected = 1;
            if (kill(-ch->pid, SIGTERM) != 0)
                kill(ch->pid, SIGTERM);
        }
    }
    for (int waited = 0; waited < grace_ms; waited += 20) {
        size_t running = 0;
        for (size_t i = 0; i < n; i++)
            if (list[i]->pid > 0 && !drill_child_poll(list[i], -1))
                running++;
        if (!running)
            return;
        sleep_ms(20);
    }
    for (size_t i = 0; i < n; i++)
        drill_child_kill(list[i], -1);
}

void drill_log_tail(const char *dir, const char *name, int lines, char *buf, size_t len)
{
    char path[4300];
    snprintf(path, sizeof path, "%s/%s.log", dir, name);
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char tail[4096];
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    long from = size > (long)sizeof tail - 1 ? size - (long)sizeof tail + 1 : 0;
    fseek(f, from, SEEK_SET);
    size_t n = fread(tail, 1, sizeof tail - 1, f);
    fclose(f);
    tail[n] = '\0';
    while (n > 0 && (tail[n - 1] == '\n' || tail[n - 1] == '\r'))
        tail[--n] = '\0';
    /* Walk back `lines` newlines. */
    size_t start = n;
    int seen = 0;
    while (start > 0) {
        if (tail[start - 1] == '\n' && ++seen == lines)
            break;
        start--;
    }
    size_t o = 0;
    for (size_t i = start; i < n && o + 4 < len; i++) {
        unsigned char ch = (unsigned char)tail[i];
        if (ch == '\n') {
            buf[o++] = ' ';
            buf[o++] = '|';
            buf[o++] = ' ';
        } else {
            buf[o++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
        }
    }
    buf[o] = '\0';
}
