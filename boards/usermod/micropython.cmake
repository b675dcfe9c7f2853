# All of p1dongle's user C modules (USER_C_MODULES=boards/usermod/micropython.cmake).
include(${CMAKE_CURRENT_LIST_DIR}/p1gcm/micropython.cmake)
