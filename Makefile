# runbook: build, test and install. `make` builds ./runbook; `make test` runs every test.
# Dependencies come from Debian packages listed in vendor/debian-packages.txt (`make deps` installs them).

PREFIX  ?= /usr/local
DESTDIR ?=
CC      ?= cc
PKGS    := lua5.4 lua5.4-cjson libcurl libpq openssl yaml-0.1

VERSION := $(shell cat VERSION 2>/dev/null || echo 0.0.0)
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
# lua-cjson: linked from its static archive so `cjson` is built in. Its .pc file names a wrong libdir
# (/usr/lib), so the archive is looked up beside liblua5.4 instead.
CJSON_A    = $(shell pkg-config --variable=libdir lua5.4 2>/dev/null)/liblua5.4-cjson.a

WARN     = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
CFLAGS  ?= -O2 -g
ALL_CFLAGS = -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE $(WARN) $(CFLAGS) \
             -DRUNBOOK_VERSION='"$(VERSION)"' -Isrc -Ibuild $(PKG_CFLAGS)
# libcurl, libpq and OpenSSL are not linked: src/dynlib.h opens them on first use (binding their
# ~30 dependencies costs ~16 ms at every start). Their headers are still needed, and their sonames
# are read from the development symlinks so the binary opens the library it was compiled against.
LAZY_LIBS  = -lcurl -lpq -lssl -lcrypto
SONAME_OF  = $(shell objdump -p $(shell pkg-config --variable=libdir $(1) 2>/dev/null)/$(2).so 2>/dev/null | \
                     sed -n 's/^ *SONAME *//p')
LAZY_FLAGS = -DRB_LIBCURL_SONAME='"$(or $(call SONAME_OF,libcurl,libcurl),libcurl.so.4)"' \
             -DRB_LIBPQ_SONAME='"$(or $(call SONAME_OF,libpq,libpq),libpq.so.5)"' \
             -DRB_LIBCRYPTO_SONAME='"$(or $(call SONAME_OF,openssl,libcrypto),libcrypto.so.3)"'
LDLIBS   = $(CJSON_A) $(filter-out -llua5.4-cjson $(LAZY_LIBS),$(PKG_LIBS)) -lm

