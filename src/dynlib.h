/* libcurl, libpq and libcrypto are opened on first use (dlopen), not by the dynamic linker at start.
 *
 * Why: Debian builds libcurl and libpq with BIND_NOW and they pull in ~30 libraries (GnuTLS,
 * Kerberos, LDAP, ...); binding those symbols costs ~13 ms on every start, and libcrypto alone ~3 ms,
 * which `list`, `show`, `help` and shell completion would pay without making a single request.
 * src/libcurl_lazy.c, libpq_lazy.c and libcrypto_lazy.c define the functions runbook calls under
 * their own names; each forwards to its library, loaded the first time any of them is needed, so
 * callers use the ordinary libcurl, libpq and OpenSSL API.
 *
 * Callers with a way to report an error call rb_dynlib_load first and pass lib->error on, naming
 * the library and the package to install: pg.connect returns it, `version` prints it, apply and
 * resume stop with it before their first action. A forwarding function that finds its library
 * unusable has no error channel, so it prints the same message and exits 1. */
#ifndef RUNBOOK_DYNLIB_H
#define RUNBOOK_DYNLIB_H
#include <stddef.h>

struct rb_dynlib {
    const char *soname;  /* e.g. "libcurl.so.4", as the build's development symlink names it */
    const char *package; /* the Debian package to install if it is missing */
    const char *const *symbols; /* every function runbook calls, NULL-terminated: checked at load */
    void *handle;
    char error[256];     /* why it could not be loaded, once it failed */
};

extern struct rb_dynlib rb_libcurl; /* defined in libcurl_lazy.c, with its list of functions */
extern struct rb_dynlib rb_libpq;   /* defined in libpq_lazy.c */
extern struct rb_dynlib rb_libcrypto; /* defined in libcrypto_lazy.c */

/* Opens lib if it is not open yet and checks it has every function in lib->symbols.
 * Returns 0, or -1 with lib->error set (and the same answer on every later call). */
int rb_dynlib_load(struct rb_dynlib *lib);

/* The address of symbol in lib, loading lib if needed; on failure prints lib->error and exits 1. */
void *rb_dynlib_symbol(struct rb_dynlib *lib, const char *symbol);

/* For the X-macro lists in the *_lazy.c files, FUNCTION(return type, name, parameters, arguments)
 * and VOID_FUNCTION(name, parameters, arguments): the name as a string, for lib->symbols ... */
#define RB_DYNLIB_NAME(type, name, params, args) #name,
#define RB_DYNLIB_VOID_NAME(name, params, args) #name,

/* ... and the forwarding definition. Each looks its target up once; the parentheses around the name
 * keep a function-like macro of the same name (curl.h has some) from expanding. */
#define RB_DYNLIB_FORWARD(lib, type, name, params, args) \
    type(name) params \
    { \
        static type(*target) params; \
        if (!target) \
            target = (type(*) params)rb_dynlib_symbol((lib), #name); \
        return target args; \
    }
#define RB_DYNLIB_VOID_FORWARD(lib, name, params, args) \
    void(name) params \
    { \
        static void(*target) params; \
        if (!target) \
            target = (void(*) params)rb_dynlib_symbol((lib), #name); \
        target args; \
    }

#endif
