/* runbook.host: the engine's privileged primitives. Runbooks and policies never see this module:
 * the sandboxed `require` refuses it. Files are written the careful way (0600, fsync, atomic rename)
 * because plans and journals must survive a crash, and created new (O_EXCL, O_NOFOLLOW): a name
 * planted in advance, a symbolic link above all, is never followed or reused. */
#define _GNU_SOURCE /* renameat2 */
#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "bindings.h"
#include "clock.h"
#include "crashpoint.h"
#include "embedded.h"
#include "luastate.h"
#include "phase.h"
#include "sitevm.h"
#include "versions.h"

#define FILE_META "runbook.host.File"
#define OUTPUT_META "runbook.host.Output"
#define HASHER_META "runbook.host.Hasher"

static void hex_encode(const unsigned char *in, size_t n, char *out);

static int push_errno(lua_State *L, const char *what)
{
    int e = errno;
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", what, strerror(e));
    return 2;
}

/* ---- files ---- */

/* read_file(path[, nofollow]): with nofollow, a symbolic link at path is refused (ELOOP), not followed. */
static int host_read_file(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    int fd = open(path, O_RDONLY | O_CLOEXEC | (lua_toboolean(L, 2) ? O_NOFOLLOW : 0));
    if (fd < 0)
        return push_errno(L, path);
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        int e = errno;
        close(fd);
        errno = e;
        return push_errno(L, path);
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
        return push_errno(L, path);
    }
    luaL_pushresult(&b);
    return 1;
}

static int write_all(int fd, const char *data, size_t len)
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

static void fsync_parent_dir(const char *path)
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

/* Every file runbook creates is new: O_EXCL, and O_NOFOLLOW so that not even a dangling symbolic
 * link planted under the name is followed. */
#define NEW_FILE_FLAGS (O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC)

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
        hex_encode(r, sizeof r, hex);
        const char *tmp = lua_pushfstring(L, "%s.tmp.%d.%s", path, (int)getpid(), hex);
        int fd = open(tmp, NEW_FILE_FLAGS, mode);
        if (fd >= 0 || errno != EEXIST)
            return fd;
        lua_pop(L, 1);
    }
    errno = EEXIST;
    return -1;
}

/* write_file(path, data, mode): atomic replace through a new temporary file, fsync'd, then renamed. */
static int host_write_file(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    size_t len;
    const char *data = luaL_checklstring(L, 2, &len);
    mode_t mode = (mode_t)luaL_optinteger(L, 3, 0600);
    int fd = open_temporary(L, path, mode);
    if (fd < 0)
        return push_errno(L, path);
    const char *tmp = lua_tostring(L, -1);
    if (fchmod(fd, mode) != 0 || write_all(fd, data, len) != 0 || fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        errno = e;
        return push_errno(L, path);
    }
    close(fd);
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        errno = e;
        return push_errno(L, path);
    }
    fsync_parent_dir(path);
    lua_pushboolean(L, 1);
    return 1;
}

struct append_file {
    int fd;
};

/* open_append(path[, how]): an append-only file (mode 0600) whose every line is on disk before append
 * returns. how = "new": the file must not exist yet; "existing": it must; by default it is created if
 * missing. Either way it is a regular file of this user's, and a symbolic link is never followed. */
static int host_open_append(lua_State *L)
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
        return push_errno(L, path);
    }
    struct stat st;
    if (fstat(f->fd, &st) != 0)
        return push_errno(L, path);
    if (!S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
        close(f->fd);
        f->fd = -1;
        lua_pushnil(L);
        lua_pushfstring(L, "%s is not a regular file of yours (uid %d); it is not written to", path, (int)geteuid());
        return 2;
    }
    if (create)
        fsync_parent_dir(path);
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
    if (write_all(f->fd, data, len) != 0 || fdatasync(f->fd) != 0)
        return push_errno(L, "journal write");
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
        return push_errno(L, "journal repair");
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
        return push_errno(L, "journal repair");
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

/* ---- output files for backups: created exclusively (an existing backup is never overwritten),
 * hashed (SHA-256) as they are written, fsync'd on close ---- */

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
static int host_create_output(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    mode_t mode = (mode_t)luaL_optinteger(L, 2, 0600);
    struct output_file *o = lua_newuserdatauv(L, sizeof *o, 0);
    memset(o, 0, sizeof *o);
    o->fd = -1;
    luaL_setmetatable(L, OUTPUT_META);
    o->fd = open(path, NEW_FILE_FLAGS, mode);
    if (o->fd < 0)
        return push_errno(L, path);
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
    if (write_all(o->fd, data, len) != 0)
        return push_errno(L, o->path);
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
    hex_encode(md, md_len, hex);
    fsync_parent_dir(o->path);
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

static int host_remove(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    if (unlink(path) != 0)
        return push_errno(L, path);
    lua_pushboolean(L, 1);
    return 1;
}

/* mkdirs(path[, mode[, new]]): the directory and its parents. With `new`, the last directory must
 * not exist yet: mkdir(2) is the one test that two attempts racing for a name cannot both pass. */
static int host_mkdirs(lua_State *L)
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
            return push_errno(L, buf);
        *p = '/';
    }
    if (mkdir(buf, mode) != 0 && (errno != EEXIST || must_be_new))
        return push_errno(L, buf);
    struct stat st;
    if (stat(buf, &st) != 0)
        return push_errno(L, buf);
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return push_errno(L, buf);
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* stat(path[, nofollow]) -> {size, mtime, mode, type, uid} | nil, message. With nofollow, a symbolic
 * link is described itself (type "link"). */
