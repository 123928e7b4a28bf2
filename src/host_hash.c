/* runbook.host's hashing and randomness: SHA-256 of a string, of a file, or incrementally (the Hasher type),
 * and random bytes in hex, from OpenSSL. */
#include <errno.h>
#include <lauxlib.h>
#include <stdio.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "host_files.h"
#include "host_hash.h"

#define HASHER_META "runbook.host.Hasher"

void rb_hex_encode(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

int rb_host_sha256(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (!EVP_Digest(s, len, md, &md_len, EVP_sha256(), NULL))
        return luaL_error(L, "sha256 failed");
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    rb_hex_encode(md, md_len, hex);
    lua_pushstring(L, hex);
    return 1;
}

int rb_host_sha256_file(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    FILE *f = fopen(path, "rb");
    if (!f)
        return rb_push_errno(L, path);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        EVP_DigestUpdate(ctx, buf, n);
    int failed = ferror(f);
    fclose(f);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    EVP_DigestFinal_ex(ctx, md, &md_len);
    EVP_MD_CTX_free(ctx);
    if (failed) {
        errno = EIO;
        return rb_push_errno(L, path);
    }
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    rb_hex_encode(md, md_len, hex);
    lua_pushstring(L, hex);
    return 1;
}

/* hasher(): an incremental SHA-256, for content too large to hash as one string. */
int rb_host_hasher(lua_State *L)
{
    EVP_MD_CTX **ctx = lua_newuserdatauv(L, sizeof *ctx, 0);
    *ctx = NULL;
    luaL_setmetatable(L, HASHER_META);
    *ctx = EVP_MD_CTX_new();
    if (!*ctx || !EVP_DigestInit_ex(*ctx, EVP_sha256(), NULL))
        return luaL_error(L, "out of memory creating a hasher");
    return 1;
}

static EVP_MD_CTX *check_hasher(lua_State *L)
{
    EVP_MD_CTX **ctx = luaL_checkudata(L, 1, HASHER_META);
    if (*ctx == NULL)
        luaL_error(L, "attempt to use a finished hasher");
    return *ctx;
}

static int hasher_update(lua_State *L)
{
    EVP_MD_CTX *ctx = check_hasher(L);
    size_t len;
    const char *s = luaL_checklstring(L, 2, &len);
    EVP_DigestUpdate(ctx, s, len);
    lua_settop(L, 1);
    return 1;
}

/* hex() finishes the hash: the hasher cannot be updated afterwards. */
static int hasher_hex(lua_State *L)
{
    EVP_MD_CTX *ctx = check_hasher(L);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    EVP_DigestFinal_ex(ctx, md, &md_len);
    EVP_MD_CTX_free(ctx);
    *(EVP_MD_CTX **)lua_touserdata(L, 1) = NULL;
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    rb_hex_encode(md, md_len, hex);
    lua_pushstring(L, hex);
    return 1;
}

static int hasher_gc(lua_State *L)
{
    EVP_MD_CTX **ctx = luaL_checkudata(L, 1, HASHER_META);
    if (*ctx)
        EVP_MD_CTX_free(*ctx);
    *ctx = NULL;
    return 0;
}

int rb_host_random_hex(lua_State *L)
{
    lua_Integer n = luaL_checkinteger(L, 1);
    luaL_argcheck(L, n > 0 && n <= 64, 1, "between 1 and 64 bytes");
    unsigned char bytes[64];
    if (RAND_bytes(bytes, (int)n) != 1)
        return luaL_error(L, "no random bytes available");
    char hex[129];
    rb_hex_encode(bytes, (size_t)n, hex);
    lua_pushstring(L, hex);
    return 1;
}

static const luaL_Reg hasher_methods[] = {
    {"update", hasher_update},
    {"hex", hasher_hex},
    {NULL, NULL},
};

void rb_open_hasher_type(lua_State *L)
{
    luaL_newmetatable(L, HASHER_META);
    luaL_newlib(L, hasher_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, hasher_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, hasher_gc);
    lua_setfield(L, -2, "__close");
    lua_pop(L, 1);
}
