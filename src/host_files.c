/* runbook.host's files and directories, whole: read, written (atomically, fsync'd), renamed, removed,
 * described, listed. Written the careful way (0600, fsync, atomic rename) because plans and journals must
 * survive a crash, and created new (O_EXCL, O_NOFOLLOW): a name planted in advance, a symbolic link above
 * all, is never followed or reused. Files written piece by piece are host_streams.c. */
#define _GNU_SOURCE /* renameat2 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/rand.h>

#include "host_files.h"
#include "host_hash.h"

int rb_push_errno(lua_State *L, const char *what)
{
    int e = errno;
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", what, strerror(e));
    return 2;
}

/* read_file(path[, nofollow]): with nofollow, a symbolic link at path is refused (ELOOP), not followed. */
int rb_host_read_file(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    int fd = open(path, O_RDONLY | O_CLOEXEC | (lua_toboolean(L, 2) ? O_NOFOLLOW : 0));
    if (fd < 0)
        return rb_push_errno(L, path);
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        int e = errno;
        close(fd);
        errno = e;
        return rb_push_errno(L, path);
    }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    size_t n;
    do {
        char *p = luaL_prepbuffer(&b);
        n = fread(p, 1, LUAL_BUFFERSIZE, f);
        luaL_addsize(&b, n);
    } while (n == LUAL_BUFFERSIZE);
    int failed = ferror(f);
    fclose(f);
    if (failed) {
        errno = EIO;
        return rb_push_errno(L, path);
    }
    luaL_pushresult(&b);
    return 1;
}

int rb_write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, data, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        data += w;
        len -= (size_t)w;
    }
    return 0;
}

void rb_fsync_parent_dir(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* open_temporary(path, mode) -> fd, with the name (path.tmp.PID.RANDOM) pushed on the stack; or -1.
 * The name cannot be guessed, and one that exists is never reused, whatever it is. */
static int open_temporary(lua_State *L, const char *path, mode_t mode)
{
    for (int attempt = 0; attempt < 16; attempt++) {
        unsigned char r[6];
        char hex[2 * sizeof r + 1];
        if (RAND_bytes(r, (int)sizeof r) != 1) {
            errno = EIO;
            return -1;
        }
        rb_hex_encode(r, sizeof r, hex);
        const char *tmp = lua_pushfstring(L, "%s.tmp.%d.%s", path, (int)getpid(), hex);
        int fd = open(tmp, RB_NEW_FILE_FLAGS, mode);
        if (fd >= 0 || errno != EEXIST)
            return fd;
        lua_pop(L, 1);
    }
    errno = EEXIST;
    return -1;
}

/* write_file(path, data, mode): atomic replace through a new temporary file, fsync'd, then renamed. */
int rb_host_write_file(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    size_t len;
    const char *data = luaL_checklstring(L, 2, &len);
    mode_t mode = (mode_t)luaL_optinteger(L, 3, 0600);
    int fd = open_temporary(L, path, mode);
    if (fd < 0)
        return rb_push_errno(L, path);
    const char *tmp = lua_tostring(L, -1);
    if (fchmod(fd, mode) != 0 || rb_write_all(fd, data, len) != 0 || fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        errno = e;
        return rb_push_errno(L, path);
    }
    close(fd);
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        errno = e;
        return rb_push_errno(L, path);
    }
    rb_fsync_parent_dir(path);
    lua_pushboolean(L, 1);
    return 1;
}

/* rename(from, to[, no_replace]): atomic replace, then the directory entry is made durable. With
 * no_replace, fails with EEXIST rather than replace `to`, in one step where the filesystem can
 * (renameat2); elsewhere a check just before (a small window). */
int rb_host_rename(lua_State *L)
{
    const char *from = luaL_checkstring(L, 1), *to = luaL_checkstring(L, 2);
    int no_replace = lua_toboolean(L, 3);
    int done = 0;
    if (no_replace) {
        if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
            done = 1;
        else if (errno != EINVAL && errno != ENOSYS)
            return rb_push_errno(L, to);
        else if (access(to, F_OK) == 0) {
            errno = EEXIST;
            return rb_push_errno(L, to);
        }
    }
    if (!done && rename(from, to) != 0)
        return rb_push_errno(L, to);
    rb_fsync_parent_dir(to);
    lua_pushboolean(L, 1);
    return 1;
}

