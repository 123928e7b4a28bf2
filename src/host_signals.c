/* runbook.host's signals: the first SIGINT/SIGTERM/SIGHUP asks the engine to stop after the actions in
 * flight; a second one ends the process at once (the journal already says which action was under way).
 * Closed output (SIGPIPE, ignored: see host_term.c) stops it the same way. */
#include <lauxlib.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "host_signals.h"
#include "host_term.h"

static volatile sig_atomic_t interrupt_signal = 0;
static int signals_trapped = 0;

static void on_interrupt(int sig)
{
    if (interrupt_signal != 0) {
        static const char msg[] = "\nrunbook: second interrupt, stopping now; `runbook resume` finishes the job\n";
        ssize_t ignored = write(2, msg, sizeof msg - 1);
        (void)ignored;
        _exit(130);
    }
    interrupt_signal = sig;
}

int rb_host_trap_signals(lua_State *L)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    signals_trapped = 1;
    return 0;
}

/* interrupted() -> what asked the run to stop ("SIGINT", "SIGTERM", "SIGHUP", "SIGPIPE (...)"), or nothing. */
int rb_host_interrupted(lua_State *L)
{
    switch (interrupt_signal) {
    case SIGINT: lua_pushliteral(L, "SIGINT"); return 1;
    case SIGTERM: lua_pushliteral(L, "SIGTERM"); return 1;
    case SIGHUP: lua_pushliteral(L, "SIGHUP"); return 1;
    default: break;
    }
    int closed = rb_output_closed();
    if (signals_trapped && closed) {
        lua_pushstring(L, (closed & 1) ? "SIGPIPE (standard output was closed)" : "SIGPIPE (standard error was closed)");
        return 1;
    }
    return 0;
}
