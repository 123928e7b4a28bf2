#include "phase.h"

#include <lauxlib.h>

static enum rb_phase current_phase = RB_PHASE_READONLY;
static int refusal_count = 0;

void rb_phase_set(enum rb_phase phase)
{
    current_phase = phase;
}

enum rb_phase rb_phase_get(void)
{
    return current_phase;
}

const char *rb_phase_name(enum rb_phase phase)
{
    switch (phase) {
    case RB_PHASE_PLAN: return "plan";
    case RB_PHASE_APPLY: return "apply";
    case RB_PHASE_WRITE: return "write";
    case RB_PHASE_READONLY: break;
    }
    return "readonly";
}

void rb_phase_require_mutation(lua_State *L, const char *what)
{
    switch (current_phase) {
    case RB_PHASE_APPLY:
    case RB_PHASE_WRITE:
        return;
    case RB_PHASE_PLAN:
        refusal_count++;
        luaL_error(L, "refused: %s while planning; planning is read-only, changes happen only when an action is applied",
                   what);
        return;
    case RB_PHASE_READONLY:
        break;
    }
    refusal_count++;
    luaL_error(L, "refused: %s in read-only mode (use `runbook exec --write` to allow changes)", what);
}

int rb_phase_refusals(void)
{
    return refusal_count;
}
