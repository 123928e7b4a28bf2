/* runbook.host's files written piece by piece, one type each: File, the journal's append-only file (every
 * line on disk before append returns), and Output, a backup: created exclusively (an existing backup is never
 * overwritten), hashed (SHA-256) as it is written, fsync'd on close. */
#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/evp.h>

#include "crashpoint.h"
#include "host_files.h"
#include "host_hash.h"
#include "host_streams.h"

#define FILE_META "runbook.host.File"
#define OUTPUT_META "runbook.host.Output"

struct append_file {
    int fd;
};

/* open_append(path[, how]): an append-only file (mode 0600) whose every line is on disk before append
 * returns. how = "new": the file must not exist yet; "existing": it must; by default it is created if
 * missing. Either way it is a regular file of this user's, and a symbolic link is never followed. */
int rb_host_open_append(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    static const char *const hows[] = {"either", "new", "existing", NULL};
    int how = luaL_checkoption(L, 2, "either", hows);
    int create = how != 2;
    struct append_file *f = lua_newuserdatauv(L, sizeof *f, 0);
    f->fd = -1;
    luaL_setmetatable(L, FILE_META);
    int flags = O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC | (how == 1 ? O_CREAT | O_EXCL : how == 0 ? O_CREAT : 0);
    f->fd = open(path, flags, 0600);
    if (f->fd < 0) {
        if (errno == ELOOP) {
            lua_pushnil(L);
            lua_pushfstring(L, "%s is a symbolic link; runbook does not follow links to journals", path);
            return 2;
        }
        return rb_push_errno(L, path);
    }
    struct stat st;
    if (fstat(f->fd, &st) != 0)
        return rb_push_errno(L, path);
    if (!S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
        close(f->fd);
        f->fd = -1;
        lua_pushnil(L);
        lua_pushfstring(L, "%s is not a regular file of yours (uid %d); it is not written to", path, (int)geteuid());
        return 2;
    }
    if (create)
        rb_fsync_parent_dir(path);
    return 1;
}

static struct append_file *check_file(lua_State *L)
{
    struct append_file *f = luaL_checkudata(L, 1, FILE_META);
    if (f->fd < 0)
        luaL_error(L, "attempt to use a closed file");
    return f;
}

static int file_append(lua_State *L)
{
    struct append_file *f = check_file(L);
    size_t len;
    const char *data = luaL_checklstring(L, 2, &len);
    if (rb_write_all(f->fd, data, len) != 0 || fdatasync(f->fd) != 0)
        return rb_push_errno(L, "journal write");
    rb_crash_point("journal");
    lua_pushboolean(L, 1);
    return 1;
}

/* truncate(length[, expected_size]) -> true | nil, message: cuts a torn tail off in place, after the
 * file is on disk; needs no free space, unlike a rewrite. With expected_size, refuses a file that
 * changed size since it was read. */
static int file_truncate(lua_State *L)
{
    struct append_file *f = check_file(L);
    lua_Integer length = luaL_checkinteger(L, 2);
    luaL_argcheck(L, length >= 0, 2, "a length");
    struct stat st;
    if (fsync(f->fd) != 0 || fstat(f->fd, &st) != 0)
        return rb_push_errno(L, "journal repair");
    if (!lua_isnoneornil(L, 3) && (lua_Integer)st.st_size != luaL_checkinteger(L, 3)) {
        lua_pushnil(L);
        lua_pushfstring(L, "the journal changed while it was read (%I bytes, now %I)", luaL_checkinteger(L, 3),
                        (lua_Integer)st.st_size);
        return 2;
    }
    if (length > (lua_Integer)st.st_size) {
        lua_pushnil(L);
        lua_pushfstring(L, "the journal is shorter (%I bytes) than its valid part (%I)", (lua_Integer)st.st_size, length);
        return 2;
    }
    if (ftruncate(f->fd, (off_t)length) != 0 || fsync(f->fd) != 0)
        return rb_push_errno(L, "journal repair");
    lua_pushboolean(L, 1);
    return 1;
}

