# tide - build, run, test. Quiet unless V=1.
CC      ?= cc
CFLAGS  ?= -O2 -g
WERROR  ?= -Werror
BUILD   ?= build
# LuaJIT: the static library db/luajit.sh (make deps) builds into var/luajit from Debian's
# luajit2 source with LUAJIT_ENABLE_CHECKHOOK, so a count hook stops compiled loops too. All of
# it is linked in (--whole-archive) and its API exported from the executable, for the Lua C
# modules require() loads (cjson.so), which take lua_* from their host. LUAJIT_DIR=
# var/luajit-nohook (db/luajit.sh nohook: the same without the flag) is only for the baseline
# `make bench` builds in var/build-bench-base.
LUAJIT_DIR ?= var/luajit
LUAJIT_A   := $(LUAJIT_DIR)/lib/libluajit.a
LUAJIT_LIBS = -Wl,--whole-archive $(LUAJIT_A) -Wl,--no-whole-archive \
              -Wl,--export-dynamic-symbol='lua*' -ldl
# pkg-config for what ships a .pc file; libev and http_parser ship none on Debian.
PKGS       := libpq jansson libcrypto
PKG_CFLAGS := -I$(LUAJIT_DIR)/include \
              $(shell pkg-config --cflags $(PKGS) 2>/dev/null || echo -I/usr/include/postgresql)
LDLIBS     := $(LUAJIT_LIBS) \
              $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lpq -ljansson -lcrypto) \
              -lev -lhttp_parser -lm
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -Wall -Wextra $(WERROR) -MMD -MP $(PKG_CFLAGS) $(CFLAGS)

ifeq ($(V),1)
Q :=
else
Q := @
endif

CORE_SRCS := runtime/error.c runtime/log.c runtime/settings.c runtime/config.c runtime/http.c \
             runtime/jwt.c runtime/pool.c runtime/pgconn.c runtime/pgerror.c runtime/resolve.c \
             runtime/crypto.c runtime/jwtcache.c runtime/breaker.c runtime/retry.c runtime/call.c \
             runtime/hist.c runtime/metrics.c runtime/qstats.c runtime/cache.c runtime/rcache.c \
             runtime/router.c runtime/pipeline.c runtime/lsn.c runtime/replica.c \
             runtime/upstream.c runtime/luavm.c runtime/auth.c runtime/health.c runtime/admin.c \
             runtime/server.c runtime/reseal.c runtime/listen.c runtime/workers.c runtime/notify.c \
             runtime/watch.c runtime/channels.c runtime/bundle.c runtime/supervise.c \
             runtime/guard.c runtime/jsonw.c runtime/task_api.c bindings/l_core.c bindings/l_db.c \
             bindings/l_cache.c bindings/l_crypto.c bindings/l_sys.c
CORE_OBJS := $(CORE_SRCS:%.c=$(BUILD)/%.o)
TIDE      := $(BUILD)/tide
C_TESTS   := $(patsubst runtime/tests/%.c,$(BUILD)/tests/%,$(wildcard runtime/tests/test_*.c))

.PHONY: all run test test-c test-c-build test-unit test-integration bench check lint asan clean distclean \
        deps stack-up stack-down fuzz fuzz-build

all: $(TIDE)

$(LUAJIT_A):
	@echo "tide: no $(LUAJIT_A): run $(if $(filter var/luajit-nohook,$(LUAJIT_DIR)),db/luajit.sh nohook,make deps)" >&2; exit 1

$(BUILD)/%.o: %.c | $(LUAJIT_A)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

$(TIDE): $(CORE_OBJS) $(BUILD)/runtime/main.o $(LUAJIT_A)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_CFLAGS) $(filter %.o,$^) -o $@ $(LDLIBS) $(LDFLAGS)

# C unit tests link the whole core minus main; each test is one file.
$(BUILD)/tests/%: runtime/tests/%.c $(CORE_OBJS) $(LUAJIT_A)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  TEST-CC $<")
	$(Q)$(CC) $(ALL_CFLAGS) -Iruntime $< $(CORE_OBJS) -o $@ $(LDLIBS) -lpthread $(LDFLAGS)

deps:
	$(Q)db/deps.sh

