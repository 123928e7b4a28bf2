/* runbook.host's terminal: whether a descriptor is one and how wide, writing output (a reader that went
 * away is noted, not fatal), reading a line of input. */
#include <errno.h>
#include <lauxlib.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "host_term.h"

int rb_host_isatty(lua_State *L)
{
    lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)));
    return 1;
}

int rb_host_term_width(lua_State *L)
{
    struct winsize ws;
    if (ioctl((int)luaL_checkinteger(L, 1), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        lua_pushinteger(L, ws.ws_col);
    else
        lua_pushinteger(L, 80);
    return 1;
}

/* Output whose reader went away (`runbook apply ... | head`): SIGPIPE is ignored (main.c), so the
 * write fails with EPIPE instead of killing the process mid-action; the stream is then marked closed
 * (bit 1: stdout, bit 2: stderr), later writes to it are dropped, and once an apply has trapped
 * signals the run stops as if interrupted. */
static volatile sig_atomic_t output_closed = 0;

int rb_output_closed(void)
{
    return output_closed;
}

int rb_host_write(lua_State *L)
{
    int fd = (int)luaL_checkinteger(L, 1);
    size_t len;
    const char *s = luaL_checklstring(L, 2, &len);
    FILE *stream = fd == 2 ? stderr : stdout;
    int bit = fd == 2 ? 2 : 1;
    if (output_closed & bit)
        return 0;
    errno = 0;
    size_t written = fwrite(s, 1, len, stream);
    if ((fflush(stream) != 0 || written < len) && errno == EPIPE) {
        output_closed |= bit;
        clearerr(stream);
    }
    return 0;
}

/* read_line(): one line from standard input without its newline, or nil at end of input. */
int rb_host_read_line(lua_State *L)
{
    char buf[1024];
    if (fgets(buf, sizeof buf, stdin) == NULL)
        return 0;
    size_t n = strlen(buf);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    lua_pushlstring(L, buf, n);
    return 1;
}
