# sqlite-ram — build, test, bench, demo.
#   make            builds only: build/ram.so, build/ram-convert, build/ram-index, build/ram-search, the test binaries
#   make deps       installs the Debian packages of the build and the tests (tools/deps.sh, as root)
#   make test       deps, build, make lint, the whole test suite (ends with "N passed, N failed, N skipped")
#   make asan       the test suite under ASan+UBSan+LSan
#   make demo       deps, build, the main job on the bundled default model
#   make bench      benchmarks (ratios, never timed tests)
#   make bench-peers  ours vs the official PyTorch code and ONNX Runtime (docs/BENCH.md)
#   make lint       clang-format check (.clang-format) of LINT_FILES + a -Werror compile of every C file
#   make format     applies .clang-format to every C file of the repository
#   make install    PREFIX=/usr/local [DESTDIR=]: lib/ram0.so, bin/ram-index, bin/ram-convert,
#                   share/sqlite-ram/default.ram, share/doc/sqlite-ram; make uninstall
#   make dist       the Python wheel and the npm package of this build in build/dist

CC      ?= cc
BUILD   ?= build
ARCH    ?= -march=native
OPT     ?= -O2
SAN     ?=
# exempi-2.0 (XMP toolkit) and expat: ram_xmp() writes XMP sidecars (ext/xmp_sidecar.c says why).
PKGS    := vips openblas exempi-2.0 expat
# Plain make only builds: a missing library stops it with a `make deps` hint.
# (test_scale.sh: slurm-wlm, munge and GNU parallel, checked by slurmd, munged, parcat.)
# The README's two commands (make test, make demo) install what they need
# first, as root, through tools/deps.sh (which runs apt-get only for what is
# missing).
DEPS_GOALS := test test-fast asan demo fuzz tsan bench serve model
HAVE_BUILD_DEPS = $(shell pkg-config --exists $(PKGS) && test -f /usr/include/xxhash.h && test -f /usr/include/sqlite3.h && echo ok)
ifneq ($(filter $(DEPS_GOALS),$(MAKECMDGOALS)),)
ifeq ($(shell pkg-config --exists $(PKGS) && test -f /usr/include/xxhash.h && test -f /usr/include/sqlite3.h && command -v sqlite3 >/dev/null && command -v clang-format >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null && command -v parcat >/dev/null && ls "$$(clang -print-resource-dir 2>/dev/null)"/lib/linux/libclang_rt.fuzzer-*.a >/dev/null 2>&1 && echo ok),)
DEPS_RC := $(shell sh tools/deps.sh >&2; echo $$?)
endif
else ifeq ($(filter clean deps format,$(MAKECMDGOALS)),)
ifneq ($(HAVE_BUILD_DEPS),ok)
$(error missing build dependencies (libvips, OpenBLAS, xxHash or SQLite headers): run `make deps` as root, or install the packages tools/deps.sh lists)
endif
endif
# Every build runs on all cores (make test's build was a third of its time when
# serial on CI's 2 cores). GNU make 4.3 does not show a command-line -j to the
# makefile, so the count is a variable: make JOBS=1 builds one file at a time.
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
ifeq ($(MAKELEVEL),0)
MAKEFLAGS += -j$(JOBS)
endif
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
WARN    := -Wall -Wextra -Wshadow -Wundef -Wwrite-strings -Wmissing-prototypes -Wstrict-prototypes -Wno-unused-parameter
CFLAGS  ?=
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE -g $(OPT) $(ARCH) -fPIC $(WARN) $(SAN) $(PKG_CFLAGS) -Icore $(CFLAGS)
LIBS    := $(PKG_LIBS) -lxxhash -lm -lpthread
LDFLAGS ?=

