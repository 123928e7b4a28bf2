/* The engine's phase decides whether the bindings may change anything.
 * Planning is read-only whatever a runbook does: every binding asks here before a mutating call. */
#ifndef RUNBOOK_PHASE_H
#define RUNBOOK_PHASE_H
#include <lua.h>

enum rb_phase {
    RB_PHASE_READONLY = 0, /* the default: `exec` without --write, loading, showing */
    RB_PHASE_PLAN,         /* discovery: read-only by contract */
    RB_PHASE_APPLY,        /* carrying out an action: mutations allowed */
    RB_PHASE_WRITE,        /* `exec --write`: the operator asked for mutations */
};

void rb_phase_set(enum rb_phase phase);
enum rb_phase rb_phase_get(void);
const char *rb_phase_name(enum rb_phase phase);
/* Raises a Lua error naming `what` unless the current phase allows mutations. */
void rb_phase_require_mutation(lua_State *L, const char *what);
/* How many mutations were refused so far: a runbook cannot hide a refusal by catching the error. */
int rb_phase_refusals(void);

#endif
