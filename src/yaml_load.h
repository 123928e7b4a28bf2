/* YAML to Lua values, as a function of its input only (no files, no globals): the entry point a
 * fuzzer calls. See yaml.c for how scalars are typed. Not named yaml.h after its file: with -Isrc that
 * name would hide libyaml's <yaml.h>, which yaml.c and versions.c include. */
#ifndef RUNBOOK_YAML_LOAD_H
#define RUNBOOK_YAML_LOAD_H
#include <lua.h>
#include <stddef.h>

/* Pushes the value of the single document in text[0..len) (json.null for an empty stream) and
 * returns 0; or pushes nothing, writes "LINE:COLUMN: problem" into error and returns -1.
 * strings != 0 keeps every non-null scalar as text. Raises only when Lua runs out of memory. */
int rb_yaml_load(lua_State *L, const char *text, size_t len, int strings, char *error, size_t error_size);

#endif