static int file_close(lua_State *L)
{
    struct append_file *f = luaL_checkudata(L, 1, FILE_META);
    if (f->fd >= 0) {
        close(f->fd);
        f->fd = -1;
    }
    return 0;
}

struct output_file {
    int fd;
    EVP_MD_CTX *digest;
    lua_Integer size;
    char *path;
};

static void output_release(struct output_file *o)
{
    if (o->fd >= 0)
        close(o->fd);
    o->fd = -1;
    if (o->digest)
        EVP_MD_CTX_free(o->digest);
    o->digest = NULL;
    free(o->path);
    o->path = NULL;
}

/* create_output(path[, mode]) -> output | nil, message. Fails if the file exists. */
int rb_host_create_output(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    mode_t mode = (mode_t)luaL_optinteger(L, 2, 0600);
    struct output_file *o = lua_newuserdatauv(L, sizeof *o, 0);
    memset(o, 0, sizeof *o);
    o->fd = -1;
    luaL_setmetatable(L, OUTPUT_META);
    o->fd = open(path, RB_NEW_FILE_FLAGS, mode);
    if (o->fd < 0)
        return rb_push_errno(L, path);
    o->digest = EVP_MD_CTX_new();
    o->path = strdup(path);
    if (!o->digest || !o->path || !EVP_DigestInit_ex(o->digest, EVP_sha256(), NULL))
        return luaL_error(L, "out of memory creating %s", path);
    return 1;
}

static struct output_file *check_output(lua_State *L)
{
    struct output_file *o = luaL_checkudata(L, 1, OUTPUT_META);
    if (o->fd < 0)
        luaL_error(L, "attempt to use a closed output file");
    return o;
}

static int output_write(lua_State *L)
{
    struct output_file *o = check_output(L);
    size_t len;
    const char *data = luaL_checklstring(L, 2, &len);
    if (rb_write_all(o->fd, data, len) != 0)
        return rb_push_errno(L, o->path);
    EVP_DigestUpdate(o->digest, data, len);
    o->size += (lua_Integer)len;
    rb_crash_point("backup-write");
    lua_pushboolean(L, 1);
    return 1;
}

static int output_size(lua_State *L)
{
    lua_pushinteger(L, check_output(L)->size);
    return 1;
}

/* close() -> sha256 hex, size | nil, message. The data is on disk when it returns. */
static int output_close(lua_State *L)
{
    struct output_file *o = check_output(L);
    if (fsync(o->fd) != 0) {
        int e = errno;
        lua_pushnil(L);
        lua_pushfstring(L, "%s: %s", o->path, strerror(e));
        output_release(o);
        return 2;
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    EVP_DigestFinal_ex(o->digest, md, &md_len);
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    rb_hex_encode(md, md_len, hex);
    rb_fsync_parent_dir(o->path);
    lua_Integer size = o->size;
    output_release(o);
    lua_pushstring(L, hex);
    lua_pushinteger(L, size);
    return 2;
}

static int output_gc(lua_State *L)
{
    output_release(luaL_checkudata(L, 1, OUTPUT_META));
    return 0;
}

static const luaL_Reg output_methods[] = {
    {"write", output_write},
    {"size", output_size},
    {"close", output_close},
    {NULL, NULL},
};

static const luaL_Reg file_methods[] = {
    {"append", file_append},
    {"truncate", file_truncate},
    {"close", file_close},
    {NULL, NULL},
};

void rb_open_stream_types(lua_State *L)
{
    luaL_newmetatable(L, FILE_META);
    luaL_newlib(L, file_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, file_close);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, file_close);
    lua_setfield(L, -2, "__close");
    lua_pop(L, 1);
    luaL_newmetatable(L, OUTPUT_META);
    luaL_newlib(L, output_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, output_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, output_gc); /* like __gc: releases, without the fsync close() does; idempotent */
    lua_setfield(L, -2, "__close");
    lua_pop(L, 1);
}