CORE_SRC := $(wildcard core/*.c)
# Converter-only core files (.pth reading: pickle VM, zip reader; the writers):
# a library of their own that ram-convert and the tests link, never ram.so.
CONV_CORE_SRC := core/unpickle.c core/zip_reader.c core/pth_reader.c core/model_pth.c \
                 core/model_write.c core/safetensors_write.c
RT_CORE_SRC := $(filter-out $(CONV_CORE_SRC),$(CORE_SRC))
EXT_SRC  := $(wildcard ext/*.c)
CONV_SRC := $(wildcard models/*.c)
TEST_SRC := $(wildcard tests/test_*.c)
BENCH_SRC:= $(wildcard tests/bench/*.c)

CORE_OBJ      := $(RT_CORE_SRC:%.c=$(BUILD)/obj/%.o)
CORE_TEST_OBJ := $(RT_CORE_SRC:%.c=$(BUILD)/objt/%.o)
CONV_CORE_OBJ      := $(CONV_CORE_SRC:%.c=$(BUILD)/obj/%.o)
CONV_CORE_TEST_OBJ := $(CONV_CORE_SRC:%.c=$(BUILD)/objt/%.o)
EXT_OBJ       := $(EXT_SRC:%.c=$(BUILD)/obj/%.o)
CONV_OBJ      := $(CONV_SRC:%.c=$(BUILD)/obj/%.o)
TEST_BIN      := $(TEST_SRC:tests/%.c=$(BUILD)/%)
BENCH_BIN     := $(BENCH_SRC:tests/bench/%.c=$(BUILD)/bench/%)

# Model files every test uses, converted from the golden checkpoints by ram-convert.
GOLDEN      := tests/data/golden
GOLDEN_TAGS := --tags $(GOLDEN)/tag_list.txt --tags-zh $(GOLDEN)/tag_list_chinese.txt \
               --thresholds $(GOLDEN)/tag_list_threshold.txt
TEST_MODELS := $(BUILD)/models/golden_ram_plus.ram $(BUILD)/models/golden_ram.ram \
               $(BUILD)/models/golden_ram_plus_clip.ram
TEST_MODELS += $(BUILD)/models/golden_tag2text.ram $(BUILD)/models/heldout_tag2text.ram \
               $(BUILD)/models/golden_tag2text_int8.ram


# The bundled default model, trained by models/train/train_default.py (its config.json
# records the flags: CLIP heads and tagger heads are not visible in the weights).
DEFAULT     := models/default
# models/default.ram (where the extension and the tests find it) is copied from the
# top-level build only: a sanitizer build (asan-build passes COPY_MODELS=0) converts its
# own $(BUILD)/default.ram and leaves the file the optimised suite reads alone.
COPY_MODELS ?= 1
DEFAULT_RAM := $(if $(wildcard $(DEFAULT)/ram_plus_default.pth),$(BUILD)/default.ram \
                 $(if $(filter 1,$(COPY_MODELS)),models/default.ram))
# The bundled default caption model (Tag2Text), trained by models/train/train_caption.py
# (its caption.json records the flags); found as default_caption.ram beside default.ram.
DEFAULT_CAPTION := $(if $(wildcard $(DEFAULT)/tag2text_default.pth),models/default_caption.ram)
DEFAULT_RAM += $(if $(DEFAULT_CAPTION),$(BUILD)/default_caption.ram $(if $(filter 1,$(COPY_MODELS)),$(DEFAULT_CAPTION)))

.PHONY: all deps test test-fast asan asan-build bench bench-libs demo serve fuzz model clean lint format install uninstall dist
all: $(BUILD)/ram.so $(BUILD)/ram-convert $(TEST_BIN) $(BUILD)/bpe_simple_vocab_16e6.txt $(TEST_MODELS) \
     $(DEFAULT_RAM)

# The CLIP BPE vocabulary, uncompressed (zlib is not a dependency); tests read
# it from the build folder (tests: getenv("RAM_BUILD")).
$(BUILD)/bpe_simple_vocab_16e6.txt: models/bpe_simple_vocab_16e6.txt.gz
	@mkdir -p $(dir $@)
	gzip -dc $< > $@.tmp && mv $@.tmp $@

$(BUILD)/models/golden_ram_plus.ram: $(GOLDEN)/ram_plus_tiny.pth $(BUILD)/ram-convert
	@mkdir -p $(dir $@)
	$(BUILD)/ram-convert $< -o $@ $(GOLDEN_TAGS) >/dev/null

$(BUILD)/models/golden_ram.ram: $(GOLDEN)/ram_tiny.pth $(BUILD)/ram-convert
	@mkdir -p $(dir $@)
	$(BUILD)/ram-convert $< -o $@ $(GOLDEN_TAGS) >/dev/null

# Tag2Text: the golden checkpoint (2 heads: not visible in the weights), and a
# held-out config with random weights (tests/test_tag2text.c checks it against
# a double-precision reference).
$(BUILD)/models/golden_tag2text.ram: $(GOLDEN)/tag2text/tag2text_tiny.pth $(GOLDEN)/tag2text/tag_list.txt \
		models/bert_vocab.txt $(BUILD)/ram-convert
	@mkdir -p $(dir $@)
	$(BUILD)/ram-convert $< -o $@ --tags $(GOLDEN)/tag2text/tag_list.txt --bert-heads 2 \
	  --bert-vocab models/bert_vocab.txt >/dev/null

# The same with --quant int8: its caption decoder drafts in int8 and checks in
# fp32 (sql/caption: the golden captions through it).
$(BUILD)/models/golden_tag2text_int8.ram: $(GOLDEN)/tag2text/tag2text_tiny.pth $(GOLDEN)/tag2text/tag_list.txt \
		models/bert_vocab.txt $(BUILD)/ram-convert
	@mkdir -p $(dir $@)
	$(BUILD)/ram-convert $< -o $@ --tags $(GOLDEN)/tag2text/tag_list.txt --bert-heads 2 \
	  --bert-vocab models/bert_vocab.txt --quant int8 >/dev/null

$(BUILD)/models/heldout_tag2text.ram: tests/data/tag2text_heldout.json models/bert_vocab.txt $(BUILD)/ram-convert
	@mkdir -p $(dir $@)
	$(BUILD)/ram-convert --random $< -o $@ --seed 5 --bert-vocab models/bert_vocab.txt >/dev/null

$(BUILD)/models/golden_ram_plus_clip.ram: $(GOLDEN)/ram_plus_tiny.pth $(GOLDEN)/clip_tiny.pth \
		$(BUILD)/bpe_simple_vocab_16e6.txt $(BUILD)/ram-convert
	@mkdir -p $(dir $@)
	$(BUILD)/ram-convert $< -o $@ $(GOLDEN_TAGS) --clip $(GOLDEN)/clip_tiny.pth --clip-heads 2 \
	  --bpe $(BUILD)/bpe_simple_vocab_16e6.txt >/dev/null

$(BUILD)/default.ram: $(DEFAULT)/ram_plus_default.pth $(DEFAULT)/clip_text_default.pth \
		$(DEFAULT)/ram_tag_list.txt $(DEFAULT)/ram_tag_list_chinese.txt \
		$(DEFAULT)/ram_tag_list_threshold.txt $(BUILD)/bpe_simple_vocab_16e6.txt $(BUILD)/ram-convert
	@mkdir -p $(dir $@)
	$(BUILD)/ram-convert $< -o $@ --tags $(DEFAULT)/ram_tag_list.txt \
	  --tags-zh $(DEFAULT)/ram_tag_list_chinese.txt --thresholds $(DEFAULT)/ram_tag_list_threshold.txt \
	  --clip $(DEFAULT)/clip_text_default.pth --clip-heads 2 --tagger-heads 4 \
	  --bpe $(BUILD)/bpe_simple_vocab_16e6.txt >/dev/null

# Where the extension and make demo look for it (next to build/).
models/default.ram: $(BUILD)/default.ram
	cp $< $@.tmp && mv $@.tmp $@

$(BUILD)/default_caption.ram: $(DEFAULT)/tag2text_default.pth $(DEFAULT)/ram_tag_list.txt \
		$(DEFAULT)/tag2text_threshold.txt $(DEFAULT)/tag2text_vocab.txt $(BUILD)/ram-convert
	@mkdir -p $(dir $@)
	$(BUILD)/ram-convert $< -o $@ --tags $(DEFAULT)/ram_tag_list.txt \
	  --thresholds $(DEFAULT)/tag2text_threshold.txt --bert-vocab $(DEFAULT)/tag2text_vocab.txt \
	  --bert-heads 4 --tagger-heads 4 --image-size 128 >/dev/null

models/default_caption.ram: $(BUILD)/default_caption.ram
	cp $< $@.tmp && mv $@.tmp $@

deps:
	@sh tools/deps.sh

# make install PREFIX=/usr/local [DESTDIR=staging]. The extension is installed as
# lib/ram0.so, the major version in the name like sqlite-vec's vec0.so: SQLite
# derives the entry point from the letters of the file name, so `.load
# PREFIX/lib/ram0` still calls sqlite3_ram_init. The default model goes to
# share/sqlite-ram/, which the extension finds relative to its own directory
# (ext/model_path.c), so nothing is compiled in and no rebuild is needed per
# PREFIX. The BPE vocabulary is installed for ram-convert --bpe.
PREFIX  ?= /usr/local
DESTDIR ?=
RAM_ABI := 0
INST_LIB   = $(DESTDIR)$(PREFIX)/lib
INST_BIN   = $(DESTDIR)$(PREFIX)/bin
INST_SHARE = $(DESTDIR)$(PREFIX)/share/sqlite-ram
INST_DOC   = $(DESTDIR)$(PREFIX)/share/doc/sqlite-ram
INST_DOCS := README.md docs/SQL.md docs/INDEX.md docs/SCALE.md sql/examples.sql sql/schema.sql
install: $(BUILD)/ram.so $(BUILD)/ram-index $(BUILD)/ram-search $(BUILD)/ram-convert $(BUILD)/bpe_simple_vocab_16e6.txt models/default.ram \
		$(DEFAULT_CAPTION)
	install -d "$(INST_LIB)" "$(INST_BIN)" "$(INST_SHARE)" "$(INST_DOC)"
	install -m 755 $(BUILD)/ram.so "$(INST_LIB)/ram$(RAM_ABI).so"
	install -m 755 $(BUILD)/ram-index $(BUILD)/ram-search $(BUILD)/ram-convert "$(INST_BIN)/"
	install -m 644 models/default.ram $(DEFAULT_CAPTION) $(BUILD)/bpe_simple_vocab_16e6.txt "$(INST_SHARE)/"
	install -m 644 $(INST_DOCS) "$(INST_DOC)/"
	install -m 644 models/README.md "$(INST_DOC)/MODELS.md"
# make dist: the Python wheel and the npm tarball of this build in $(BUILD)/dist
# (bindings/python, bindings/node; both offline).
dist: $(BUILD)/ram.so models/default.ram
	SQLITE_RAM_BUILD=$(abspath $(BUILD)) /usr/bin/python3 -m pip wheel -q --no-index -w $(BUILD)/dist ./bindings/python
	sh bindings/node/pack.sh $(BUILD) $(BUILD)/dist
uninstall:
	rm -f "$(INST_LIB)/ram$(RAM_ABI).so" "$(INST_BIN)/ram-index" "$(INST_BIN)/ram-search" "$(INST_BIN)/ram-convert" \
	  "$(INST_SHARE)/default.ram" "$(INST_SHARE)/default_caption.ram" "$(INST_SHARE)/bpe_simple_vocab_16e6.txt" \
	  $(addprefix "$(INST_DOC)/,$(addsuffix ",$(notdir $(INST_DOCS)) MODELS.md))
	-rmdir "$(INST_SHARE)" "$(INST_DOC)" 2>/dev/null

$(BUILD)/obj/%.o: %.c $(wildcard core/*.h ext/*.h models/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Iext -c $< -o $@

$(BUILD)/objt/%.o: %.c $(wildcard core/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -DRAM_TEST -c $< -o $@

$(BUILD)/libramcore.a: $(CORE_OBJ)
	@rm -f $@; ar rcs $@ $^

$(BUILD)/libramcore_test.a: $(CORE_TEST_OBJ)
	@rm -f $@; ar rcs $@ $^

$(BUILD)/libramconv.a: $(CONV_CORE_OBJ)
	@rm -f $@; ar rcs $@ $^

$(BUILD)/libramconv_test.a: $(CONV_CORE_TEST_OBJ)
	@rm -f $@; ar rcs $@ $^

# ram.so exports only sqlite3_ram_init (STYLE.md rule 2): ext/ is compiled with
# -fvisibility=hidden and the version script also hides the static core.
$(EXT_OBJ): ALL_CFLAGS += -fvisibility=hidden
# -z nodelete: the job pool's workers (core/jobs.c) outlive a call and sleep
# in ram.so's code, and its per-thread buffers have destructors there; SQLite
# dlcloses the extension when the last connection that loaded it closes, which
# would unmap that code under them (SIGSEGV at the next thread exit). A loaded
# ram.so therefore stays mapped until the process ends.
$(BUILD)/ram.so: $(EXT_OBJ) $(BUILD)/libramcore.a ext/ram.map
	$(CC) -shared $(SAN) -o $@ $(EXT_OBJ) $(BUILD)/libramcore.a $(LIBS) -Wl,--version-script=ext/ram.map \
	  -Wl,-z,nodelete $(LDFLAGS)

# build/ram-index (demo/): indexes a photo folder through ram.so, found next to it.
all: $(BUILD)/ram-index
# build/ram-search (demo/): one query over several shard databases (docs/SCALE.md).
all: $(BUILD)/ram-search
$(BUILD)/ram-search: demo/ram-search.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< -lsqlite3 $(LDFLAGS)
$(BUILD)/ram-index: demo/ram-index.c demo/shard.c demo/shard.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ demo/ram-index.c demo/shard.c -lsqlite3 $(LDFLAGS)

$(BUILD)/ram-convert: $(CONV_OBJ) $(BUILD)/libramconv.a $(BUILD)/libramcore.a
	$(CC) $(SAN) -o $@ $(CONV_OBJ) $(BUILD)/libramconv.a $(BUILD)/libramcore.a $(LIBS) $(LDFLAGS)

$(BUILD)/test_%: tests/test_%.c tests/harness.h tests/sql_harness.h tests/test_json.h $(BUILD)/libramconv_test.a $(BUILD)/libramcore_test.a
	$(CC) $(ALL_CFLAGS) -DRAM_TEST -Itests $< -o $@ $(BUILD)/libramconv_test.a $(BUILD)/libramcore_test.a $(LIBS) -lsqlite3 $(LDFLAGS)

$(BUILD)/bench/%: tests/bench/%.c $(wildcard tests/bench/*.h) $(BUILD)/libramconv.a $(BUILD)/libramcore.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests $< -o $@ $(BUILD)/libramconv.a $(BUILD)/libramcore.a $(LIBS) -lsqlite3 $(LDFLAGS)

# The whole suite twice: the optimised build, then the same tests under
# ASan+UBSan+LSan ($(BUILD)/asan); then, once, test_concurrency under
# ThreadSanitizer ($(BUILD)/tsan) and every fuzz target for FUZZ_SECONDS
# (two at a time; FUZZ_SECONDS=0 skips them). One closing "N passed, N failed, N skipped".
ASAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
ASAN_BUILD ?= $(BUILD)/asan
TSAN_BUILD ?= $(BUILD)/tsan
FUZZ_BUILD   ?= $(BUILD)/fuzz
FUZZ_SECONDS ?= 40
FUZZ_TARGETS := image pth model bpe sql index wordpiece
test: all lint asan-build tsan-build $(if $(filter-out 0,$(FUZZ_SECONDS)),fuzz-build)
	@RAM_TSAN_BUILD=$(TSAN_BUILD) RAM_TSAN_OPTIONS="$(TSAN_OPTIONS_RAM)" RAM_FUZZ_BUILD=$(FUZZ_BUILD) FUZZ_SECONDS=$(FUZZ_SECONDS) \
	  FUZZ_TARGETS="$(FUZZ_TARGETS)" sh tests/run.sh $(BUILD) $(ASAN_BUILD)

test-fast: all
	@sh tests/run.sh $(BUILD)

asan-build:
	@$(MAKE) --no-print-directory BUILD=$(ASAN_BUILD) OPT=-O1 SAN="$(ASAN_FLAGS)" COPY_MODELS=0 all

# The sanitizer suite alone (its tests read models/default.ram, made by the top-level build).
asan: asan-build models/default.ram $(DEFAULT_CAPTION)
	@sh tests/run.sh $(ASAN_BUILD)

bench: all $(BENCH_BIN)
	@sh tests/bench/run.sh $(BUILD)

# Issue 16's cascade and tag top-k over 1,000,000 pictures alone (make bench runs it too).
bench-cascade: all $(BUILD)/bench/bench_cascade
	@sh tests/bench/cascade.sh $(BUILD)

# The measurement behind docs/KERNELS.md: our sgemm against oneDNN, BLIS,
# libxsmm and OpenBLAS on the forward's shapes (none of them is a dependency:
# needs libdnnl-dev, libblis-dev, libxsmm-dev; prints what to install if not).
bench-libs: $(BUILD)/libramcore.a
	@test -f /usr/include/oneapi/dnnl/dnnl.h && test -f /usr/lib/libxsmm.a || \
	  { echo "bench-libs: apt-get install libdnnl-dev libblis-dev libxsmm-dev"; exit 1; }
	@mkdir -p $(BUILD)/bench
	$(CC) $(ALL_CFLAGS) tests/bench/libs/gemm_libs.c -o $(BUILD)/bench/gemm_libs $(BUILD)/libramcore.a \
	  /usr/lib/libxsmm.a -ldnnl $(LIBS) -ldl
	$(BUILD)/bench/gemm_libs $(BENCH_LIBS_ROUNDS)

# This engine against the official PyTorch RAM++ and ONNX Runtime, same run,
# same images (not part of make test or make bench; docs/BENCH.md):
#   RAM_OFFICIAL_REPO=/path/to/recognize-anything make bench-peers
.PHONY: bench-peers
bench-peers: all $(BUILD)/bench/peers_ours
	@sh tests/bench/peers.sh $(BUILD)

demo: all
	@sh demo/demo.sh

# The local search page (demo/serve.py, Python standard library, Debian's
# /usr/bin/python3) over an index made by make demo or build/ram-index:
#   make serve [DB=demo/photos.db] [PORT=8765] [HOST=127.0.0.1] [ROOT=dir] [MODEL=file]
serve: all
	@/usr/bin/python3 demo/serve.py "$(or $(DB),demo/photos.db)" --ext $(BUILD)/ram \
	  $(if $(PORT),--port $(PORT)) $(if $(HOST),--host $(HOST)) $(if $(ROOT),--root "$(ROOT)") \
	  $(if $(MODEL),--model "$(MODEL)")

clean:
	rm -rf $(BUILD)

# make lint: the committed .clang-format checked (nothing is changed) on
# LINT_FILES (every C file but the generated tables), then every C file
# compiled with -Werror (objects in $(BUILD)/lint, not linked). make test runs it.
FORMAT_FILES := $(wildcard core/*.c core/*.h ext/*.c ext/*.h models/*.c models/*.h demo/*.c \
                  tests/*.c tests/*.h tests/bench/*.c tests/bench/*.h tests/fuzz/*.c tests/fuzz/*.h)
FORMAT_FILES := $(filter-out core/unicode_tables.h core/wordpiece_tables.h,$(FORMAT_FILES)) # generated by tools/gen_*_tables.py
LINT_FILES ?= $(FORMAT_FILES)
LINT_SRC := $(CORE_SRC) $(EXT_SRC) $(CONV_SRC) demo/ram-index.c demo/shard.c demo/ram-search.c
LINT_OBJ := $(LINT_SRC:%.c=$(BUILD)/lint/%.o)
# The call graph of the same objects must have no circle under LINT_GRAPH
# (empty: all of core/ and ext/; the ops.c <-> gemm_q8.c circle went with
# core/jobs.c, sgemm's with core/sgemm_pack.c).
LINT_GRAPH ?=
lint: $(LINT_OBJ)
	@clang-format --dry-run -Werror $(LINT_FILES) && echo "lint: $(words $(LINT_FILES)) files formatted, $(words $(LINT_SRC)) files compile with -Werror"
	@/usr/bin/python3 tools/callgraph.py $(BUILD)/lint $(LINT_GRAPH) >$(BUILD)/lint/callgraph.txt || \
	  { cat $(BUILD)/lint/callgraph.txt; exit 1; }; echo "lint: call graph in $(BUILD)/lint/callgraph.txt, $$(tail -1 $(BUILD)/lint/callgraph.txt)"
$(BUILD)/lint/%.o: %.c $(wildcard core/*.h ext/*.h models/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Werror -Iext -c $< -o $@
format:
	clang-format -i $(FORMAT_FILES)

# libFuzzer targets (tests/fuzz/, clang): core/ and ext/ rebuilt with
# -fsanitize=fuzzer-no-link,address,undefined in $(FUZZ_BUILD); tests/fuzz/run.sh
# runs each target FUZZ_SECONDS, two at a time, over its seeds
# (tests/fuzz/corpus/T, read only), writes new inputs to $(FUZZ_BUILD)/corpus/T
# and a crash input to $(FUZZ_BUILD)/T-crash-* (its FAIL line names it).
# A crash input, once fixed, is copied into tests/fuzz/corpus/T so that
# test_fuzz_corpus replays it in every make test.
FUZZ_CC      ?= clang
FUZZ_SAN     := -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer \
                -fsanitize-coverage-ignorelist=tests/fuzz/cov_ignore.txt
FUZZ_CFLAGS   = -std=c11 -D_GNU_SOURCE -g -O1 $(FUZZ_SAN) $(PKG_CFLAGS) -Icore -Iext -Itests -fvisibility=hidden
FUZZ_CORE_OBJ := $(CORE_SRC:%.c=$(FUZZ_BUILD)/obj/%.o)
FUZZ_EXT_OBJ  := $(EXT_SRC:%.c=$(FUZZ_BUILD)/obj/%.o)
$(FUZZ_BUILD)/obj/%.o: %.c $(wildcard core/*.h ext/*.h) tests/fuzz/cov_ignore.txt
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@
$(FUZZ_BUILD)/fuzz_sql $(FUZZ_BUILD)/fuzz_index: FUZZ_EXTRA = $(FUZZ_EXT_OBJ) -lsqlite3
$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FUZZ_CORE_OBJ) $(FUZZ_EXT_OBJ)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -DFUZZ_STATIC_EXT -fsanitize=fuzzer $< -o $@ $(FUZZ_EXTRA) $(FUZZ_CORE_OBJ) $(LIBS)
fuzz-build: $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz_%) $(BUILD)/bpe_simple_vocab_16e6.txt $(TEST_MODELS)
fuzz: fuzz-build
	@RAM_BUILD=$(BUILD) sh tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)
.PHONY: fuzz-build
.SECONDARY: $(FUZZ_CORE_OBJ) $(FUZZ_EXT_OBJ)

# The official checkpoints (Hugging Face), SHA-256 checked against models/SHA256SUMS,
# converted into models/ram_plus.ram, models/ram.ram, models/ram_plus_clip.ram.
model: $(BUILD)/ram-convert $(BUILD)/bpe_simple_vocab_16e6.txt
	@RAM_BUILD=$(BUILD) sh models/download.sh all

# ThreadSanitizer: ram.so and test_concurrency built with -fsanitize=thread in
# $(TSAN_BUILD) (models from $(BUILD)); tests/run.sh runs it with the options
# below (make test runs it too). ignore_noninstrumented_modules: accesses made
# inside the uninstrumented system libraries (libvips' worker thread filling our
# buffer with memcpy, OpenBLAS, SQLite) are not recorded, since their
# synchronisation (glib futexes, OpenBLAS spin flags) is invisible to TSan; each
# such byte was a suppressed "race", and that bookkeeping (quadratic) kept the
# first run from finishing in 10 min; now 6 s. Every access by core/ and ext/ is checked.
TSAN_OPTIONS_RAM := suppressions=$(CURDIR)/tests/tsan.supp ignore_noninstrumented_modules=1 halt_on_error=1 second_deadlock_stack=1
tsan-build: all $(TSAN_BUILD)/test_concurrency
	@$(MAKE) --no-print-directory BUILD=$(TSAN_BUILD) OPT=-O1 SAN="-fsanitize=thread" $(TSAN_BUILD)/ram.so
	@mkdir -p $(TSAN_BUILD) && ln -sfn $(abspath $(BUILD))/models $(TSAN_BUILD)/models
# test_concurrency needs only SQLite and ram.so: no core library (its build would double the time).
$(TSAN_BUILD)/test_concurrency: tests/test_concurrency.c tests/harness.h
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=thread $(PKG_CFLAGS) -Icore -Itests $< -o $@ -lsqlite3 -lpthread -lm
tsan: tsan-build
	RAM_BUILD=$(TSAN_BUILD) OPENBLAS_NUM_THREADS=1 RAM_THREADS=2 TSAN_OPTIONS="$(TSAN_OPTIONS_RAM)" $(TSAN_BUILD)/test_concurrency
.PHONY: tsan tsan-build