int rb_host_remove(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    if (unlink(path) != 0)
        return rb_push_errno(L, path);
    lua_pushboolean(L, 1);
    return 1;
}

/* mkdirs(path[, mode[, new]]): the directory and its parents. With `new`, the last directory must
 * not exist yet: mkdir(2) is the one test that two attempts racing for a name cannot both pass. */
int rb_host_mkdirs(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    mode_t mode = (mode_t)luaL_optinteger(L, 2, 0700);
    int must_be_new = lua_toboolean(L, 3);
    char buf[4096];
    if (strlen(path) >= sizeof buf)
        return luaL_error(L, "path too long: %s", path);
    strcpy(buf, path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, mode) != 0 && errno != EEXIST)
            return rb_push_errno(L, buf);
        *p = '/';
    }
    if (mkdir(buf, mode) != 0 && (errno != EEXIST || must_be_new))
        return rb_push_errno(L, buf);
    struct stat st;
    if (stat(buf, &st) != 0)
        return rb_push_errno(L, buf);
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return rb_push_errno(L, buf);
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* stat(path[, nofollow]) -> {size, mtime, mode, type, uid} | nil, message. With nofollow, a symbolic
 * link is described itself (type "link"). */
int rb_host_stat(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    struct stat st;
    if ((lua_toboolean(L, 2) ? lstat(path, &st) : stat(path, &st)) != 0)
        return rb_push_errno(L, path);
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, (lua_Integer)st.st_size);
    lua_setfield(L, -2, "size");
    lua_pushinteger(L, (lua_Integer)st.st_mtime);
    lua_setfield(L, -2, "mtime");
    lua_pushinteger(L, (lua_Integer)(st.st_mode & 07777));
    lua_setfield(L, -2, "mode");
    lua_pushstring(L, S_ISDIR(st.st_mode) ? "directory" : S_ISREG(st.st_mode) ? "file"
                      : S_ISLNK(st.st_mode) ? "link" : "other");
    lua_setfield(L, -2, "type");
    lua_pushinteger(L, (lua_Integer)st.st_uid);
    lua_setfield(L, -2, "uid");
    return 1;
}

/* check_private_dir(path) -> true | nil, message: a directory runbook keeps journals or backups in
 * must be its user's (or root's) and writable by nobody else, as ssh demands of ~/.ssh: anyone who can
 * write there can replace a journal or a backup, or plant a link where one will be created. */
int rb_host_check_private_dir(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    struct stat st;
    if (stat(path, &st) != 0)
        return rb_push_errno(L, path);
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return rb_push_errno(L, path);
    }
    if (st.st_uid != geteuid() && st.st_uid != 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s is owned by uid %d, not by you (uid %d); use a directory of your own", path,
                        (int)st.st_uid, (int)geteuid());
        return 2;
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        char mode[16];
        snprintf(mode, sizeof mode, "%04o", (unsigned)(st.st_mode & 07777));
        lua_pushnil(L);
        lua_pushfstring(L, "%s is writable by %s (mode %s): others could replace or add files there; "
                        "run chmod go-w on it or use another directory", path,
                        (st.st_mode & S_IWOTH) ? "others" : "its group", mode);
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

int rb_host_list_dir(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    DIR *d = opendir(path);
    if (!d)
        return rb_push_errno(L, path);
    lua_newtable(L);
    int i = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        lua_pushstring(L, e->d_name);
        lua_rawseti(L, -2, ++i);
    }
    closedir(d);
    return 1;
}

int rb_host_realpath(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    char *resolved = realpath(path, NULL);
    if (!resolved)
        return rb_push_errno(L, path);
    lua_pushstring(L, resolved);
    free(resolved);
    return 1;
}
