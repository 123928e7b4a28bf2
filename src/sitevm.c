/* Site code (policy files, inventories) runs under a budget, in a Lua state of its own.
 *
 * Why a state of its own rather than a memory limit switched on in the engine's state while policy code
 * runs: a policy function is called once per user, and whatever it keeps between calls (an upvalue
 * table that grows by 60 MB a call) would be charged to no call, while its garbage would be collected
 * on the engine's account. Here one allocator counts everything site code ever allocates against one
 * absolute limit, for the whole life of the policy. The separation gives the rest by construction:
 * the state has its own string library, so the guards its prelude puts on pattern matching also cover
 * method calls (s:find) without touching the engine's; nothing of the engine is reachable; and
 * arguments are copies, so a policy that edits the user it is shown edits its own copy (what decides a
 * deletion stays the hub's data). Values cross only by deep copy, checked on the way out: nil, booleans,
 * numbers, strings, tables (shared parts and cycles kept) and light userdata (cjson.null); a function
 * of site code comes back as a proxy that runs it in the site state under the caller's budget.
 *
 * The budget counts VM instructions with a count hook, on the site state as on the engine's. Once it is
 * spent the hook raises at every instruction of every thread it fires in, so a pcall or
 * coroutine.resume in site code cannot swallow it and carry on (Redis kills scripts the same way).
 * Work inside one C function is not counted: it is bounded by the memory limit (string.rep, gsub,
 * concat and format all allocate their result) and by the prelude's guards on pattern matching and
 * table.move; and so that many calls each doing bounded C work cannot add up to a hang, the budget
 * also has a wall-clock deadline, checked by the same hook. */
#include "sitevm.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"

/* ---- the budget ---- */

#define BUDGET_STEP 1000
#define SITE_STEP 100 /* finer in site code, where one instruction can be a big C function */
/* The deadline: n instructions may take n / this many seconds, and never less than a second. */
#define INSTRUCTIONS_PER_SECOND 5e6

static struct budget {
    int active;
    lua_Integer left, given;
    double seconds, deadline;
    const char *spent; /* NULL, or why it ran out */
} budget;
static char spent_message[160];

/* Charges n instructions' worth of work; true once the budget is spent (now or before). */
static int spend(lua_Integer n)
{
    if (budget.spent)
        return 1;
    budget.left -= n;
    if (budget.left <= 0)
        snprintf(spent_message, sizeof spent_message,
                 "instruction budget exhausted (%lld instructions: an endless loop?)", (long long)budget.given);
    else if (rb_monotonic_seconds() > budget.deadline)
        snprintf(spent_message, sizeof spent_message,
                 "time budget exhausted (%.0f s for %lld instructions: an endless loop, or C functions doing too much?)",
                 budget.seconds, (long long)budget.given);
    else
        return 0;
    budget.spent = spent_message;
    return 1;
}

static void budget_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    if (!budget.active)
        luaL_error(L, "site code ran outside an instruction budget");
    if (!spend(lua_gethookcount(L)))
        return;
    /* Spent: from now on this thread raises at every instruction, so no handler can run on. */
    lua_sethook(L, budget_hook, LUA_MASKCOUNT, 1);
    luaL_error(L, "%s", budget.spent);
}

/* charge(n) in the site state: the prelude's guards charge the work of a C function they let run
 * (a pattern match's worst case, a sort), which the count hook cannot see. */
static int site_charge(lua_State *V)
{
    lua_Number n = luaL_checknumber(V, 1);
    if (budget.active && !spend(n >= (lua_Number)LUA_MAXINTEGER ? LUA_MAXINTEGER : n > 0 ? (lua_Integer)n : 0))
        return 0;
    lua_sethook(V, budget_hook, LUA_MASKCOUNT, 1);
    return luaL_error(V, "%s", budget.spent ? budget.spent : "site code ran outside an instruction budget");
}

