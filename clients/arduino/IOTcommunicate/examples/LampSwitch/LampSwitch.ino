// Lamp switch: the app writes "lamp" = true/false; the board switches its LED and reports the state back.
// The last value written while the board was offline arrives when it connects (synced = true).
#if defined(ESP8266)
#include <ESP8266WiFi.h>
#else
#include <WiFi.h>
#endif
#include <IOTcommunicate.h>

#ifndef LED_BUILTIN
#define LED_BUILTIN 2  // most ESP32 boards without one defined have their LED on GPIO 2
#endif

const char* WIFI_SSID = "your-wifi";
const char* WIFI_PASSWORD = "your-password";
const char* HUB_HOST = "192.168.1.10";
const uint16_t HUB_PORT = 8888;
const char* DEVICE_ID = "YOUR20CHARDEVICEID00";
const char* DEVICE_KEY = "YOUR15CHARKEY00";
const int LAMP_PIN = LED_BUILTIN;

IOTcommunicate hub(DEVICE_ID, DEVICE_KEY);

void onValue(const char* sensor, JsonVariantConst value, bool synced) {
  if (strcmp(sensor, "lamp") != 0) return;
  // Accepts true/false, 1/0 and "on"/"off", as apps and the original clients send them.
  bool on = value.is<const char*>() ? strcmp(value.as<const char*>(), "on") == 0 : value.as<bool>();
  digitalWrite(LAMP_PIN, on ? HIGH : LOW);
  Serial.printf("lamp %s%s\n", on ? "on" : "off", synced ? " (set while offline)" : "");
  hub.put("lamp_state", on);
}

void onConnection(bool connected) {
  Serial.println(connected ? "connected to the hub" : "hub connection lost; retrying");
}

void setup() {
  Serial.begin(115200);
  pinMode(LAMP_PIN, OUTPUT);
  WiFi.begin(WIFI_SSID, WIFI_PASSWORD);
  while (WiFi.status() != WL_CONNECTED) delay(250);
  hub.onValue(onValue);
  hub.onConnection(onConnection);
  hub.begin(HUB_HOST, HUB_PORT);
}

void loop() {
  hub.loop();
}
