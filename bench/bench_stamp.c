/* bench/bench_stamp.c — prefixes every line of stdin with the wall-clock time.
 *
 *   some-client | bench_stamp > out     each line becomes "<unix µs>\t<line>"
 *
 * The fan-out benchmark needs the moment each xDS response reached the
 * client on the same clock as `date +%s%N` in the driving script (the
 * client's own t_ms counts from a start the script cannot see). Lines are
 * flushed one by one so the script can watch progress in the file. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(void)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, stdin)) > 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        long long us = (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
        printf("%lld\t%s", us, line);
        if (line[n - 1] != '\n')
            putchar('\n');
        if (fflush(stdout) != 0)
            break;
    }
    free(line);
    return ferror(stdout) ? 1 : 0;
}