int rb_call_with_budget(lua_State *L)
{
    lua_Integer n = luaL_checkinteger(L, 1);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    struct budget saved = budget;
    lua_Hook saved_hook = lua_gethook(L);
    int saved_mask = lua_gethookmask(L), saved_count = lua_gethookcount(L);
    double seconds = (double)n / INSTRUCTIONS_PER_SECOND;
    if (seconds < 1)
        seconds = 1;
    budget = (struct budget){.active = 1, .left = n, .given = n, .seconds = seconds,
                             .deadline = rb_monotonic_seconds() + seconds};
    lua_sethook(L, budget_hook, LUA_MASKCOUNT, BUDGET_STEP);
    int status = lua_pcall(L, lua_gettop(L) - 2, LUA_MULTRET, 0);
    const char *spent = budget.spent;
    lua_sethook(L, saved_hook, saved_mask, saved_count);
    budget = saved;
    if (spent) { /* whatever the code did once it was spent, the call failed */
        lua_settop(L, 0);
        lua_pushboolean(L, 0);
        lua_pushstring(L, spent);
        return 2;
    }
    lua_pushboolean(L, status == LUA_OK);
    lua_replace(L, 1);
    return lua_gettop(L);
}

/* ---- the site state ---- */

#define SITE_VM "runbook.SiteVM"
#define MAX_DEPTH 32          /* tables nested deeper do not cross (the copies recurse in C) */
#define MAX_MESSAGE 2000      /* bytes of an error message of site code that reach the engine */

struct site_vm {
    lua_State *V;
    size_t used, limit;
    int refused; /* an allocation was refused since the current operation began */
};

/* Registry keys in the site state. */
static const char KEY_ENV = 0, KEY_VALUES = 0, KEY_FNS = 0, KEY_FNIDS = 0;

/* What may leave site code: strings up to max_string bytes, about max_weight bytes in all. */
struct out_limits {
    size_t max_string, max_weight;
    const char *what;
};
static const struct out_limits VALUE_LIMITS = {1 << 20, 16 << 20, "it sets"};
static const struct out_limits RESULT_LIMITS = {1000, 64 << 10, "it returned"};

static void *site_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    struct site_vm *vm = ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        vm->used -= old;
        return NULL;
    }
    /* Growing by a lot is work the count hook does not see (string.rep, gsub, concat): charged, one
     * instruction per 64 bytes, and refused once the budget is spent. */
    if (nsize > old && nsize - old >= 4096 && budget.active && spend((lua_Integer)((nsize - old) / 64)))
        return NULL;
    if (nsize > old && nsize - old > vm->limit - vm->used) {
        vm->refused = 1;
        return NULL; /* Lua collects garbage and tries again, then raises "not enough memory" */
    }
    void *p = realloc(ptr, nsize);
    if (p != NULL)
        vm->used = vm->used - old + nsize;
    return p;
}

/* Calls f(arg, <the top nvalues values>) in protected mode in the site state. */
static int protected_call(struct site_vm *vm, lua_CFunction f, void *arg, int nvalues, int nresults)
{
    lua_State *V = vm->V;
    if (!lua_checkstack(V, 2))
        return LUA_ERRMEM;
    lua_pushcfunction(V, f);
    lua_pushlightuserdata(V, arg);
    lua_rotate(V, -nvalues - 2, 2);
    return lua_pcall(V, nvalues + 1, nresults, 0);
}

/* Raises in the engine the error the site state just had, in words for the operator. */
static int raise_site_error(lua_State *L, struct site_vm *vm, int status)
{
    lua_State *V = vm->V;
    if (budget.spent) {
        lua_pushstring(L, budget.spent);
    } else if (vm->refused || status == LUA_ERRMEM) {
        lua_pushfstring(L, "used more than its memory limit of %d MiB", (int)(vm->limit >> 20));
    } else if (lua_type(V, -1) == LUA_TSTRING) {
        size_t len;
        const char *msg = lua_tolstring(V, -1, &len);
        lua_pushlstring(L, msg, len < MAX_MESSAGE ? len : MAX_MESSAGE);
        if (len > MAX_MESSAGE)
            lua_pushliteral(L, "...");
        lua_concat(L, len > MAX_MESSAGE ? 2 : 1);
    } else {
        lua_pushfstring(L, "(error object is a %s value)", luaL_typename(V, -1));
    }
    lua_settop(V, 0);
    return lua_error(L);
}

static struct site_vm *check_vm(lua_State *L, int idx)
{
    struct site_vm *vm = luaL_checkudata(L, idx, SITE_VM);
    if (vm->V == NULL)
        luaL_error(L, "site code already closed");
    return vm;
}

