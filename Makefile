# cric: one GNU make build for the whole suite.
#   make               build the six daemons and cricctl into $(BUILD)/bin
#   make check         unit tests (cmocka), unit-file checks, integration tests (pytest)
#   make check-asan    the same, built with AddressSanitizer + UBSan in build-asan/
#   make demo          start a suite under /tmp/cric-demo, pull an image, run it
#   make install       PREFIX=/usr/local DESTDIR= (binaries, units, config, CNI config)
#   make format-check  clang-format;  make lint  clang's static analyzer

VERSION := 0.1.0
GIT_REV := $(shell git rev-parse --short HEAD 2>/dev/null)
FULL_VERSION := $(VERSION)$(if $(GIT_REV),+g$(GIT_REV))

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
SYSCONFDIR ?= /etc
UNITDIR ?= /lib/systemd/system
DESTDIR ?=
BUILD ?= build
CC ?= cc
PYTHON ?= /usr/bin/python3
PYTEST_ARGS ?=

DAEMONS := gateway imaged stored netd runtimed monitord

OPTFLAGS ?= -O2 -g
# glibc's checked variants of the string, memory and I/O functions (Debian's
# gcc does not turn them on). They need the optimizer, so none at -O0; and
# none under the sanitizers: ASan does not intercept the __*_chk functions,
# so fortification would hide the overflows ASan reports (its FAQ says to
# leave it off). -U first: some toolchains predefine it.
FORTIFY := $(if $(filter-out -O0,$(filter -O%,$(OPTFLAGS))),-U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=2)
ifeq ($(SAN),1)
OPTFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
SANLDFLAGS := -fsanitize=address,undefined
FORTIFY := -U_FORTIFY_SOURCE
endif

# GNU C predefines `linux`, which the generated CRI code uses as a field name.
CPPFLAGS += -D_GNU_SOURCE -Ulinux -I. -I$(BUILD)/gen
# Messages are bounded on purpose (snprintf into fixed buffers truncates), so
# -Wformat-truncation is off; everything else is an error.
WARNFLAGS := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-format-truncation \
	-Wno-missing-field-initializers
CFLAGS += -std=gnu11 $(OPTFLAGS) $(FORTIFY) $(WARNFLAGS) -fstack-protector-strong -MMD -MP \
	-ffunction-sections -fdata-sections
GRPC_CFLAGS := $(shell pkg-config --cflags grpc)
GRPC_LIBS := $(shell pkg-config --libs grpc)
# --as-needed: each binary keeps only the libraries it uses.
# No libcurl nor OpenSSL here: only cric-fetch (imaged's transport helper)
# links libcurl, so that no daemon maps it and its TLS libraries.
LIBS := -Wl,--as-needed -lnng -lprotobuf-c -ljansson -lcap -lseccomp -larchive -lnettle -lyaml \
	-lmicrohttpd -lz -lpthread -Wl,--no-as-needed
LDFLAGS += $(SANLDFLAGS) -Wl,-z,relro,-z,now -Wl,--gc-sections

