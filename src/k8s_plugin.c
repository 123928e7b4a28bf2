/* runbook.k8s_plugin_core: runs a kubeconfig's exec credential plugin (client.authentication.k8s.io
 * ExecCredential: aws eks get-token, gke-gcloud-auth-plugin, kubelogin, ...). Internal to runbook.k8s:
 * runbooks cannot require it, so this is no general way to run programs.
 *
 * The plugin gets our environment plus its kubeconfig `env` and KUBERNETES_EXEC_INFO, no stdin
 * (runbook is never interactive), its own process group (so a timeout kills its children too), and
 * a time limit. Its stdout holds a credential: it only ever goes back to the caller, never to a
 * message. */
#define _GNU_SOURCE /* posix_spawn_file_actions_addclosefrom_np, pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <poll.h>
#include <stdio.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bindings.h"
#include "clock.h"
#include "curl_options.h"

#define MAX_STDOUT (1024 * 1024)
#define MAX_STDERR (64 * 1024)

extern char **environ;

struct capture {
    int fd;
    char *data;
    size_t len, limit;
    int overflowed;
};

/* Reads what is there; returns 0 at end of file. Bytes past the limit are read and dropped, so a
 * chatty plugin cannot block on a full pipe. */
static int drain(struct capture *c)
{
    char scratch[16384];
    ssize_t n = read(c->fd, scratch, sizeof scratch);
    if (n < 0)
        return errno == EINTR || errno == EAGAIN ? 1 : 0;
    if (n == 0)
        return 0;
    size_t keep = c->len < c->limit ? c->limit - c->len : 0;
    if ((size_t)n > keep)
        c->overflowed = 1;
    else
        keep = (size_t)n;
    memcpy(c->data + c->len, scratch, keep);
    c->len += keep;
    return 1;
}

/* run{command=, args={...}, env={"NAME=value", ...}, exec_info=JSON, timeout=}
 * -> {stdout=, stderr=, exit_code= | signal=} | nil, message, kind ("not_found", "timeout", "spawn",
 *    "too_large"). The caller judges the exit code and parses stdout. */