/* fns[id] = f, fnids[f] = id: how a proxy in the engine names a function of site code. */
static lua_Integer register_function(lua_State *V, int idx)
{
    lua_rawgetp(V, LUA_REGISTRYINDEX, &KEY_FNIDS);
    lua_pushvalue(V, idx);
    if (lua_rawget(V, -2) == LUA_TNUMBER) {
        lua_Integer id = lua_tointeger(V, -1);
        lua_pop(V, 2);
        return id;
    }
    lua_pop(V, 1);
    lua_rawgetp(V, LUA_REGISTRYINDEX, &KEY_FNS);
    lua_Integer id = (lua_Integer)lua_rawlen(V, -1) + 1;
    lua_pushvalue(V, idx);
    lua_rawseti(V, -2, id);
    lua_pushvalue(V, idx);
    lua_pushinteger(V, id);
    lua_rawset(V, -4);
    lua_pop(V, 2);
    return id;
}

/* ---- out of the site state: checked in the site state (may allocate, may raise there), then
 * copied with no allocation in the site state at all ---- */

struct walk {
    const struct out_limits *lim;
    size_t weight;
    int seen;
};

static void check_out(lua_State *V, struct walk *w, int idx, int depth)
{
    switch (lua_type(V, idx)) {
    case LUA_TNIL: case LUA_TBOOLEAN: case LUA_TNUMBER: case LUA_TLIGHTUSERDATA:
        w->weight += 8;
        break;
    case LUA_TSTRING: {
        size_t len = lua_rawlen(V, idx);
        if (len > w->lim->max_string)
            luaL_error(V, "%s a string of %I bytes (at most %I)", w->lim->what, (lua_Integer)len,
                       (lua_Integer)w->lim->max_string);
        w->weight += len + 8;
        break;
    }
    case LUA_TFUNCTION:
        register_function(V, idx);
        w->weight += 8;
        break;
    case LUA_TTABLE:
        if (depth >= MAX_DEPTH)
            luaL_error(V, "%s tables nested more than %d deep", w->lim->what, MAX_DEPTH);
        lua_pushvalue(V, idx);
        if (lua_rawget(V, w->seen) != LUA_TNIL) {
            lua_pop(V, 1);
            break;
        }
        lua_pop(V, 1);
        lua_pushvalue(V, idx);
        lua_pushboolean(V, 1);
        lua_rawset(V, w->seen);
        luaL_checkstack(V, 8, "tables nested too deep");
        lua_pushnil(V);
        while (lua_next(V, idx)) {
            int top = lua_gettop(V);
            check_out(V, w, top - 1, depth + 1);
            check_out(V, w, top, depth + 1);
            w->weight += 16;
            lua_pop(V, 1);
        }
        break;
    default:
        luaL_error(V, "%s a %s, which cannot leave site code", w->lim->what, luaL_typename(V, idx));
    }
    if (w->weight > w->lim->max_weight)
        luaL_error(V, "%s more than %I bytes of data", w->lim->what, (lua_Integer)w->lim->max_weight);
}

/* (limits, v1..vn) -> v1..vn, each checked; leaves stack room for copy_out. */
static int check_out_all(lua_State *V)
{
    struct walk w = {lua_touserdata(V, 1), 0, 0};
    int n = lua_gettop(V) - 1;
    luaL_checkstack(V, 6 * MAX_DEPTH + 40, "too many values");
    lua_newtable(V);
    w.seen = lua_gettop(V);
    for (int i = 2; i <= n + 1; i++)
        check_out(V, &w, i, 0);
    lua_pop(V, 1);
    luaL_checkstack(V, 6 * MAX_DEPTH + 40, "too many values"); /* for copy_out, which cannot grow it */
    return n;
}

static void push_proxy(lua_State *L, int vm_idx, lua_Integer id);

/* Pushes onto L a copy of the value at idx in V; map (in L) maps V's tables to their copies. */
static void copy_out(lua_State *L, lua_State *V, int idx, int vm_idx, int map)
{
    switch (lua_type(V, idx)) {
    case LUA_TBOOLEAN: lua_pushboolean(L, lua_toboolean(V, idx)); break;
    case LUA_TNUMBER:
        if (lua_isinteger(V, idx))
            lua_pushinteger(L, lua_tointeger(V, idx));
        else
            lua_pushnumber(L, lua_tonumber(V, idx));
        break;
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(V, idx, &len);
        lua_pushlstring(L, s, len);
        break;
    }
    case LUA_TLIGHTUSERDATA: lua_pushlightuserdata(L, lua_touserdata(V, idx)); break;
    case LUA_TFUNCTION: {
        lua_rawgetp(V, LUA_REGISTRYINDEX, &KEY_FNIDS);
        lua_pushvalue(V, idx);
        lua_rawget(V, -2);
        lua_Integer id = lua_tointeger(V, -1);
        lua_pop(V, 2);
        push_proxy(L, vm_idx, id);
        break;
    }
    case LUA_TTABLE: {
        const void *key = lua_topointer(V, idx);
        if (lua_rawgetp(L, map, key) == LUA_TTABLE)
            break;
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_rawsetp(L, map, key);
        int copy = lua_gettop(L);
        lua_pushnil(V);
        while (lua_next(V, idx)) {
            int top = lua_gettop(V);
            copy_out(L, V, top - 1, vm_idx, map);
            copy_out(L, V, top, vm_idx, map);
            lua_rawset(L, copy);
            lua_pop(V, 1);
        }
        break;
    }
    default: lua_pushnil(L); break; /* check_out let nothing else through */
    }
}

