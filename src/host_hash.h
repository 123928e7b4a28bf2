/* runbook.host's hashing and randomness (host_hash.c): SHA-256 and the Hasher type, random hex. */
#ifndef RUNBOOK_HOST_HASH_H
#define RUNBOOK_HOST_HASH_H
#include <lua.h>
#include <stddef.h>

/* Writes the n bytes of in as 2n lowercase hex digits and a NUL into out. */
void rb_hex_encode(const unsigned char *in, size_t n, char *out);

/* The runbook.host functions (see each one's comment in host_hash.c). */
int rb_host_sha256(lua_State *L);
int rb_host_sha256_file(lua_State *L);
int rb_host_hasher(lua_State *L);
int rb_host_random_hex(lua_State *L);
/* Makes the metatable of Hasher; before one is created. */
void rb_open_hasher_type(lua_State *L);

#endif
