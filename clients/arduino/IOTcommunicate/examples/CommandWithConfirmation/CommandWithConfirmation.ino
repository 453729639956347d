// Command with confirmation: the app calls "blink" with {"times":3}; the board blinks, then answers
// {"blinked":3} (or an error the app receives as E_DEVICE). From the app:
//   JavaScript: await client.call('blink', { times: 3 })      Python: ws.call("blink", {"times": 3})
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
const int LED_PIN = LED_BUILTIN;

IOTcommunicate hub(DEVICE_ID, DEVICE_KEY);

void blink(JsonVariantConst params, IOTcommunicate::CallReply& reply) {
  int times = params["times"] | 1;
  if (times < 1 || times > 20) {
    reply.error("times must be between 1 and 20");
    return;
  }
  for (int i = 0; i < times; i++) {
    digitalWrite(LED_PIN, HIGH);
    delay(150);
    digitalWrite(LED_PIN, LOW);
    delay(150);
  }
  reply.result()["blinked"] = times;
}

void setup() {
  Serial.begin(115200);
  pinMode(LED_PIN, OUTPUT);
  WiFi.begin(WIFI_SSID, WIFI_PASSWORD);
  while (WiFi.status() != WL_CONNECTED) delay(250);
  hub.onCall("blink", blink);
  hub.begin(HUB_HOST, HUB_PORT);
}

void loop() {
  hub.loop();
}