/* Replaces L's stack by copies of the values on V's stack (which is then emptied); returns how many. */
static int move_out(lua_State *L, struct site_vm *vm, int vm_idx, const struct out_limits *lim)
{
    lua_State *V = vm->V;
    int n = lua_gettop(V);
    int status = protected_call(vm, check_out_all, (void *)lim, n, LUA_MULTRET);
    if (status != LUA_OK)
        return raise_site_error(L, vm, status);
    if (!lua_checkstack(V, 6 * MAX_DEPTH + 20)) /* check_out_all made the room: allocates nothing */
        return luaL_error(L, "no stack for the values of site code");
    luaL_checkstack(L, n + 4 * MAX_DEPTH + 20, "too many values from site code");
    lua_pushvalue(L, vm_idx);
    lua_newtable(L);
    int map = lua_gettop(L);
    for (int i = 1; i <= n; i++)
        copy_out(L, V, i, map - 1, map);
    lua_settop(V, 0);
    return n;
}

/* ---- into the site state: copied there in protected mode, reading L without allocating in it ---- */

struct call_in {
    lua_State *L;
    int nargs;
    lua_Integer id;
};

static void copy_in(lua_State *V, lua_State *L, int idx, int depth, int seen)
{
    switch (lua_type(L, idx)) {
    case LUA_TNIL: lua_pushnil(V); break;
    case LUA_TBOOLEAN: lua_pushboolean(V, lua_toboolean(L, idx)); break;
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx))
            lua_pushinteger(V, lua_tointeger(L, idx));
        else
            lua_pushnumber(V, lua_tonumber(L, idx));
        break;
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        lua_pushlstring(V, s, len);
        break;
    }
    case LUA_TLIGHTUSERDATA: lua_pushlightuserdata(V, lua_touserdata(L, idx)); break;
    case LUA_TTABLE: {
        if (depth >= MAX_DEPTH)
            luaL_error(V, "site code cannot be given tables nested more than %d deep", MAX_DEPTH);
        const void *key = lua_topointer(L, idx);
        if (lua_rawgetp(V, seen, key) == LUA_TTABLE)
            break;
        lua_pop(V, 1);
        luaL_checkstack(V, 6, "tables nested too deep");
        lua_newtable(V);
        lua_pushvalue(V, -1);
        lua_rawsetp(V, seen, key);
        int copy = lua_gettop(V);
        lua_pushnil(L);
        while (lua_next(L, idx)) { /* raw, so no metamethod of the engine's runs here */
            int top = lua_gettop(L);
            copy_in(V, L, top - 1, depth + 1, seen);
            copy_in(V, L, top, depth + 1, seen);
            lua_rawset(V, copy);
            lua_pop(L, 1);
        }
        break;
    }
    default:
        luaL_error(V, "site code cannot be given a %s", lua_typename(L, lua_type(L, idx)));
    }
}

/* (call_in) -> the function, then copies of the arguments */
static int push_call(lua_State *V)
{
    struct call_in *a = lua_touserdata(V, 1);
    luaL_checkstack(V, a->nargs + 8, "too many arguments");
    lua_newtable(V);
    int seen = lua_gettop(V);
    lua_rawgetp(V, LUA_REGISTRYINDEX, &KEY_FNS);
    lua_rawgeti(V, -1, a->id);
    lua_remove(V, -2);
    for (int i = 1; i <= a->nargs; i++)
        copy_in(V, a->L, i, 0, seen);
    return a->nargs + 1;
}