static int plugin_run(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    const char *command = rb_opt_string(L, 1, "command");
    if (!command || !*command)
        return luaL_error(L, "exec plugin without a command");
    double timeout = rb_opt_number(L, 1, "timeout", 60);
    const char *info = rb_opt_string(L, 1, "exec_info");
    lua_pushfstring(L, "KUBERNETES_EXEC_INFO=%s", info ? info : "");
    int info_index = lua_gettop(L);

    /* argv: command, then args; the strings stay alive in the options table. */
    lua_getfield(L, 1, "args");
    size_t nargs = lua_istable(L, -1) ? (size_t)luaL_len(L, -1) : 0;
    char **argv = lua_newuserdatauv(L, (nargs + 2) * sizeof *argv, 0);
    argv[0] = (char *)command;
    for (size_t i = 1; i <= nargs; i++) {
        lua_geti(L, -2, (lua_Integer)i);
        argv[i] = (char *)luaL_checkstring(L, -1);
        lua_pop(L, 1); /* the table keeps the string alive */
    }
    argv[nargs + 1] = NULL;

    size_t ours = 0;
    while (environ[ours])
        ours++;
    lua_getfield(L, 1, "env");
    int env_list = lua_gettop(L);
    size_t extra = lua_istable(L, env_list) ? (size_t)luaL_len(L, env_list) : 0;
    char **envp = lua_newuserdatauv(L, (ours + extra + 2) * sizeof *envp, 0);
    size_t n = 0;
    for (size_t i = 0; i < ours; i++) {
        const char *eq = strchr(environ[i], '=');
        size_t name_len = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
        int overridden = strncmp(environ[i], "KUBERNETES_EXEC_INFO=", 21) == 0;
        for (size_t k = 1; k <= extra && !overridden; k++) {
            lua_geti(L, env_list, (lua_Integer)k);
            const char *entry = luaL_checkstring(L, -1);
            overridden = strncmp(entry, environ[i], name_len) == 0 && entry[name_len] == '=';
            lua_pop(L, 1);
        }
        if (!overridden)
            envp[n++] = environ[i];
    }
    for (size_t k = 1; k <= extra; k++) {
        lua_geti(L, env_list, (lua_Integer)k);
        envp[n++] = (char *)luaL_checkstring(L, -1);
        lua_pop(L, 1);
    }
    envp[n++] = (char *)lua_tostring(L, info_index);
    envp[n] = NULL;

    int out[2], err[2];
    if (pipe2(out, O_CLOEXEC) != 0)
        return luaL_error(L, "cannot create a pipe: %s", strerror(errno));
    if (pipe2(err, O_CLOEXEC) != 0) {
        close(out[0]);
        close(out[1]);
        return luaL_error(L, "cannot create a pipe: %s", strerror(errno));
    }
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_adddup2(&actions, err[1], 2);
    posix_spawn_file_actions_addclosefrom_np(&actions, 3);
    posix_spawnattr_init(&attr);
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    sigaddset(&defaults, SIGINT);
    sigaddset(&defaults, SIGTERM);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
    pid_t pid;
    int spawn_error = posix_spawnp(&pid, command, &actions, &attr, argv, envp);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    close(out[1]);
    close(err[1]);
    if (spawn_error != 0) {
        close(out[0]);
        close(err[0]);
        lua_pushnil(L);
        lua_pushfstring(L, "cannot run %s: %s", command, strerror(spawn_error));
        lua_pushstring(L, spawn_error == ENOENT ? "not_found" : "spawn");
        return 3;
    }

    char *out_data = malloc(MAX_STDOUT), *err_data = malloc(MAX_STDERR);
    struct capture captures[2] = {{out[0], out_data, 0, MAX_STDOUT, 0}, {err[0], err_data, 0, MAX_STDERR, 0}};
    double deadline = rb_monotonic_seconds() + timeout;
    int open_fds = 2, timed_out = 0;
    while (open_fds > 0 && out_data && err_data) {
        struct pollfd fds[2];
        int count = 0, which[2];
        for (int i = 0; i < 2; i++) {
            if (captures[i].fd >= 0) {
                fds[count].fd = captures[i].fd;
                fds[count].events = POLLIN;
                fds[count].revents = 0;
                which[count++] = i;
            }
        }
        double left = deadline - rb_monotonic_seconds();
        if (left <= 0) {
            timed_out = 1;
            break;
        }
        int ready = poll(fds, (nfds_t)count, (int)(left * 1000) + 1);
        if (ready < 0 && errno != EINTR)
            break;
        for (int k = 0; k < count && ready > 0; k++) {
            if (!fds[k].revents)
                continue;
            struct capture *c = &captures[which[k]];
            if (!drain(c)) {
                close(c->fd);
                c->fd = -1;
                open_fds--;
            }
        }
    }
    for (int i = 0; i < 2; i++)
        if (captures[i].fd >= 0)
            close(captures[i].fd);
    if (timed_out || !out_data || !err_data)
        kill(-pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!out_data || !err_data) {
        free(out_data);
        free(err_data);
        return luaL_error(L, "out of memory running %s", command);
    }
    if (timed_out || captures[0].overflowed) {
        free(out_data);
        free(err_data);
        lua_pushnil(L);
        if (timed_out) {
            char seconds[32];
            snprintf(seconds, sizeof seconds, "%g", timeout);
            lua_pushfstring(L, "%s did not finish within %s seconds", command, seconds);
        } else {
            lua_pushfstring(L, "%s wrote more than %d KiB", command, MAX_STDOUT / 1024);
        }
        lua_pushstring(L, timed_out ? "timeout" : "too_large");
        return 3;
    }
    lua_createtable(L, 0, 3);
    lua_pushlstring(L, out_data, captures[0].len);
    lua_setfield(L, -2, "stdout");
    lua_pushlstring(L, err_data, captures[1].len);
    lua_setfield(L, -2, "stderr");
    free(out_data);
    free(err_data);
    if (WIFEXITED(status)) {
        lua_pushinteger(L, WEXITSTATUS(status));
        lua_setfield(L, -2, "exit_code");
    } else if (WIFSIGNALED(status)) {
        lua_pushinteger(L, WTERMSIG(status));
        lua_setfield(L, -2, "signal");
    }
    return 1;
}

static const luaL_Reg plugin_functions[] = {
    {"run", plugin_run},
    {NULL, NULL},
};

int luaopen_runbook_k8s_plugin_core(lua_State *L)
{
    luaL_newlib(L, plugin_functions);
    return 1;
}