BUILD    ?= build
SRCS     := $(wildcard src/*.c)
LIB_SRCS := $(filter-out src/main.c src/embedgen.c,$(SRCS))
LIB_OBJS := $(LIB_SRCS:src/%.c=$(BUILD)/%.o) $(BUILD)/embedded.o
LUA_MODS := $(shell find lua -name '*.lua' | sort)
RUNBOOKS := $(wildcard runbooks/*.lua)
TEST_PROGS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/*.c))

.PHONY: all test test-all check check-asan demo bench torture deps install uninstall clean test-programs

all: runbook

runbook: $(BUILD)/main.o $(LIB_OBJS)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: src/%.c $(wildcard src/*.h) | $(BUILD)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<
%/libcurl_lazy.o %/libpq_lazy.o %/libcrypto_lazy.o: ALL_CFLAGS += $(LAZY_FLAGS)

# Lua modules and shipped runbooks are compiled into the binary, so an installed runbook works anywhere.
$(BUILD)/embedgen: src/embedgen.c | $(BUILD)
	$(CC) -std=c11 -O1 $(WARN) $(PKG_CFLAGS) -o $@ $< $(filter-out -llua5.4-cjson,$(PKG_LIBS)) -lm

$(BUILD)/embedded.c: $(BUILD)/embedgen $(LUA_MODS) $(RUNBOOKS) Makefile
	$(BUILD)/embedgen $@ $(foreach f,$(LUA_MODS),module $(subst /,.,$(patsubst lua/%.lua,%,$(f))) $(f)) \
	                    $(foreach f,$(RUNBOOKS),runbook $(patsubst runbooks/%.lua,%,$(f)) $(f))

$(BUILD)/embedded.o: $(BUILD)/embedded.c
	$(CC) $(ALL_CFLAGS) -Wno-overlength-strings -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(LIB_OBJS) | $(BUILD)
	@mkdir -p $(BUILD)/tests
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIB_OBJS) $(LDLIBS)

test-programs: $(TEST_PROGS)

$(BUILD):
	@mkdir -p $(BUILD)

deps:
	@tests/lib/deps.sh

# The whole suite. CI (.ci/run) also runs it under AddressSanitizer + UndefinedBehaviorSanitizer:
# make check-asan; `make test-all` does both here. tests/lib/prove-checked runs prove, then fails if a
# process a test started outlived it (naming the test and the command line). TESTS picks files.
TESTS ?= tests/
test: deps
	$(MAKE) all test-programs
	tests/lib/prove-checked -j2 --timer $(TESTS)

test-all: test check-asan

# A separate build tree so the sanitizer objects never mix with the normal ones.
ASAN_FLAGS = -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
check-asan: deps
	$(MAKE) BUILD=build-asan CFLAGS="$(ASAN_FLAGS)" LDFLAGS="-fsanitize=address,undefined" runbook-asan test-programs
	RUNBOOK=$(CURDIR)/runbook-asan RUNBOOK_BUILD=build-asan ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 tests/lib/prove-checked -j2 --timer $(TESTS)

runbook-asan: $(BUILD)/main.o $(LIB_OBJS)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Fuzzing (tests/fuzz/README.md). `make fuzz` builds every target with clang and libFuzzer in its own
# tree and runs each for FUZZ_SECONDS on its corpus; `make test` replays the corpora and regression
# inputs through the same entry points built without libFuzzer (replay-TARGET, in test-programs).
FUZZ_TARGETS ?= $(filter-out fuzz_lua replay,$(basename $(notdir $(wildcard tests/fuzz/*.c))))
FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang
FUZZ_FLAGS    = -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all \
                -DRB_FUZZ_LUA_COVERAGE
FUZZ_REPLAYS := $(patsubst %,$(BUILD)/tests/replay-%,$(FUZZ_TARGETS))
REPLAY_SAN    = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_HARNESS  = tests/fuzz/fuzz_lua.c tests/fuzz/fuzz.h

test-programs: $(FUZZ_REPLAYS)

.PHONY: fuzz fuzz-programs
fuzz:
	@printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }\n' | \
	  $(FUZZ_CC) -fsanitize=fuzzer -x c - -o /dev/null 2>/dev/null || \
	  { echo "make fuzz needs clang and libFuzzer: apt-get install clang libclang-rt-14-dev" >&2; exit 1; }
	$(MAKE) BUILD=build-fuzz CC=$(FUZZ_CC) CFLAGS="$(FUZZ_FLAGS)" WARN="-Wall -Wextra -Wno-unused-parameter" fuzz-programs
	tests/fuzz/run.sh build-fuzz $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-programs: $(patsubst %,$(BUILD)/fuzz/%,$(FUZZ_TARGETS))

.PHONY: clean-fuzz
clean: clean-fuzz
clean-fuzz:
	rm -rf build-fuzz

# The library as an archive: a target that includes a source file whole (ws_handshake.c) replaces its object.
$(BUILD)/librunbook.a: $(LIB_OBJS)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/fuzz/%: tests/fuzz/%.c $(FUZZ_HARNESS) $(BUILD)/librunbook.a
	@mkdir -p $(BUILD)/fuzz
	$(CC) $(ALL_CFLAGS) -Itests/fuzz -fsanitize=fuzzer -o $@ $< tests/fuzz/fuzz_lua.c $(BUILD)/librunbook.a $(LDLIBS)

$(BUILD)/tests/replay-%: tests/fuzz/%.c tests/fuzz/replay.c $(FUZZ_HARNESS) $(BUILD)/librunbook.a
	@mkdir -p $(BUILD)/tests
	$(CC) $(ALL_CFLAGS) $(REPLAY_SAN) -Itests/fuzz -o $@ $< tests/fuzz/replay.c tests/fuzz/fuzz_lua.c \
	  $(BUILD)/librunbook.a $(LDLIBS)

demo: deps all
	@tests/demo.sh

bench: deps all
	@tests/bench/run.sh

# Every kill point of every runbook, then resume (make test runs a representative part: tests/50-*).
torture: deps all
	prove --timer tests/torture/

# GNU-style locations; DESTDIR stages an install (packaging, tests). Runbooks and Lua modules are
# embedded in the binary: the runbooks under share/runbook are for reading, not loaded from there;
# share/runbook/schema holds the JSON Schemas of the --output json documents.
BINDIR      ?= $(PREFIX)/bin
DATADIR     ?= $(PREFIX)/share
MANDIR      ?= $(DATADIR)/man
BASHCOMPDIR ?= $(DATADIR)/bash-completion/completions
ZSHCOMPDIR  ?= $(DATADIR)/zsh/vendor-completions
INSTALL     ?= install

install: all
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(BASHCOMPDIR) \
	  $(DESTDIR)$(ZSHCOMPDIR) $(DESTDIR)$(DATADIR)/runbook/runbooks $(DESTDIR)$(DATADIR)/runbook/schema
	$(INSTALL) -m 0755 runbook $(DESTDIR)$(BINDIR)/runbook
	$(INSTALL) -m 0644 doc/runbook.1 $(DESTDIR)$(MANDIR)/man1/runbook.1
	$(INSTALL) -m 0644 completions/runbook.bash $(DESTDIR)$(BASHCOMPDIR)/runbook
	$(INSTALL) -m 0644 completions/_runbook $(DESTDIR)$(ZSHCOMPDIR)/_runbook
	$(INSTALL) -m 0644 runbooks/*.lua $(DESTDIR)$(DATADIR)/runbook/runbooks/
	$(INSTALL) -m 0644 doc/schema/*.json $(DESTDIR)$(DATADIR)/runbook/schema/

# Removes exactly what install put there; shared directories (bin, man1, ...) stay.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/runbook $(DESTDIR)$(MANDIR)/man1/runbook.1 \
	  $(DESTDIR)$(BASHCOMPDIR)/runbook $(DESTDIR)$(ZSHCOMPDIR)/_runbook
	rm -rf $(DESTDIR)$(DATADIR)/runbook

# runbook-portable: Lua 5.4, lua-cjson and libyaml linked from Debian's static archives, runbooks
# embedded, so a host needs only libcurl, libpq and OpenSSL (and libc) to run it: no Lua, no libyaml.
# The objects are the normal build's; only the link differs. PORTABLE names the output file.
PORTABLE ?= runbook-portable
STATIC_A  = $(CJSON_A) $(shell pkg-config --variable=libdir lua5.4 2>/dev/null)/liblua5.4.a \
            $(shell pkg-config --variable=libdir yaml-0.1 2>/dev/null)/libyaml.a
PORTABLE_LDLIBS = $(STATIC_A) -lm

.PHONY: portable
portable: $(PORTABLE)

$(PORTABLE): $(BUILD)/main.o $(LIB_OBJS)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(PORTABLE_LDLIBS)

clean:
	rm -rf build build-asan runbook runbook-asan runbook-portable
