/* Shared by the fuzz targets: the libFuzzer entry points each target defines, and the harness that
 * runs a Lua-side parser in a Lua state made once with rb_state_new(). */
#ifndef RUNBOOK_FUZZ_H
#define RUNBOOK_FUZZ_H
#include <stddef.h>
#include <stdint.h>

/* What every target defines (libFuzzer calls them; replay.c calls them without libFuzzer). */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Builds the Lua state and the driver: `driver` is a Lua chunk returning function(input). It is run
 * with the engine's privileged require. Aborts if the driver cannot be made. */
void fuzz_lua_init(const char *name, const char *driver);

/* Calls the driver with the input as a string. Returning, or raising a util.fail failure (a user's
 * mistake reported with an exit code), is fine; any other Lua error is a bug: it is printed with its
 * traceback and the process aborts, which libFuzzer and the replay tool report as a finding. */
void fuzz_lua_run(const uint8_t *data, size_t size);

#endif
