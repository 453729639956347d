// Host shim of the ESP8266 WiFi library: the same calls as the ESP32's.
#pragma once
#include <WiFi.h>