static int host_stat(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    struct stat st;
    if ((lua_toboolean(L, 2) ? lstat(path, &st) : stat(path, &st)) != 0)
        return push_errno(L, path);
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
static int host_check_private_dir(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    struct stat st;
    if (stat(path, &st) != 0)
        return push_errno(L, path);
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return push_errno(L, path);
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

static int host_list_dir(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    DIR *d = opendir(path);
    if (!d)
        return push_errno(L, path);
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

static int host_realpath(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    char *resolved = realpath(path, NULL);
    if (!resolved)
        return push_errno(L, path);
    lua_pushstring(L, resolved);
    free(resolved);
    return 1;
}

/* ---- terminal and output ---- */

static int host_isatty(lua_State *L)
{
    lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)));
    return 1;
}

static int host_term_width(lua_State *L)
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

static int host_write(lua_State *L)
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
static int host_read_line(lua_State *L)
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

/* ---- clocks ---- */

static int host_now(lua_State *L)
{
    lua_pushnumber(L, rb_clock_seconds(CLOCK_REALTIME));
    return 1;
}

static int host_monotonic(lua_State *L)
{
    lua_pushnumber(L, rb_clock_seconds(CLOCK_MONOTONIC));
    return 1;
}

static int host_sleep(lua_State *L)
{
    double s = luaL_checknumber(L, 1);
    if (s > 0) {
        struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
        nanosleep(&ts, NULL); /* a signal ends the sleep early, which is what an interrupt wants */
    }
    return 0;
}

/* ---- signals: the first SIGINT/SIGTERM/SIGHUP asks the engine to stop after the actions in flight;
 * a second one ends the process at once (the journal already says which action was under way).
 * Closed output (SIGPIPE, ignored: see host_write) stops it the same way. ---- */

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

static int host_trap_signals(lua_State *L)
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
static int host_interrupted(lua_State *L)
{
    switch (interrupt_signal) {
    case SIGINT: lua_pushliteral(L, "SIGINT"); return 1;
    case SIGTERM: lua_pushliteral(L, "SIGTERM"); return 1;
    case SIGHUP: lua_pushliteral(L, "SIGHUP"); return 1;
    default: break;
    }
    if (signals_trapped && output_closed) {
        lua_pushstring(L, (output_closed & 1) ? "SIGPIPE (standard output was closed)"
                                              : "SIGPIPE (standard error was closed)");
        return 1;
    }
    return 0;
}

/* ---- hashing and randomness ---- */

static void hex_encode(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static int host_sha256(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (!EVP_Digest(s, len, md, &md_len, EVP_sha256(), NULL))
        return luaL_error(L, "sha256 failed");
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    hex_encode(md, md_len, hex);
    lua_pushstring(L, hex);
    return 1;
}

static int host_sha256_file(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    FILE *f = fopen(path, "rb");
    if (!f)
        return push_errno(L, path);
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
        return push_errno(L, path);
    }
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    hex_encode(md, md_len, hex);
    lua_pushstring(L, hex);
    return 1;
}

/* hasher(): an incremental SHA-256, for content too large to hash as one string. */
static int host_hasher(lua_State *L)
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
    hex_encode(md, md_len, hex);
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

/* rename(from, to): atomic replace, then the directory entry is made durable. */
/* rename(from, to[, no_replace]): with no_replace, fails with EEXIST rather than replace `to`, in
 * one step where the filesystem can (renameat2); elsewhere a check just before (a small window). */
static int host_rename(lua_State *L)
{
    const char *from = luaL_checkstring(L, 1), *to = luaL_checkstring(L, 2);
    int no_replace = lua_toboolean(L, 3);
    int done = 0;
    if (no_replace) {
        if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
            done = 1;
        else if (errno != EINVAL && errno != ENOSYS)
            return push_errno(L, to);
        else if (access(to, F_OK) == 0) {
            errno = EEXIST;
            return push_errno(L, to);
        }
    }
    if (!done && rename(from, to) != 0)
        return push_errno(L, to);
    fsync_parent_dir(to);
    lua_pushboolean(L, 1);
    return 1;
}

