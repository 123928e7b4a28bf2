/* runbook.lock_core: one run at a time per target. An apply or resume holds an exclusive flock(2)
 * on a lock file while it runs; a second one finds it taken and is told who holds it (the pid and
 * since when, which the holder wrote into the file). flock belongs to the open file: the kernel
 * releases it when the process ends however it ends (SIGKILL included), so a lock is never left
 * stale, and the file itself may stay. Engine-only: the sandboxed `require` never offers it.
 *
 *   lock(path) -> handle | nil, holder_text | nil, message (false as the 3rd value: not held by another)
 *   handle:release() (also __gc, __close; idempotent) */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "bindings.h"

#define LOCK_META "runbook.lock.Lock"

struct lock {
    int fd;
};

static int lock_release(lua_State *L)
{
    struct lock *l = luaL_checkudata(L, 1, LOCK_META);
    if (l->fd >= 0) {
        close(l->fd); /* closing the only descriptor releases the flock */
        l->fd = -1;
    }
    return 0;
}

static int lock_acquire(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    /* O_NOFOLLOW: a symlink planted at the lock's path must not make us open (and write) its target. */
    int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        lua_pushnil(L);
        lua_pushfstring(L, "cannot open the lock file %s: %s", path, strerror(e));
        lua_pushboolean(L, 0);
        return 3;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char holder[256];
        ssize_t n = pread(fd, holder, sizeof holder - 1, 0);
        close(fd);
        lua_pushnil(L);
        if (e == EWOULDBLOCK) {
            holder[n > 0 ? n : 0] = '\0';
            holder[strcspn(holder, "\n")] = '\0';
            lua_pushstring(L, n > 0 ? holder : "another process");
            lua_pushboolean(L, 1);
        } else {
            lua_pushfstring(L, "cannot lock %s: %s", path, strerror(e));
            lua_pushboolean(L, 0);
        }
        return 3;
    }
    /* Ours: say who holds it, for the next one to read. */
    char text[128];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    int len = snprintf(text, sizeof text, "pid %ld, since %s\n", (long)getpid(), stamp);
    if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)len, 0) != len) {
        int e = errno;
        close(fd);
        lua_pushnil(L);
        lua_pushfstring(L, "cannot write the lock file %s: %s", path, strerror(e));
        lua_pushboolean(L, 0);
        return 3;
    }
    struct lock *l = lua_newuserdatauv(L, sizeof *l, 0);
    l->fd = fd;
    luaL_setmetatable(L, LOCK_META);
    return 1;
}

static const luaL_Reg lock_methods[] = {
    {"release", lock_release},
    {NULL, NULL},
};

static const luaL_Reg lock_functions[] = {
    {"lock", lock_acquire},
    {NULL, NULL},
};

int luaopen_runbook_lock_core(lua_State *L)
{
    luaL_newmetatable(L, LOCK_META);
    luaL_newlib(L, lock_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, lock_release);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, lock_release);
    lua_setfield(L, -2, "__close");
    lua_pop(L, 1);
    luaL_newlib(L, lock_functions);
    return 1;
}