/* A function of site code, seen from the engine: copies its arguments in, runs it there under the
 * budget the engine's caller set (host.call_with_budget), copies its results out. */
static int site_proxy(lua_State *L)
{
    struct site_vm *vm = check_vm(L, lua_upvalueindex(1));
    if (!budget.active)
        return luaL_error(L, "site code runs only under an instruction budget (host.call_with_budget)");
    lua_State *V = vm->V;
    int nargs = lua_gettop(L);
    luaL_checkstack(L, 2 * MAX_DEPTH + 20, "copying arguments");
    lua_settop(V, 0);
    vm->refused = 0;
    struct call_in a = {L, nargs, lua_tointeger(L, lua_upvalueindex(2))};
    int status = protected_call(vm, push_call, &a, 0, LUA_MULTRET);
    if (status != LUA_OK)
        return raise_site_error(L, vm, status);
    lua_sethook(V, budget_hook, LUA_MASKCOUNT, SITE_STEP);
    status = lua_pcall(V, nargs, LUA_MULTRET, 0);
    if (status != LUA_OK || budget.spent)
        return raise_site_error(L, vm, status);
    lua_settop(L, 0);
    lua_pushvalue(L, lua_upvalueindex(1));
    return move_out(L, vm, 1, &RESULT_LIMITS);
}

static void push_proxy(lua_State *L, int vm_idx, lua_Integer id)
{
    lua_pushvalue(L, vm_idx);
    lua_pushinteger(L, id);
    lua_pushcclosure(L, site_proxy, 2);
}

/* ---- the site state's methods ---- */

struct load_args {
    const char *text, *name;
    size_t len;
};

/* (load_args) -> the id of the chunk, loaded with the prelude's environment */
static int load_chunk(lua_State *V)
{
    struct load_args *a = lua_touserdata(V, 1);
    if (luaL_loadbufferx(V, a->text, a->len, a->name, "t") != LUA_OK)
        return lua_error(V);
    lua_rawgetp(V, LUA_REGISTRYINDEX, &KEY_ENV);
    lua_setupvalue(V, -2, 1);
    lua_pushinteger(V, register_function(V, lua_gettop(V)));
    return 1;
}

/* vm:load(text, chunkname) -> the chunk as a function to call under a budget | nil, message */
static int site_vm_load(lua_State *L)
{
    struct site_vm *vm = check_vm(L, 1);
    struct load_args a;
    a.text = luaL_checklstring(L, 2, &a.len);
    a.name = luaL_checkstring(L, 3);
    lua_settop(vm->V, 0);
    vm->refused = 0;
    int status = protected_call(vm, load_chunk, &a, 0, 1);
    if (status != LUA_OK) {
        lua_pushnil(L);
        if (vm->refused || status == LUA_ERRMEM)
            lua_pushfstring(L, "used more than its memory limit of %d MiB", (int)(vm->limit >> 20));
        else
            lua_pushstring(L, lua_tostring(vm->V, -1));
        lua_settop(vm->V, 0);
        return 2;
    }
    lua_Integer id = lua_tointeger(vm->V, -1);
    lua_settop(vm->V, 0);
    push_proxy(L, 1, id);
    return 1;
}

/* vm:values() -> a copy of what the code assigned to globals (functions as proxies) */
static int site_vm_values(lua_State *L)
{
    struct site_vm *vm = check_vm(L, 1);
    lua_settop(L, 1);
    lua_settop(vm->V, 0);
    vm->refused = 0;
    lua_rawgetp(vm->V, LUA_REGISTRYINDEX, &KEY_VALUES);
    return move_out(L, vm, 1, &VALUE_LIMITS);
}

/* vm:memory() -> bytes in use, the limit */
static int site_vm_memory(lua_State *L)
{
    struct site_vm *vm = check_vm(L, 1);
    lua_pushinteger(L, (lua_Integer)vm->used);
    lua_pushinteger(L, (lua_Integer)vm->limit);
    return 2;
}

static int site_vm_close(lua_State *L)
{
    struct site_vm *vm = luaL_checkudata(L, 1, SITE_VM);
    if (vm->V != NULL) {
        lua_close(vm->V);
        vm->V = NULL;
    }
    return 0;
}

struct setup {
    lua_State *L;
    const char *prelude;
    size_t len;
    int nargs; /* strings at L's 3.. */
};

/* The libraries site code may use: no io, package, debug; os with its clocks only; no way to load
 * code (the engine loads it, as text). */
