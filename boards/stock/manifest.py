# The stock-image twin (make firmware-stock): MicroPython's unix port built like the ESP32 port,
# but as MicroPython's own ESP32 images are for p1dongle: asyncio frozen, no p1dongle package
# frozen, no _p1gcm. p1dongle then runs from .mpy files, as `tools/flash.py install` puts them on
# a board with a stock image (its code in the heap), with its Python GCM on cryptolib.
include("$(MPY_DIR)/extmod/asyncio")
