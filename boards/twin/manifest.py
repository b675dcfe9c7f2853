# The dongle twin (MicroPython's unix port built like the ESP32 port: make firmware-unix) freezes
# what the boards freeze, without the ESP32 port's boot modules (the unix port has none).
include("../manifest.py", port_modules=False)
