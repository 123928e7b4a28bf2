/* Site code (policy files, inventories): the instruction budget, and the Lua state of its own that such
 * code runs in, with a memory limit. Both are reached from Lua as runbook.host functions. */
#ifndef RUNBOOK_SITEVM_H
#define RUNBOOK_SITEVM_H
#include <lua.h>

/* host.call_with_budget(n, f, ...) -> pcall(f, ...) allowed about n VM instructions (and n/5e6 s). */
int rb_call_with_budget(lua_State *L);
/* host.site_vm(prelude, memory_limit, ...) -> a Lua state for site code (see sitevm.c). */
int rb_site_vm_new(lua_State *L);

#endif