static int setup_site_state(lua_State *V)
{
    static const char *const removed[] = {"dofile", "loadfile", "load", "print", "collectgarbage", NULL};
    static const char *const os_kept[] = {"time", "date", "clock", "difftime", NULL};
    struct setup *s = lua_touserdata(V, 1);
    luaL_requiref(V, LUA_GNAME, luaopen_base, 1);
    luaL_requiref(V, LUA_STRLIBNAME, luaopen_string, 1);
    luaL_requiref(V, LUA_TABLIBNAME, luaopen_table, 1);
    luaL_requiref(V, LUA_MATHLIBNAME, luaopen_math, 1);
    luaL_requiref(V, LUA_UTF8LIBNAME, luaopen_utf8, 1);
    luaL_requiref(V, LUA_COLIBNAME, luaopen_coroutine, 1);
    lua_settop(V, 1);
    for (const char *const *n = removed; *n; n++) {
        lua_pushnil(V);
        lua_setglobal(V, *n);
    }
    lua_getglobal(V, LUA_STRLIBNAME);
    lua_pushnil(V);
    lua_setfield(V, -2, "dump");
    lua_pop(V, 1);
    luaopen_os(V);
    lua_newtable(V);
    for (const char *const *n = os_kept; *n; n++) {
        lua_getfield(V, -2, *n);
        lua_setfield(V, -2, *n);
    }
    lua_setglobal(V, "os");
    lua_pop(V, 1);
    lua_newtable(V);
    lua_rawsetp(V, LUA_REGISTRYINDEX, &KEY_FNS);
    lua_newtable(V);
    lua_rawsetp(V, LUA_REGISTRYINDEX, &KEY_FNIDS);

    if (luaL_loadbufferx(V, s->prelude, s->len, "=site prelude", "t") != LUA_OK)
        return lua_error(V);
    luaL_checkstack(V, s->nargs + 1, "too many arguments");
    lua_pushcfunction(V, site_charge);
    for (int i = 0; i < s->nargs; i++) {
        size_t len;
        const char *arg = lua_tolstring(s->L, 3 + i, &len);
        lua_pushlstring(V, arg, len);
    }
    lua_call(V, s->nargs + 1, 2);
    if (!lua_istable(V, -2) || !lua_istable(V, -1))
        return luaL_error(V, "the site prelude must return the environment and the values table");
    lua_rawsetp(V, LUA_REGISTRYINDEX, &KEY_VALUES);
    lua_rawsetp(V, LUA_REGISTRYINDEX, &KEY_ENV);
    return 0;
}

/* host.site_vm(prelude, memory_limit, ...) -> a site state. The prelude (Lua text) runs first, in a
 * state with the libraries above, given charge(n) and the remaining (string) arguments; it returns the environment
 * site code will run in, and the table where assignments to its globals are collected. */
int rb_site_vm_new(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"load", site_vm_load}, {"values", site_vm_values}, {"memory", site_vm_memory},
        {"close", site_vm_close}, {NULL, NULL},
    };
    size_t len;
    const char *prelude = luaL_checklstring(L, 1, &len);
    lua_Integer limit = luaL_checkinteger(L, 2);
    luaL_argcheck(L, limit >= (1 << 20) && limit <= ((lua_Integer)1 << 40), 2, "between 1 MiB and 1 TiB");
    int nargs = lua_gettop(L) - 2;
    for (int i = 3; i <= lua_gettop(L); i++)
        luaL_checkstring(L, i);
    struct site_vm *vm = lua_newuserdatauv(L, sizeof *vm, 0);
    memset(vm, 0, sizeof *vm);
    vm->limit = (size_t)limit;
    if (luaL_newmetatable(L, SITE_VM)) {
        luaL_newlib(L, methods);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, site_vm_close);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, site_vm_close);
        lua_setfield(L, -2, "__close");
    }
    lua_setmetatable(L, -2);
    vm->V = lua_newstate(site_alloc, vm);
    if (vm->V == NULL)
        return luaL_error(L, "cannot create a Lua state for site code");
    struct setup s = {L, prelude, len, nargs};
    int status = protected_call(vm, setup_site_state, &s, 0, 0);
    if (status != LUA_OK)
        return raise_site_error(L, vm, status);
    lua_settop(vm->V, 0);
    lua_sethook(vm->V, budget_hook, LUA_MASKCOUNT, SITE_STEP);
    return 1;
}
