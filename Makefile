# meshd — top-level build.
#
#   make            build every binary into $(BUILD)/bin
#   make test       install deps (tools/deps.sh), build, run unit + end-to-end tests
#   make check      the same tests without the deps step (unit, unit-pg, e2e)
#   make unit       Criterion unit tests only
#   make unit-pg    the store's unit tests against a throwaway PostgreSQL (tests/pg/)
#   make e2e        end-to-end tests only (real processes on 127.0.0.1)
#   make asan       ASan+UBSan build in build-asan/ and the unit + e2e tests under it
#   make fuzz       libFuzzer targets (clang) in build-fuzz/, each run FUZZ_SECONDS (60)
#   make fuzz-smoke the same targets, a few seconds each over their seed corpora
#   make bench      benchmarks with same-run reference figures
#   make demo       the README's main command: deps, build, a live demo
#   make man        man pages from each binary's --help (help2man) into $(BUILD)/man
#   make install    binaries, man pages, bash completion, systemd units and sysusers
#                   under PREFIX (default /usr/local), staged under DESTDIR if set
#   make clean
#
# BUILD selects the output directory so that several builds (asan, a helper's
# private tree) never write the same objects.

BUILD   ?= build
CC      ?= cc
OPT     ?= -O2 -g
SAN     ?=
CFLAGS  := -std=c11 -D_GNU_SOURCE $(OPT) -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
           -Wstrict-prototypes -Wmissing-prototypes -fno-strict-aliasing $(SAN) $(EXTRA_CFLAGS)
GEN     := $(BUILD)/gen
CPPFLAGS := -I. -I$(GEN) -I$(shell pg_config --includedir 2>/dev/null || echo /usr/include/postgresql)
LDLIBS  := -lssl -lcrypto -lsqlite3 -lpq -lgrpc -lgpr -lprotobuf-c -levent -levent_openssl \
           -levent_pthreads -lyaml -lhttp_parser -lnghttp2 -lpthread -lm
LDFLAGS := $(SAN)

# ---- generated protobuf-c code -------------------------------------------------
# Our Envoy/xDS subset lives in proto/; the well-known types come from libprotobuf-dev.
PROTOS      := $(shell find proto -name '*.proto' | sort)
WKT_PROTOS  := google/protobuf/any.proto google/protobuf/duration.proto \
               google/protobuf/struct.proto google/protobuf/wrappers.proto \
               google/protobuf/timestamp.proto google/protobuf/empty.proto
PROTO_REL   := $(patsubst proto/%,%,$(PROTOS))
GEN_C       := $(addprefix $(GEN)/,$(PROTO_REL:.proto=.pb-c.c)) \
               $(addprefix $(GEN)/,$(WKT_PROTOS:.proto=.pb-c.c))
GEN_STAMP   := $(GEN)/.stamp

$(GEN_STAMP): $(PROTOS)
	@mkdir -p $(GEN)
	protoc-c -Iproto -I/usr/include --c_out=$(GEN) $(PROTO_REL) $(WKT_PROTOS)
	@touch $@

$(GEN_C): $(GEN_STAMP)

# The git revision every binary reports (common/version.c); rewritten only
# when it changed, so an unchanged tree rebuilds nothing.
$(GEN)/mesh_build.h: FORCE
	@mkdir -p $(GEN)
	@rev=$$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown); \
	  printf '#define MESH_BUILD_REV "%s"\n' "$$rev" > $@.tmp; \
	  if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi
$(BUILD)/obj/common/version.o: $(GEN)/mesh_build.h
.PHONY: FORCE
FORCE:

# ---- the library every binary and test links ----------------------------------
# One folder, one job (docs/architecture.md): every folder but tools/ is library
# code with unit tests; tools/ holds only the mains.
LIB_DIRS := common store ca config sds/compiler sds/protocol sds/certsvc meshd sidecar \
            meshctl drill
LIB_SRCS := $(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.c))
LIB_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRCS)) \
            $(patsubst $(GEN)/%.c,$(BUILD)/obj/gen/%.o,$(GEN_C))
LIB      := $(BUILD)/libmesh.a

$(BUILD)/obj/gen/%.o: $(GEN)/%.c $(GEN_STAMP)
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE $(OPT) $(SAN) $(CPPFLAGS) -c $< -o $@

