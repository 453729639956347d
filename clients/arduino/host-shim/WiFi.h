// Host shim of the ESP32 WiFi library (only what the examples call).
#pragma once
#include <Arduino.h>

#define WL_CONNECTED 3

struct HostWiFi {
  int begin(const char*, const char*) { return WL_CONNECTED; }
  int status() { return WL_CONNECTED; }
};
extern HostWiFi WiFi;
