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
LDLIBS   = $(CJSON_A) $(filter-out -llua5.4-cjson,$(PKG_LIBS)) -lm

BUILD    ?= build
SRCS     := $(wildcard src/*.c)
LIB_SRCS := $(filter-out src/main.c src/embedgen.c,$(SRCS))
LIB_OBJS := $(LIB_SRCS:src/%.c=$(BUILD)/%.o) $(BUILD)/embedded.o
LUA_MODS := $(shell find lua -name '*.lua' | sort)
RUNBOOKS := $(wildcard runbooks/*.lua)
TEST_PROGS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/*.c))

.PHONY: all test check check-asan demo bench deps install uninstall clean test-programs

all: runbook

runbook: $(BUILD)/main.o $(LIB_OBJS)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: src/%.c $(wildcard src/*.h) | $(BUILD)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

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

# The whole suite, then the whole suite again under AddressSanitizer + UndefinedBehaviorSanitizer.
test: deps
	$(MAKE) all test-programs
	prove -j2 --timer tests/
	$(MAKE) check-asan

# A separate build tree so the sanitizer objects never mix with the normal ones.
ASAN_FLAGS = -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
check-asan: deps
	$(MAKE) BUILD=build-asan CFLAGS="$(ASAN_FLAGS)" LDFLAGS="-fsanitize=address,undefined" runbook-asan test-programs
	RUNBOOK=$(CURDIR)/runbook-asan RUNBOOK_BUILD=build-asan ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 prove -j2 --timer tests/

runbook-asan: $(BUILD)/main.o $(LIB_OBJS)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

demo: deps all
	@tests/demo.sh

bench: deps all
	@tests/bench/run.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/runbook/runbooks
	install -m 0755 runbook $(DESTDIR)$(PREFIX)/bin/runbook
	install -m 0644 runbooks/*.lua $(DESTDIR)$(PREFIX)/share/runbook/runbooks/
	if [ -f doc/runbook.1 ]; then install -d $(DESTDIR)$(PREFIX)/share/man/man1 && \
	  install -m 0644 doc/runbook.1 $(DESTDIR)$(PREFIX)/share/man/man1/runbook.1; fi

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/runbook $(DESTDIR)$(PREFIX)/share/man/man1/runbook.1
	rm -rf $(DESTDIR)$(PREFIX)/share/runbook

clean:
	rm -rf build build-asan runbook runbook-asan