# Every .proto under proto/ (internal messages may live in one file per daemon).
PROTOS := $(sort $(wildcard proto/cri/*.proto proto/cric/*.proto))
GEN_C := $(patsubst %.proto,$(BUILD)/gen/%.pb-c.c,$(PROTOS))
GEN_H := $(GEN_C:.c=.h)
GEN_O := $(patsubst $(BUILD)/gen/%.c,$(BUILD)/obj/gen/%.o,$(GEN_C))

COMMON_SRC := $(wildcard common/*.c)
COMMON_O := $(patsubst %.c,$(BUILD)/obj/%.o,$(COMMON_SRC))
LIBCOMMON := $(BUILD)/libcric-common.a

BINS := $(addprefix $(BUILD)/bin/cric-,$(DAEMONS)) $(BUILD)/bin/cricctl $(BUILD)/bin/cric-pause \
	$(BUILD)/bin/cric-monitor $(BUILD)/bin/cric-exec $(BUILD)/bin/cric-portfwd $(BUILD)/bin/cric-fetch

UNIT_TESTS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test-*.c))

all: $(BINS)

.PHONY: all FORCE check check-unit check-integration check-asan install clean \
	format format-check lint pyproto check-units fuzz demo bench

# --- generated code (not committed) ---
$(BUILD)/gen/%.pb-c.c $(BUILD)/gen/%.pb-c.h: %.proto
	@mkdir -p $(BUILD)/gen
	protoc-c -I. --c_out=$(BUILD)/gen $<

$(BUILD)/obj/gen/%.o: $(BUILD)/gen/%.c $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

# The version header is rewritten only when the version changes, so a new
# commit rebuilds just the files that print it.
VERSION_H := $(BUILD)/gen/cric_version.h
$(VERSION_H): FORCE
	@mkdir -p $(dir $@)
	@echo '#define CRIC_VERSION "$(FULL_VERSION)"' > $@.tmp
	@cmp -s $@.tmp $@ && rm -f $@.tmp || mv $@.tmp $@
FORCE:

# Everything may include generated headers: build them first.
$(BUILD)/obj/%.o: %.c | $(GEN_H) $(VERSION_H)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(if $(filter cri-gateway/%,$<),$(GRPC_CFLAGS)) -c -o $@ $<

$(LIBCOMMON): $(COMMON_O) $(GEN_O)
	@rm -f $@
	$(AR) rcs $@ $^

# --- daemons: each directory's objects + the common library ---
define daemon_rule
$(1)_DIR := $(if $(filter gateway,$(1)),cri-gateway,$(1))
$(1)_SRC := $$(filter-out $$($(1)_DIR)/cricctl%.c,$$(wildcard $$($(1)_DIR)/*.c $$($(1)_DIR)/stream/*.c))
$(1)_O := $$(patsubst %.c,$(BUILD)/obj/%.o,$$($(1)_SRC))
$(BUILD)/bin/cric-$(1): $$($(1)_O) $(LIBCOMMON)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $(LIBS) $(if $(filter gateway,$(1)),$$(GRPC_LIBS))
endef
$(foreach d,$(DAEMONS),$(eval $(call daemon_rule,$(d))))

# The pods' infra process: static (its root filesystem holds nothing else),
# never sanitized (a static binary cannot be), built with the daemons.
$(BUILD)/bin/cric-pause: runtimed/pause/pause.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -Os -U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=2 -Wall -Wextra -Werror -static -s -o $@ $<

# The per-container monitor: libc and the kernel only, static (one small
# process per container: no shared library to map), never sanitized, built
# with the daemons. Its pure parts (logfmt.c) are also linked into the unit
# tests (test-monitor-*) and the fuzzers, from monitord/monitor/.
MONITOR_SRC := monitord/monitor/cric-monitor.c monitord/monitor/create.c monitord/monitor/logfmt.c \
	monitord/monitor/attach.c
MONITOR_LIB_O := $(BUILD)/obj/monitord/monitor/logfmt.o
# (an object only tests link: make must not delete it as intermediate)
.SECONDARY: $(MONITOR_LIB_O)
$(BUILD)/bin/cric-monitor: $(MONITOR_SRC) $(wildcard monitord/monitor/*.h)
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -Os -D_GNU_SOURCE -U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=2 $(WARNFLAGS) \
		-fstack-protector-strong -static -s -o $@ $(MONITOR_SRC)

# monitord's ExecSync helper (a child subreaper around one runc exec):
# libc and the kernel only, static, never sanitized, built with the daemons.
$(BUILD)/bin/cric-exec: monitord/exec/cric-exec.c monitord/exec/exec.h
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -Os -D_GNU_SOURCE -U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=2 $(WARNFLAGS) \
		-fstack-protector-strong -static -s -o $@ $<

# Its unit test runs it.
$(BUILD)/tests/test-monitord-execsync: $(BUILD)/bin/cric-exec

# Port-forward's helper (enters a pod's network namespace, connects, hands
# the socket back): libc only, static, never sanitized.
$(BUILD)/bin/cric-portfwd: monitord/portfwd/cric-portfwd.c monitord/portfwd/portfwd.h
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -Os -D_GNU_SOURCE -U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=2 $(WARNFLAGS) \
		-fstack-protector-strong -static -s -o $@ $<
# Its unit test runs it.
$(BUILD)/tests/test-monitord-portfwd: $(BUILD)/bin/cric-portfwd

# imaged's HTTP(S) transport (imaged/fetch.h): libcurl in a process of its
# own, started by imaged while it pulls. Built with the daemons' flags (and
# sanitizers); the frame codec is imaged's own object.
FETCH_O := $(BUILD)/obj/imaged/fetch/cric-fetch.o $(BUILD)/obj/imaged/fetchwire.o
$(BUILD)/bin/cric-fetch: $(FETCH_O)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -Wl,--as-needed -lcurl -lpthread -Wl,--no-as-needed
# The registry's unit test pulls through it (and pushes with libcurl itself);
# the frames' test drives it over TLS.
$(BUILD)/tests/test-imaged-registry $(BUILD)/tests/test-imaged-fetchwire: $(BUILD)/bin/cric-fetch

CRICCTL_O := $(BUILD)/obj/cri-gateway/cricctl.o $(BUILD)/obj/cri-gateway/cricctl-ctr.o \
	$(BUILD)/obj/cri-gateway/cricctl-ops.o $(BUILD)/obj/cri-gateway/routes.o
$(BUILD)/bin/cricctl: $(CRICCTL_O) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS) $(GRPC_LIBS)

# --- tests ---
# Test tools (tests/tools/*.c): small programs the integration tests run,
# e.g. cric-call for the daemons' internal methods.
TOOLS := $(patsubst tests/tools/%.c,$(BUILD)/tools/%,$(wildcard tests/tools/*.c))
$(BUILD)/tools/%: tests/tools/%.c $(LIBCOMMON) | $(GEN_H) $(VERSION_H)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIBCOMMON) $(LIBS)

# cric-attach drives monitord's attach client.
$(BUILD)/tools/cric-attach: tests/tools/cric-attach.c $(BUILD)/obj/monitord/attach.o $(LIBCOMMON) \
		| $(GEN_H) $(VERSION_H)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/obj/monitord/attach.o $(LIBCOMMON) $(LIBS)

# cric-fwd drives monitord's port-forward connection (and its helper).
$(BUILD)/tools/cric-fwd: tests/tools/cric-fwd.c $(BUILD)/obj/monitord/portfwd.o $(LIBCOMMON) \
		$(BUILD)/bin/cric-portfwd | $(GEN_H) $(VERSION_H)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/obj/monitord/portfwd.o $(LIBCOMMON) $(LIBS)

# Unit tests link the common library; test-<daemon>-*.c also get that
# daemon's objects except main.o (its library part).
lib_objs_for = $(filter-out %/main.o,$($(1)_O))
$(BUILD)/tests/%: tests/unit/%.c $(LIBCOMMON) $(foreach d,$(DAEMONS),$(call lib_objs_for,$(d))) \
		$(MONITOR_LIB_O) | $(GEN_H) $(VERSION_H)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< \
		$(foreach d,$(DAEMONS),$(if $(findstring test-$(d)-,$*),$(call lib_objs_for,$(d)))) \
		$(if $(findstring test-monitor-,$*),$(MONITOR_LIB_O)) \
		$(LIBCOMMON) $(LIBS) -lcmocka $(if $(findstring test-imaged-registry,$*),-lcurl -lcrypto)

# The gateway's routing table alone (its other objects need grpc).
$(BUILD)/tests/test-gateway-routes: tests/unit/test-gateway-routes.c $(BUILD)/obj/cri-gateway/routes.o $(LIBCOMMON) | $(GEN_H) $(VERSION_H)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/obj/cri-gateway/routes.o \
		$(LIBCOMMON) $(LIBS) -lcmocka

# Fuzzers (libFuzzer, clang): every parser has one; `make fuzz` builds them
# and runs each for FUZZ_SECONDS over its corpus in tests/fuzz/corpus/<name>/.
# Their objects are built in this make, with their own rules, under
# build-fuzz/ (clang, libFuzzer + ASan + UBSan): ordinary prerequisites, each
# built once however many fuzzers link it and however high -j is. The
# generated code is shared with $(BUILD) (it does not depend on the compiler).
FUZZ_SECONDS ?= 20
# Fuzzers and the analyzer run one process per core.
JOBS ?= $(shell nproc)
FUZZ_BUILD := build-fuzz
FUZZ_SRC := $(wildcard tests/fuzz/fuzz-*.c)
FUZZERS := $(patsubst tests/fuzz/%.c,$(FUZZ_BUILD)/%,$(FUZZ_SRC))
FUZZ_COMMON_O := $(patsubst %.c,$(FUZZ_BUILD)/obj/%.o,$(COMMON_SRC)) \
	$(patsubst $(BUILD)/gen/%.c,$(FUZZ_BUILD)/obj/gen/%.o,$(GEN_C))
FUZZ_LIBCOMMON := $(FUZZ_BUILD)/libcric-common.a
# Every daemon's library objects (all but main.o): the parsers live there.
FUZZ_LIB_O := $(patsubst %.c,$(FUZZ_BUILD)/obj/%.o,$(filter-out %/main.c,\
	$(wildcard imaged/*.c stored/*.c netd/*.c runtimed/*.c monitord/*.c monitord/stream/*.c) \
	monitord/monitor/logfmt.c))
FUZZ_CFLAGS := -std=gnu11 -g -O1 -fsanitize=fuzzer-no-link,address,undefined -U_FORTIFY_SOURCE \
	$(WARNFLAGS) -Wno-unknown-warning-option -fstack-protector-strong -MMD -MP
# One line per fuzzer (runs, coverage), one fuzzer per core at a time
# (tests/fuzz/run-one); a fuzzer's whole output is kept in
# $(FUZZ_BUILD)/<fuzzer>.log and printed only when it finds something.
fuzz: $(FUZZERS)
	@printf '%s\n' $(FUZZERS) | xargs -P $(JOBS) -n 1 tests/fuzz/run-one $(FUZZ_BUILD) $(FUZZ_SECONDS)
$(FUZZ_BUILD)/obj/gen/%.o: $(BUILD)/gen/%.c $(GEN_H)
	@mkdir -p $(dir $@)
	clang $(CPPFLAGS) $(FUZZ_CFLAGS) -c -o $@ $<
$(FUZZ_BUILD)/obj/%.o: %.c | $(GEN_H) $(VERSION_H)
	@mkdir -p $(dir $@)
	clang $(CPPFLAGS) $(FUZZ_CFLAGS) -c -o $@ $<
$(FUZZ_LIBCOMMON): $(FUZZ_COMMON_O)
	@rm -f $@
	$(AR) rcs $@ $^
$(FUZZERS): $(FUZZ_BUILD)/%: tests/fuzz/%.c $(FUZZ_LIB_O) $(FUZZ_LIBCOMMON) | $(GEN_H) $(VERSION_H)
	clang $(CPPFLAGS) $(filter-out -fsanitize=%,$(FUZZ_CFLAGS)) -fsanitize=fuzzer,address,undefined \
		-o $@ $< $(FUZZ_LIB_O) $(FUZZ_LIBCOMMON) $(LIBS)

pyproto: $(BUILD)/py/.stamp
$(BUILD)/py/.stamp: $(PROTOS)
	@mkdir -p $(BUILD)/py
	protoc -I. --python_out=$(BUILD)/py $(PROTOS)
	@touch $@

check: check-unit check-units check-integration

# systemd units: verify, and each daemon started under its unit's bounding
# set and no_new_privs (PID 1 is not systemd on the test machines).
# Either exits 77 when a prerequisite is missing: tests/run-skippable makes
# that a skip, or a failure under CI=true.
check-units: all
	tests/run-skippable tests/systemd/verify.sh $(abspath $(BUILD)/bin)
	tests/run-skippable $(PYTHON) tests/systemd/startup.py $(abspath $(BUILD)/bin)

check-unit: $(UNIT_TESTS)
	@set -e; for t in $(UNIT_TESTS); do echo "== $$t"; CRIC_TEST_TMP=$${TMPDIR:-/tmp} $$t; done

check-integration: all pyproto $(TOOLS)
	CRIC_BUILD=$(abspath $(BUILD)) $(PYTHON) -m pytest -v -p no:cacheprovider $(PYTEST_ARGS) tests/integration

check-asan:
	$(MAKE) BUILD=build-asan SAN=1 check

# cric against containerd's CRI plugin in the same run (ratios; see
# tests/bench/bench.py). BENCH_ARGS=--quick for a smoke run.
bench: all pyproto
	CRIC_BUILD=$(abspath $(BUILD)) $(PYTHON) tests/bench/bench.py --json $(BUILD)/bench.json \
		--markdown $(BUILD)/bench.md $(BENCH_ARGS)

# --- demo: start a suite under DEMO_ROOT, pull an image and run it ---
# deploy/cric-demo: a loopback registry, an image from busybox-static, a pod
# labelled cric-demo=true (an earlier demo's is replaced, no other pod is
# touched), a container's log lines, an ExecSync, the lists.
DEMO_ROOT ?= /tmp/cric-demo
demo: all pyproto
	@CRIC_BIN_DIR=$(abspath $(BUILD))/bin deploy/cric-up --root $(DEMO_ROOT) --default-cni
	$(BUILD)/bin/cricctl --root $(DEMO_ROOT) version
	$(BUILD)/bin/cricctl --root $(DEMO_ROOT) status
	$(BUILD)/bin/cricctl --root $(DEMO_ROOT) health
	$(PYTHON) deploy/cric-demo --root $(DEMO_ROOT) --build $(BUILD) \
		--socket "$$($(BUILD)/bin/cricctl --root $(DEMO_ROOT) socket)"
	@echo "cric is running under $(DEMO_ROOT): CRI socket unix://$$($(BUILD)/bin/cricctl --root $(DEMO_ROOT) socket),"
	@echo "  daemon logs in $(DEMO_ROOT)/var/log/cric/, the container's in $(DEMO_ROOT)/var/log/pods/."
	@echo "Stop it (its pods, containers and daemons) with: deploy/cric-down --all --root $(DEMO_ROOT)"

# --- install ---
install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/cric/cric.d \
		$(DESTDIR)$(SYSCONFDIR)/cni/net.d
	install -m 0755 $(BINS) $(DESTDIR)$(BINDIR)/
	install -m 0755 deploy/cric-up deploy/cric-down deploy/cric-users $(DESTDIR)$(BINDIR)/
	install -d $(DESTDIR)$(PREFIX)/lib/sysusers.d $(DESTDIR)$(PREFIX)/lib/tmpfiles.d
	install -m 0644 deploy/sysusers.d/cric.conf $(DESTDIR)$(PREFIX)/lib/sysusers.d/cric.conf
	install -m 0644 deploy/tmpfiles.d/cric.conf $(DESTDIR)$(PREFIX)/lib/tmpfiles.d/cric.conf
	# The users: systemd-sysusers where it runs, else useradd (deploy/cric-users).
	if [ -z "$(DESTDIR)" ]; then \
		if [ -d /run/systemd/system ] && command -v systemd-sysusers >/dev/null; then \
			systemd-sysusers $(PREFIX)/lib/sysusers.d/cric.conf && \
			systemd-tmpfiles --create $(PREFIX)/lib/tmpfiles.d/cric.conf; \
		else deploy/cric-users; fi; fi
	for u in deploy/systemd/*.service deploy/systemd/*.target; do \
		sed 's|/usr/local/bin/|$(BINDIR)/|g' $$u > $(DESTDIR)$(UNITDIR)/$$(basename $$u); \
		chmod 0644 $(DESTDIR)$(UNITDIR)/$$(basename $$u); done
	test -e $(DESTDIR)$(SYSCONFDIR)/cric/cric.json || \
		install -m 0644 deploy/cric.json $(DESTDIR)$(SYSCONFDIR)/cric/cric.json
	install -d $(DESTDIR)$(PREFIX)/share/cric/cni
	install -m 0644 deploy/cni/* $(DESTDIR)$(PREFIX)/share/cric/cni/
	for f in deploy/cni/*; do test -e $(DESTDIR)$(SYSCONFDIR)/cni/net.d/$$(basename $$f) || \
		install -m 0644 $$f $(DESTDIR)$(SYSCONFDIR)/cni/net.d/; done

# --- hygiene ---
SOURCES = $(shell git ls-files '*.c' '*.h' 2>/dev/null)
format:
	clang-format -i $(SOURCES)
format-check:
	clang-format --dry-run -Werror $(SOURCES)
# clang's static analyzer. Its malloc checker does not model
# __attribute__((cleanup)) and reports every scoped free as a leak, so it is
# off here; leaks are caught by LeakSanitizer under check-asan instead.
LINT_SRC = $(shell git ls-files 'common/*.c' 'cri-gateway/*.c' 'imaged/*.c' 'stored/*.c' \
	'netd/*.c' 'runtimed/*.c' 'monitord/*.c' 2>/dev/null)
lint: $(GEN_H) $(VERSION_H)
	@set -e; out=$$(printf '%s\n' $(LINT_SRC) | xargs -P $(JOBS) -I{} tests/lint-one {} \
		-Xanalyzer -analyzer-disable-checker=unix.Malloc,deadcode.DeadStores \
		$(CPPFLAGS) $(GRPC_CFLAGS) -std=gnu11); \
		echo "$$out"; ! echo "$$out" | grep -q 'warning:'

clean:
	rm -rf build build-asan $(FUZZ_BUILD)

-include $(shell find $(BUILD)/obj $(BUILD)/tests $(BUILD)/tools $(FUZZ_BUILD)/obj -name '*.d' 2>/dev/null) \
	$(wildcard $(FUZZ_BUILD)/*.d)
