/* Opening libcurl, libpq and libcrypto on first use: see dynlib.h for why. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dynlib.h"

int rb_dynlib_load(struct rb_dynlib *lib)
{
    if (lib->handle)
        return 0;
    if (lib->error[0])
        return -1;
    /* RTLD_LOCAL: the library's symbols stay out of the global scope, so they never interpose on
     * anything else; RTLD_NOW: a missing symbol in its own dependencies shows here, not mid-run. */
    lib->handle = dlopen(lib->soname, RTLD_NOW | RTLD_LOCAL);
    if (!lib->handle) {
        /* dlerror() says "libpq.so.5: cannot open shared object file: ...", or names the dependency
         * that is missing ("libcrypto.so.3: ..."); the library's own name is said once. */
        const char *why = dlerror();
        size_t name_length = strlen(lib->soname);
        if (!why)
            why = "unknown reason";
        else if (strncmp(why, lib->soname, name_length) == 0 && strncmp(why + name_length, ": ", 2) == 0)
            why += name_length + 2;
        snprintf(lib->error, sizeof lib->error, "cannot load %s (%s); runbook needs it: install it (Debian: apt-get install %s)",
                 lib->soname, why, lib->package);
        return -1;
    }
    for (const char *const *symbol = lib->symbols; *symbol; symbol++) {
        if (!dlsym(lib->handle, *symbol)) {
            snprintf(lib->error, sizeof lib->error,
                     "%s has no %s: it is older than runbook needs; install a newer %s", lib->soname, *symbol,
                     lib->package);
            dlclose(lib->handle);
            lib->handle = NULL;
            return -1;
        }
    }
    return 0;
}

void *rb_dynlib_symbol(struct rb_dynlib *lib, const char *symbol)
{
    /* Every symbol asked for here is in lib->symbols, which the load checked. */
    if (rb_dynlib_load(lib) == 0)
        return dlsym(lib->handle, symbol);
    fprintf(stderr, "runbook: %s\n", lib->error);
    exit(1);
}
