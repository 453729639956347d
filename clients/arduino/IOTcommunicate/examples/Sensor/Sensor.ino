// Sensor: sends a temperature every 10 seconds; the hub acknowledges each value once it is stored.
// Board: ESP32 or ESP8266. Libraries: IOTcommunicate, WebSockets (Markus Sattler), ArduinoJson 7.
#if defined(ESP8266)
#include <ESP8266WiFi.h>
#else
#include <WiFi.h>
#endif
#include <IOTcommunicate.h>

const char* WIFI_SSID = "your-wifi";
const char* WIFI_PASSWORD = "your-password";
const char* HUB_HOST = "192.168.1.10";  // the machine running the hub (not 127.0.0.1: that is the board itself)
const uint16_t HUB_PORT = 8888;
const char* DEVICE_ID = "YOUR20CHARDEVICEID00";
const char* DEVICE_KEY = "YOUR15CHARKEY00";

IOTcommunicate hub(DEVICE_ID, DEVICE_KEY);
unsigned long lastSent = 0;

float readTemperature() {
  // Replace with your sensor; the internal ADC stands in for it here.
  return 20.0 + analogRead(A0) / 100.0;
}

void onAck(uint32_t id, bool ok, const char* code) {
  if (ok) {
    Serial.printf("value #%u stored\n", (unsigned)id);
  } else {
    Serial.printf("value #%u refused: %s\n", (unsigned)id, code);
  }
}

void setup() {
  Serial.begin(115200);
  WiFi.begin(WIFI_SSID, WIFI_PASSWORD);
  while (WiFi.status() != WL_CONNECTED) delay(250);
  hub.onAck(onAck);
  hub.begin(HUB_HOST, HUB_PORT);
}

void loop() {
  hub.loop();
  if (hub.connected() && millis() - lastSent >= 10000) {
    lastSent = millis();
    hub.put("temp", readTemperature());
  }
}