static int host_random_hex(lua_State *L)
{
    lua_Integer n = luaL_checkinteger(L, 1);
    luaL_argcheck(L, n > 0 && n <= 64, 1, "between 1 and 64 bytes");
    unsigned char bytes[64];
    if (RAND_bytes(bytes, (int)n) != 1)
        return luaL_error(L, "no random bytes available");
    char hex[129];
    hex_encode(bytes, (size_t)n, hex);
    lua_pushstring(L, hex);
    return 1;
}

/* ---- process ---- */

static int host_getpid(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)getpid());
    return 1;
}

static int host_set_phase(lua_State *L)
{
    static const char *const names[] = {"readonly", "plan", "apply", "write", NULL};
    static const enum rb_phase phases[] = {RB_PHASE_READONLY, RB_PHASE_PLAN, RB_PHASE_APPLY, RB_PHASE_WRITE};
    rb_phase_set(phases[luaL_checkoption(L, 1, NULL, names)]);
    return 0;
}

static int host_phase(lua_State *L)
{
    lua_pushstring(L, rb_phase_name(rb_phase_get()));
    lua_pushinteger(L, rb_phase_refusals());
    return 2;
}

/* ---- embedded runbooks ---- */

/* embedded_runbooks() -> {name = source text} */
static int host_embedded_runbooks(lua_State *L)
{
    lua_newtable(L);
    for (const struct embedded_file *f = embedded_runbooks; f->name; f++) {
        lua_pushlstring(L, f->text, (size_t)f->text_size);
        lua_setfield(L, -2, f->name);
    }
    return 1;
}

/* load_embedded_runbook(name, env) -> the runbook's main chunk, from the bytecode compiled with its
 * text at build time, with env as its _ENV. */
static int host_load_embedded_runbook(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    for (const struct embedded_file *f = embedded_runbooks; f->name; f++) {
        if (strcmp(f->name, name) != 0)
            continue;
        rb_push_embedded_chunk(L, f);
        lua_pushvalue(L, 2);
        lua_setupvalue(L, -2, 1); /* a main chunk's one upvalue is its _ENV */
        return 1;
    }
    return luaL_error(L, "no built-in runbook '%s'", name);
}

/* traceback(message): the message handler for xpcall, since runbooks get no debug library. */
static int host_traceback(lua_State *L)
{
    if (!lua_isstring(L, 1))
        return 1; /* structured errors travel unchanged */
    luaL_traceback(L, L, lua_tostring(L, 1), 1);
    return 1;
}

static int host_version(lua_State *L)
{
    lua_pushstring(L, RUNBOOK_VERSION);
    return 1;
}

static const luaL_Reg host_functions[] = {
    {"read_file", host_read_file},
    {"write_file", host_write_file},
    {"open_append", host_open_append},
    {"create_output", host_create_output},
    {"remove", host_remove},
    {"mkdirs", host_mkdirs},
    {"stat", host_stat},
    {"check_private_dir", host_check_private_dir},
    {"list_dir", host_list_dir},
    {"realpath", host_realpath},
    {"isatty", host_isatty},
    {"term_width", host_term_width},
    {"write", host_write},
    {"read_line", host_read_line},
    {"now", host_now},
    {"monotonic", host_monotonic},
    {"sleep", host_sleep},
    {"trap_signals", host_trap_signals},
    {"interrupted", host_interrupted},
    {"sha256", host_sha256},
    {"sha256_file", host_sha256_file},
    {"random_hex", host_random_hex},
    {"hasher", host_hasher},
    {"rename", host_rename},
    {"getpid", host_getpid},
    {"set_phase", host_set_phase},
    {"phase", host_phase},
    {"call_with_budget", rb_call_with_budget}, /* sitevm.c: the budget and state of site code */
    {"site_vm", rb_site_vm_new},
    {"embedded_runbooks", host_embedded_runbooks},
    {"load_embedded_runbook", host_load_embedded_runbook},
    {"version", host_version},
    {"traceback", host_traceback},
    {"library_versions", rb_library_versions},
    {"load_libraries", rb_load_libraries},
    {NULL, NULL},
};

static const luaL_Reg hasher_methods[] = {
    {"update", hasher_update},
    {"hex", hasher_hex},
    {NULL, NULL},
};

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

int luaopen_runbook_host(lua_State *L)
{
    luaL_newmetatable(L, FILE_META);
    luaL_newlib(L, file_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, file_close);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, file_close);
    lua_setfield(L, -2, "__close");
    lua_pop(L, 1);
    luaL_newmetatable(L, HASHER_META);
    luaL_newlib(L, hasher_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, hasher_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    luaL_newmetatable(L, OUTPUT_META);
    luaL_newlib(L, output_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, output_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    luaL_newlib(L, host_functions);
    return 1;
}
