// ESP32-CAM (AI-Thinker board): a JPEG frame a second to IOTcommunicate over HTTP, as sensor "cam".
// The device page shows it live; apps get it byte-exact over WebSocket (binary frames) and MQTT.
// Needs only the ESP32 Arduino core (esp_camera, HTTPClient): not the IOTcommunicate library.
// Board: "AI Thinker ESP32-CAM"; set your Wi-Fi, the hub's LAN address, and the device's id and key.
#include <WiFi.h>
#include <HTTPClient.h>
#include "esp_camera.h"

const char* WIFI_SSID = "ssid";
const char* WIFI_PASSWORD = "password";
const char* HUB = "192.168.1.10";  // the hub's LAN address, not 127.0.0.1
const uint16_t PORT = 8888;
const char* DEVICE_ID = "DEVICE_ID";
const char* DEVICE_KEY = "DEVICE_KEY";
const unsigned long EVERY_MS = 1000;

static char url[160];

static bool startCamera() {
  camera_config_t c = {};
  // AI-Thinker ESP32-CAM pins.
  c.pin_pwdn = 32;
  c.pin_reset = -1;
  c.pin_xclk = 0;
  c.pin_sccb_sda = 26;
  c.pin_sccb_scl = 27;
  c.pin_d7 = 35;
  c.pin_d6 = 34;
  c.pin_d5 = 39;
  c.pin_d4 = 36;
  c.pin_d3 = 21;
  c.pin_d2 = 19;
  c.pin_d1 = 18;
  c.pin_d0 = 5;
  c.pin_vsync = 25;
  c.pin_href = 23;
  c.pin_pclk = 22;
  c.xclk_freq_hz = 20000000;
  c.ledc_timer = LEDC_TIMER_0;
  c.ledc_channel = LEDC_CHANNEL_0;
  c.pixel_format = PIXFORMAT_JPEG;
  c.frame_size = FRAMESIZE_VGA;  // 640x480: 20-60 KB a frame, within the hub's 256 KiB --max-blob
  c.jpeg_quality = 12;
  c.fb_count = 1;
  return esp_camera_init(&c) == ESP_OK;
}

// One frame, PUT as the body: the hub answers 201 once it is stored (413 if over --max-blob).
static int postFrame() {
  camera_fb_t* fb = esp_camera_fb_get();
  if (!fb) return -1;
  HTTPClient http;
  http.begin(url);
  http.addHeader("X-Device-Key", DEVICE_KEY);
  http.addHeader("Content-Type", "image/jpeg");
  int status = http.sendRequest("PUT", fb->buf, fb->len);
  http.end();
  esp_camera_fb_return(fb);
  return status;
}

void setup() {
  Serial.begin(115200);
  WiFi.begin(WIFI_SSID, WIFI_PASSWORD);
  while (WiFi.status() != WL_CONNECTED) delay(250);
  if (!startCamera()) {
    Serial.println("camera init failed");
    return;
  }
  snprintf(url, sizeof url, "http://%s:%u/api/v1/devices/%s/blobs/cam", HUB, (unsigned)PORT, DEVICE_ID);
}

void loop() {
  static bool sent = false;
  static unsigned long last = 0;
  if (sent && millis() - last < EVERY_MS) return;
  sent = true;
  last = millis();
  int status = postFrame();
  if (status != 201) Serial.printf("frame not stored: HTTP %d\n", status);
}
