/* runbook.host's files and directories, whole (host_files.c), and the careful-writing helpers the other
 * host files share. */
#ifndef RUNBOOK_HOST_FILES_H
#define RUNBOOK_HOST_FILES_H
#include <fcntl.h>
#include <lua.h>
#include <stddef.h>

/* Every file runbook creates is new: O_EXCL, and O_NOFOLLOW so that not even a dangling symbolic
 * link planted under the name is followed. */
#define RB_NEW_FILE_FLAGS (O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC)

/* nil, "what: strerror(errno)" */
int rb_push_errno(lua_State *L, const char *what);
/* Writes all of data (retrying short writes and EINTR): 0, or -1 with errno set. */
int rb_write_all(int fd, const char *data, size_t len);
/* Makes a new or renamed directory entry durable: fsyncs the directory path is in (best effort). */
void rb_fsync_parent_dir(const char *path);

/* The runbook.host functions (see each one's comment in host_files.c). */
int rb_host_read_file(lua_State *L);
int rb_host_write_file(lua_State *L);
int rb_host_rename(lua_State *L);
int rb_host_remove(lua_State *L);
int rb_host_mkdirs(lua_State *L);
int rb_host_stat(lua_State *L);
int rb_host_check_private_dir(lua_State *L);
int rb_host_list_dir(lua_State *L);
int rb_host_realpath(lua_State *L);

#endif