# make run: packages, build, the local stack under ./var, then tide in the foreground, reloading
# whenever a .lua file under scripts/ or policies/ changes (--watch). Ctrl-C stops tide and the
# stack it started.
run: deps all
	$(Q)db/stack.sh up
	$(Q)bash -c 'trap "db/stack.sh down" EXIT; . ./var/stack.env; \
	  export TIDE_DSN_DIRECT TIDE_DSN_SESSION TIDE_DSN_TRANSACTION; \
	  if [ -n "$${TIDE_DSN_REPLICA:-}" ]; then export TIDE_DSN_REPLICA; fi; \
	  $(TIDE) serve --dev --watch -c etc/tide.conf.lua'

stack-up:
	$(Q)db/stack.sh up
stack-down:
	$(Q)db/stack.sh down

test-c-build: $(C_TESTS)

test-c: $(C_TESTS)
	$(Q)for t in $(C_TESTS); do echo "== $$t"; $$t || exit 1; done

test-unit:
	$(Q)luajit /usr/bin/busted --lpath='bindings/?.lua;scripts/?.lua;policies/?.lua' spec/unit

# make test: packages, build, C tests, unit specs, then a throwaway stack for the
# integration specs (torn down afterwards); spec/integration/postgrest_js_spec.lua runs
# @supabase/postgrest-js from spec/js (npm ci into spec/js/node_modules when its lock changed).
test: deps all lint
	$(Q)spec/run.sh

check: all
	$(Q)$(TIDE) check --dev -c etc/tide.conf.lua

lint:
	$(Q)luacheck -q bindings scripts policies spec
	$(Q)clang-format --dry-run --Werror --style=file $$(git ls-files '*.c' '*.h' 2>/dev/null || \
	  find runtime bindings bench -name '*.[ch]')
	$(Q)cppcheck --quiet --error-exitcode=1 --enable=warning,portability \
	  --suppress=missingIncludeSystem -Iruntime runtime bindings

# make asan: the C tests and the whole suite against a tide built with ASan/UBSan.
asan:
	$(Q)$(MAKE) BUILD=build-asan CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer" \
	  LDFLAGS="-fsanitize=address,undefined" all test-c-build
	$(Q)TIDE_BUILD=build-asan TIDE_BIN=$(CURDIR)/build-asan/tide UBSAN_OPTIONS=halt_on_error=1 \
	  TIDE_TEST_SLOWDOWN=4 TIDE_TEST_ASAN=1 \
	  spec/run.sh

# make fuzz: libFuzzer targets (runtime/fuzz/fuzz_NAME.c, seeds in runtime/fuzz/corpus/NAME/),
# built with clang, ASan and UBSan, each run for FUZZ_SECONDS. Seeds stay read-only: new inputs
# go to build-fuzz/corpus/NAME, crashes to build-fuzz/crash-NAME-*. Fails on any crash.
FUZZ_SECONDS ?= 30
FUZZ_BUILD   := build-fuzz
FUZZ_TARGETS := $(patsubst runtime/fuzz/fuzz_%.c,%,$(wildcard runtime/fuzz/fuzz_*.c))
FUZZ_BINS    := $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz_%)
FUZZ_FLAGS   := -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer

fuzz-build:
	$(Q)$(MAKE) -s BUILD=$(FUZZ_BUILD)/obj CC=clang WERROR= \
	  CFLAGS="$(FUZZ_FLAGS) -fsanitize=fuzzer-no-link" fuzz-bins

.PHONY: fuzz-bins
fuzz-bins: $(FUZZ_BINS)

$(FUZZ_BUILD)/fuzz_%: runtime/fuzz/fuzz_%.c $(CORE_OBJS) $(LUAJIT_A)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZ-CC $<")
	$(Q)$(CC) $(ALL_CFLAGS) -fsanitize=fuzzer -Iruntime $< $(CORE_OBJS) -o $@ $(LDLIBS) -lpthread

fuzz: fuzz-build
	$(Q)runtime/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# bench/idle.c: the client that holds the bench's idle keep-alive connections.
$(BUILD)/bench-idle: bench/idle.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) -O2 -Wall -Wextra $(WERROR) $< -o $@

bench: deps all $(BUILD)/bench-idle
	$(Q)BENCH_IDLE_BIN=$(CURDIR)/$(BUILD)/bench-idle bench/run.sh

clean:
	rm -rf build build-asan build-fuzz

distclean: clean
	-db/stack.sh down
	rm -rf var spec/js/node_modules

-include $(CORE_OBJS:.o=.d) $(BUILD)/runtime/main.d