$(BUILD)/obj/%.o: %.c $(GEN_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(CPPFLAGS) -MMD -MP -c $< -o $@

$(LIB): $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

# ---- binaries: tools/<bin>.c holds main; everything else comes from the library --
# mesh-xdsclient is a test and load client, not a product binary: it lives in
# tests/xdsclient/ with its private pieces.
ALL_BINS := meshctl meshd mesh-sidecar mesh-testapp mesh-xdsclient
BINS := $(ALL_BINS)
BIN_PATHS := $(addprefix $(BUILD)/bin/,$(BINS))
BIN_SRCS_mesh-xdsclient := $(wildcard tests/xdsclient/*.c)
bin_srcs = $(or $(BIN_SRCS_$(1)),tools/$(1).c)

define bin_rule
$(BUILD)/bin/$(1): $(patsubst %.c,$(BUILD)/obj/%.o,$(call bin_srcs,$(1))) $(LIB)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) -o $$@ $$(filter %.o,$$^) $(LIB) $$(LDLIBS)
endef
$(foreach b,$(BINS),$(eval $(call bin_rule,$(b))))

all: $(BIN_PATHS)

# ---- tests --------------------------------------------------------------------
UNIT_SRCS := $(wildcard tests/unit/*.c)
UNIT_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(UNIT_SRCS))
UNIT_BIN  := $(BUILD)/tests/unit

$(UNIT_BIN): $(UNIT_OBJS) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(UNIT_OBJS) $(LIB) -lcriterion $(LDLIBS)

# One module's tests alone (helpers iterating on a module):
#   make BUILD=build-x LIB_DIRS="common store" unit-one T=store
# UNIT_EXTRA_<module> names fixtures a module's tests borrow from another's.
UNIT_EXTRA_meshd := tests/unit/test_sds_util.c
unit-one: $(LIB)
	@mkdir -p $(BUILD)/tests
	$(CC) $(CFLAGS) $(CPPFLAGS) $(LDFLAGS) -o $(BUILD)/tests/unit-$(T) $(wildcard tests/unit/test_$(T)*.c) \
	  $(UNIT_EXTRA_$(T)) $(LIB) -lcriterion $(LDLIBS)
	MESH_BIN=$(abspath $(BUILD)/bin) $(BUILD)/tests/unit-$(T) --jobs 2 $(CRITERION_ARGS)

deps:
	tools/deps.sh

# `make test` (what .ci/run runs) adds the fuzz smoke run; `make check` leaves
# it out (it builds the whole library a third time, with clang).
test: deps
	$(MAKE) check
	$(MAKE) fuzz-smoke

# Build in parallel, then run the suites one after the other: the e2e tests
# measure timeouts and expiry, and must not compete with a compiler for the CPU.
NPROC := $(shell nproc 2>/dev/null || echo 2)
check:
	$(MAKE) -j$(NPROC) all $(UNIT_BIN)
	$(MAKE) unit
	$(MAKE) unit-pg
	$(MAKE) e2e

unit: $(UNIT_BIN)
	MESH_BIN=$(abspath $(BUILD)/bin) $(UNIT_BIN) --jobs 2 $(CRITERION_ARGS)

# The store's backend-neutral suites against PostgreSQL (docs/store.md): a
# throwaway cluster on 127.0.0.1 and a random port (tests/pg/pg_start.sh, as
# the system user meshtest when run as root), each test in its own schema.
PG_SUITES := store_!(backup|gate|integrity|open)/*
unit-pg: $(UNIT_BIN)
	@dir=$$(mktemp -d /tmp/meshd-pg-XXXXXX) && \
	url=$$(tests/pg/pg_start.sh $$dir) || { tests/pg/pg_stop.sh $$dir; rm -rf $$dir; exit 1; }; \
	trap 'tests/pg/pg_stop.sh $$dir' EXIT INT TERM; \
	MESH_BIN=$(abspath $(BUILD)/bin) MESH_TEST_PG_URL=$$url $(UNIT_BIN) --jobs 2 \
	  --filter '$(PG_SUITES)' $(CRITERION_ARGS)

e2e: all
	MESH_BIN=$(abspath $(BUILD)/bin) tests/e2e/run.sh

ASAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
asan:
	$(MAKE) -j$(NPROC) BUILD=build-asan OPT="-O1 -g" SAN="$(ASAN_FLAGS)" all build-asan/tests/unit
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
	  $(MAKE) BUILD=build-asan OPT="-O1 -g" SAN="$(ASAN_FLAGS)" unit e2e

# ---- fuzzing (docs/fuzzing.md) -------------------------------------------------
# tests/fuzz/fuzz_<target>.c are libFuzzer targets; the library is rebuilt by
# clang with coverage (fuzzer-no-link) + ASan + UBSan into build-fuzz/.
FUZZ_BUILD   := build-fuzz
FUZZ_CC      ?= clang
FUZZ_SAN     := -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer \
                -fno-sanitize-recover=undefined
FUZZ_TARGETS := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 3

$(BUILD)/fuzz/%: tests/fuzz/fuzz_%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(CPPFLAGS) -MMD -MP -MF $@.d -fsanitize=fuzzer -o $@ $< $(LIB) $(LDLIBS)

fuzz-build:
	$(MAKE) -j$(NPROC) BUILD=$(FUZZ_BUILD) CC=$(FUZZ_CC) OPT="-O1 -g" SAN="$(FUZZ_SAN)" \
	  $(addprefix $(FUZZ_BUILD)/fuzz/,$(FUZZ_TARGETS))

fuzz: fuzz-build
	FUZZ_BIN=$(abspath $(FUZZ_BUILD))/fuzz FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run.sh $(FUZZ_TARGETS)

fuzz-smoke: fuzz-build
	FUZZ_BIN=$(abspath $(FUZZ_BUILD))/fuzz FUZZ_SECONDS=$(FUZZ_SMOKE_SECONDS) FUZZ_SMOKE=1 \
	  tests/fuzz/run.sh $(FUZZ_TARGETS)

bench: all
	MESH_BIN=$(abspath $(BUILD)/bin) bench/run.sh

demo: deps
	$(MAKE) -j$(NPROC) all
	MESH_BIN=$(abspath $(BUILD)/bin) tools/demo.sh

clean:
	rm -rf build build-asan build-*

# ---- installation (dist/README.md) ---------------------------------------------
PREFIX  ?= /usr/local
DESTDIR ?=
INSTALL_BINS := meshd mesh-sidecar meshctl
BINDIR   = $(PREFIX)/bin
MAN1DIR  = $(PREFIX)/share/man/man1
COMPDIR  = $(PREFIX)/share/bash-completion/completions
UNITDIR  = $(PREFIX)/lib/systemd/system
SYSUSERSDIR = $(PREFIX)/lib/sysusers.d
MAN_DESC_meshd        := SPIFFE certificate authority and Envoy-compatible xDS/SDS server
MAN_DESC_mesh-sidecar := the meshd data-plane proxy: mTLS between workloads, routes, authorization
MAN_DESC_meshctl      := operator CLI for meshd: CA, workloads, mesh config, certificates, drills
MAN_PAGES := $(addprefix $(BUILD)/man/,$(addsuffix .1,$(INSTALL_BINS)))

$(BUILD)/man/%.1: $(BUILD)/bin/%
	@mkdir -p $(dir $@)
	help2man --no-info --no-discard-stderr --name="$(MAN_DESC_$*)" --output=$@ $<

man: $(MAN_PAGES)

install: $(addprefix $(BUILD)/bin/,$(INSTALL_BINS)) $(MAN_PAGES)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MAN1DIR) $(DESTDIR)$(COMPDIR) \
	  $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR)
	install -m 0755 $(addprefix $(BUILD)/bin/,$(INSTALL_BINS)) $(DESTDIR)$(BINDIR)/
	install -m 0644 $(MAN_PAGES) $(DESTDIR)$(MAN1DIR)/
	install -m 0644 dist/bash-completion/meshctl $(DESTDIR)$(COMPDIR)/meshctl
	install -m 0644 dist/sysusers/meshd.conf $(DESTDIR)$(SYSUSERSDIR)/meshd.conf
	for u in meshd.service mesh-sidecar@.service; do \
	  sed 's|@BINDIR@|$(BINDIR)|g' dist/systemd/$$u.in > $(DESTDIR)$(UNITDIR)/$$u && \
	  chmod 0644 $(DESTDIR)$(UNITDIR)/$$u || exit 1; \
	done

.PHONY: all deps test check unit unit-pg unit-one e2e asan fuzz fuzz-build fuzz-smoke bench demo clean man install
.DEFAULT_GOAL := all

-include $(shell find $(BUILD)/obj $(BUILD)/fuzz -name '*.d' 2>/dev/null)
