/* api_calls.c: exercises libhaapi's C calls for api/tests/calls.rs.
 * Usage: api_calls SERVICE. Against an agent server that knows SERVICE it
 * opens and closes it, forks a child that calls apiok (it must use its own
 * connection: hasvrd sees the child's pid), heartbeats from four threads,
 * checks that NULL, non-UTF-8, unknown and injected names and a bad
 * command give -1 without harm, reports an error, and closes. Prints
 * "child PID" and "pass", or what failed (exit 1). */
#include "clusterapi.h"
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static int failures;

static void check(const char *what, int got, int want)
{
    if (got != want) {
        printf("FAIL %s: got %d, want %d (%s)\n", what, got, want, haapi_lasterror());
        failures++;
    }
}

static void *beat(void *name)
{
    int i;
    for (i = 0; i < 25; i++)
        if (apiok(name) != 0)
            return name;
    return NULL;
}

int main(int argc, char *argv[])
{
    char *name;
    pid_t child;
    int status, i;
    pthread_t threads[4];
    void *result;

    if (argc != 2) {
        fprintf(stderr, "usage: api_calls SERVICE\n");
        return 2;
    }
    name = argv[1];
    check("apiopen", apiopen(name), 0);
    check("apiclose", apiclose(name), 0);

    child = fork();
    if (child == 0)
        _exit(apiok(name) == 0 ? 0 : 1);
    if (child < 0 || waitpid(child, &status, 0) != child)
        return 3;
    check("apiok in the child after fork", WIFEXITED(status) ? WEXITSTATUS(status) : 99, 0);
    printf("child %d\n", (int)child);
    fflush(stdout);
    check("apiok in the parent after fork", apiok(name), 0);

    for (i = 0; i < 4; i++)
        pthread_create(&threads[i], NULL, beat, name);
    for (i = 0; i < 4; i++) {
        pthread_join(threads[i], &result);
        check("apiok from four threads", result == NULL ? 0 : -1, 0);
    }

    check("apiok(NULL)", apiok(NULL), -1);
    check("apiok of an unknown service", apiok("nosuch"), -1);
    if (strstr(haapi_lasterror(), "unknown service nosuch") == NULL) {
        printf("FAIL haapi_lasterror: %s\n", haapi_lasterror());
        failures++;
    }
    check("apiok of a name that is not UTF-8", apiok("\xff\xfe"), -1);
    check("apiok of a name with a newline", apiok("www\nerr www"), -1);
    check("apiopen of a name with a blank", apiopen("www db"), -1);
    check("apicmd of an unknown command", apicmd("JUMP", name), -1);
    check("apicmd(NULL, name)", apicmd(NULL, name), -1);
    check("apicmd(cmd, NULL)", apicmd("BRINGIN", NULL), -1);
    check("apiok after the failures", apiok(name), 0);
    if (strcmp(haapi_lasterror(), "") != 0) {
        printf("FAIL haapi_lasterror after a success: %s\n", haapi_lasterror());
        failures++;
    }

    check("apierr", apierr(name), 0);
    check("apiclose", apiclose(name), 0);
    if (failures == 0)
        printf("pass\n");
    return failures ? 1 : 0;
}
