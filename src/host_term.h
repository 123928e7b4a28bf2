/* runbook.host's terminal (host_term.c): descriptors, width, output, a line of input. */
#ifndef RUNBOOK_HOST_TERM_H
#define RUNBOOK_HOST_TERM_H
#include <lua.h>

/* Which output streams were found closed by their reader: bit 1 stdout, bit 2 stderr. */
int rb_output_closed(void);

/* The runbook.host functions (see each one's comment in host_term.c). */
int rb_host_isatty(lua_State *L);
int rb_host_term_width(lua_State *L);
int rb_host_write(lua_State *L);
int rb_host_read_line(lua_State *L);

#endif
