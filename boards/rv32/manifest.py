# The RV32 twin (MicroPython's qemu port, VIRT_RV32, built like the ESP32-C3: make firmware-rv32)
# freezes what the boards freeze, without the ESP32 port's boot modules: asyncio and
# firmware/p1dongle (viper as rv32imc machine code, no Zba, as on the C3).
include("../manifest.py", port_modules=False)
# The boards' asyncio manifest leaves out task.py because their ports have the _asyncio C module;
# the qemu port has none, and asyncio/core.py then imports its Python TaskQueue and Task from it.
package("asyncio", ("task.py",), base_path="$(MPY_DIR)/extmod", opt=3)
# The tests' job runner, frozen: the twin has no file system to load it from, and its heap
# (140 KB, about the C3's) would not hold it compiled from source beside a job.
module("mp_job.py", base_path="../../host_tests")
