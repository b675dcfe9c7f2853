# The ESP32 port (cmake, ESP-IDF): our GCM module on ESP-IDF's mbedTLS (hardware AES).
add_library(usermod_p1gcm INTERFACE)
target_sources(usermod_p1gcm INTERFACE ${CMAKE_CURRENT_LIST_DIR}/p1gcm.c)
target_include_directories(usermod_p1gcm INTERFACE ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(usermod INTERFACE usermod_p1gcm)
