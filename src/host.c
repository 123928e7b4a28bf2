/* runbook.host: the engine's privileged primitives, in one library table. Runbooks and policies never see
 * this module: the sandboxed `require` refuses it. The primitives live in files by concern: files and
 * directories (host_files.c), files written piece by piece (host_streams.c), hashing (host_hash.c), the
 * terminal (host_term.c), signals (host_signals.c), built-in runbooks (host_runbooks.c), site code's budget
 * (sitevm.c), library versions (versions.c); clocks, the process and its phase are here. */
#include <lauxlib.h>
#include <time.h>
#include <unistd.h>

#include "bindings.h"
#include "clock.h"
#include "host_files.h"
#include "host_hash.h"
#include "host_runbooks.h"
#include "host_signals.h"
#include "host_streams.h"
#include "host_term.h"
#include "phase.h"
#include "sitevm.h"
#include "versions.h"

/* ---- clocks ---- */

static int host_now(lua_State *L)
{
    lua_pushnumber(L, rb_clock_seconds(CLOCK_REALTIME));
    return 1;
}

static int host_monotonic(lua_State *L)
{
    lua_pushnumber(L, rb_clock_seconds(CLOCK_MONOTONIC));
    return 1;
}

static int host_sleep(lua_State *L)
{
    double s = luaL_checknumber(L, 1);
    if (s > 0) {
        struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
        nanosleep(&ts, NULL); /* a signal ends the sleep early, which is what an interrupt wants */
    }
    return 0;
}

/* ---- process ---- */

static int host_getpid(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)getpid());
    return 1;
}

static int host_set_phase(lua_State *L)
{
    static const char *const names[] = {"readonly", "plan", "apply", "write", NULL};
    static const enum rb_phase phases[] = {RB_PHASE_READONLY, RB_PHASE_PLAN, RB_PHASE_APPLY, RB_PHASE_WRITE};
    rb_phase_set(phases[luaL_checkoption(L, 1, NULL, names)]);
    return 0;
}

static int host_phase(lua_State *L)
{
    lua_pushstring(L, rb_phase_name(rb_phase_get()));
    lua_pushinteger(L, rb_phase_refusals());
    return 2;
}

/* traceback(message): the message handler for xpcall, since runbooks get no debug library. */
static int host_traceback(lua_State *L)
{
    if (!lua_isstring(L, 1))
        return 1; /* structured errors travel unchanged */
    luaL_traceback(L, L, lua_tostring(L, 1), 1);
    return 1;
}

static int host_version(lua_State *L)
{
    lua_pushstring(L, RUNBOOK_VERSION);
    return 1;
}

static const luaL_Reg host_functions[] = {
    {"read_file", rb_host_read_file},
    {"write_file", rb_host_write_file},
    {"open_append", rb_host_open_append},
    {"create_output", rb_host_create_output},
    {"remove", rb_host_remove},
    {"mkdirs", rb_host_mkdirs},
    {"stat", rb_host_stat},
    {"check_private_dir", rb_host_check_private_dir},
    {"list_dir", rb_host_list_dir},
    {"realpath", rb_host_realpath},
    {"isatty", rb_host_isatty},
    {"term_width", rb_host_term_width},
    {"write", rb_host_write},
    {"read_line", rb_host_read_line},
    {"now", host_now},
    {"monotonic", host_monotonic},
    {"sleep", host_sleep},
    {"trap_signals", rb_host_trap_signals},
    {"interrupted", rb_host_interrupted},
    {"sha256", rb_host_sha256},
    {"sha256_file", rb_host_sha256_file},
    {"random_hex", rb_host_random_hex},
    {"hasher", rb_host_hasher},
    {"rename", rb_host_rename},
    {"getpid", host_getpid},
    {"set_phase", host_set_phase},
    {"phase", host_phase},
    {"call_with_budget", rb_call_with_budget}, /* sitevm.c: the budget and state of site code */
    {"site_vm", rb_site_vm_new},
    {"embedded_runbooks", rb_host_embedded_runbooks},
    {"load_embedded_runbook", rb_host_load_embedded_runbook},
    {"version", host_version},
    {"traceback", host_traceback},
    {"library_versions", rb_library_versions},
    {"load_libraries", rb_load_libraries},
    {NULL, NULL},
};

int luaopen_runbook_host(lua_State *L)
{
    rb_open_stream_types(L);
    rb_open_hasher_type(L);
    luaL_newlib(L, host_functions);
    return 1;
}
