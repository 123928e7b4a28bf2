/* The harness of the Lua-side fuzz targets: one Lua state for the whole run (made as the engine makes
 * it), a driver function per target, and the rule that tells an expected failure from a bug.
 *
 * libFuzzer only sees coverage of instrumented C code, and the Lua VM (Debian's liblua) is not
 * instrumented: without help, every Lua parser would look like one flat path. So in fuzzing builds
 * (RB_FUZZ_LUA_COVERAGE) a line hook turns the engine's own Lua lines into coverage: each pair
 * (previous line, this line) of code under lua/ or runbooks/ bumps a counter in libFuzzer's
 * extra-counters section, which libFuzzer treats like compiler-made edge counters. */
#include <fcntl.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "luastate.h"

static lua_State *L;
static int driver_ref = LUA_NOREF;
static int is_failure_ref = LUA_NOREF;
static const char *target_name = "?";
static char scratch_dir[4096];

#ifdef RB_FUZZ_LUA_COVERAGE
#define LUA_EDGES (1 << 16)
/* Not instrumented by ASan: libFuzzer reads the whole section, redzones would be noise. */
__attribute__((used, section("__libfuzzer_extra_counters"), no_sanitize("address")))
static unsigned char lua_edges[LUA_EDGES];
static uintptr_t previous_line;

static void coverage_hook(lua_State *state, lua_Debug *ar)
{
    if (!lua_getinfo(state, "S", ar))
        return;
    /* Only the engine's code: a fuzzed policy's own lines would be new "coverage" on every input. */
    if (strncmp(ar->source, "@lua/", 5) != 0 && strncmp(ar->source, "@runbooks/", 10) != 0)
        return;
    /* A chunk's source string lives as long as its functions: its address names the file. */
    uintptr_t here = ((uintptr_t)ar->source >> 3) * 0x9E3779B1u + (uintptr_t)ar->currentline * 0x85EBCA77u;
    unsigned char *counter = &lua_edges[(here ^ previous_line) % LUA_EDGES];
    if (*counter < 255)
        (*counter)++;
    previous_line = here >> 1;
}
#endif

/* fuzz_write_file(path, data): a plain write, no fsync (host.write_file syncs: far too slow per input),
 * for parsers that only read files. */
static int fuzz_write_file(lua_State *state)
{
    const char *path = luaL_checkstring(state, 1);
    size_t len;
    const char *data = luaL_checklstring(state, 2, &len);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, data, len) != (ssize_t)len || close(fd) != 0)
        return luaL_error(state, "fuzz harness: cannot write %s", path);
    return 0;
}

/* Message handler: util.fail failures (tables) pass unchanged, so they can be told apart; rb_pcall's
 * handler would turn them into text. Anything else gets a traceback. */
static int traceback(lua_State *state)
{
    if (lua_istable(state, 1))
        return 1;
    luaL_traceback(state, state, luaL_tolstring(state, 1, NULL), 1);
    return 1;
}

static int call(int nargs, int nresults)
{
    int base = lua_gettop(L) - nargs;
    lua_pushcfunction(L, traceback);
    lua_insert(L, base);
    int status = lua_pcall(L, nargs, nresults, base);
    lua_remove(L, base);
    return status;
}

static void remove_scratch(void)
{
    char command[4200];
    if (scratch_dir[0] && snprintf(command, sizeof command, "rm -rf '%s'", scratch_dir) < (int)sizeof command) {
        int ignored = system(command);
        (void)ignored;
    }
}

/* Frees what the input made. libFuzzer runs a full leak scan after every input that allocated more
 * than it freed, which a Lua state's deferred collection would trigger on nearly every input. */
static void collect_garbage(void)
{
    lua_gc(L, LUA_GCCOLLECT);
}

static void die(const char *what)
{
    fprintf(stderr, "fuzz %s: %s: %s\n", target_name, what, lua_tostring(L, -1));
    abort();
}

void fuzz_lua_init(const char *name, const char *driver)
{
    target_name = name;
    L = rb_state_new();
    if (!L) {
        fprintf(stderr, "fuzz %s: cannot make the Lua state\n", name);
        abort();
    }
    /* under $TMPDIR: run.sh and the replay test point it at a directory they remove, since libFuzzer
     * does not always exit through atexit */
    const char *tmp = getenv("TMPDIR");
    snprintf(scratch_dir, sizeof scratch_dir, "%s/runbook-fuzz-%s.XXXXXX", tmp && *tmp ? tmp : "/tmp", name);
    if (!mkdtemp(scratch_dir)) {
        perror("mkdtemp");
        abort();
    }
    atexit(remove_scratch);
    lua_pushstring(L, scratch_dir);
    lua_setglobal(L, "fuzz_scratch_dir");
    lua_pushcfunction(L, fuzz_write_file);
    lua_setglobal(L, "fuzz_write_file");

    if (luaL_loadstring(L, "return require('runbook.util').is_failure") != LUA_OK || call(0, 1) != LUA_OK)
        die("cannot load runbook.util");
    is_failure_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    char chunkname[80];
    snprintf(chunkname, sizeof chunkname, "=fuzz/%s", name);
    if (luaL_loadbufferx(L, driver, strlen(driver), chunkname, "t") != LUA_OK || call(0, 1) != LUA_OK)
        die("cannot make the driver");
    if (!lua_isfunction(L, -1)) {
        lua_pushliteral(L, "the driver chunk did not return a function");
        die("bad driver");
    }
    driver_ref = luaL_ref(L, LUA_REGISTRYINDEX);
#ifdef RB_FUZZ_LUA_COVERAGE
    lua_sethook(L, coverage_hook, LUA_MASKLINE, 0);
#endif
}

void fuzz_lua_run(const uint8_t *data, size_t size)
{
    lua_settop(L, 0);
    lua_rawgeti(L, LUA_REGISTRYINDEX, driver_ref);
    lua_pushlstring(L, (const char *)data, size);
    if (call(1, 0) != LUA_OK) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, is_failure_ref);
        lua_pushvalue(L, -2);
        int expected = lua_pcall(L, 1, 1, 0) == LUA_OK && lua_toboolean(L, -1);
        lua_pop(L, 1);
        if (!expected) {
            /* a util.fail failure is a table (with __tostring); anything else is a bug */
            fprintf(stderr, "fuzz %s: the parser raised an unexpected Lua error:\n%s\n", target_name,
                    luaL_tolstring(L, -1, NULL));
            abort();
        }
    }
    lua_settop(L, 0);
    collect_garbage();
}
