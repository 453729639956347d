// Definitions behind the camera and HTTPClient host shims (see esp_camera.h, HTTPClient.h).
#include <HTTPClient.h>
#include <esp_camera.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>
#include <fstream>
#include <iterator>

static std::vector<uint8_t> frame;
static camera_fb_t fb;

esp_err_t esp_camera_init(const camera_config_t* config) {
  return config->pixel_format == PIXFORMAT_JPEG ? ESP_OK : ESP_FAIL;
}

camera_fb_t* esp_camera_fb_get() {
  const char* file = std::getenv("IOTC_HOST_FRAME");
  if (!file) return nullptr;
  std::ifstream in(file, std::ios::binary);
  frame.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  fb = {frame.data(), frame.size(), 640, 480, PIXFORMAT_JPEG};
  return &fb;
}

void esp_camera_fb_return(camera_fb_t*) {}

bool HTTPClient::begin(String url) {
  std::string u = url.c_str();
  if (u.rfind("http://", 0) != 0) return false;
  u = u.substr(7);
  size_t slash = u.find('/');
  std::string authority = u.substr(0, slash);
  path_ = slash == std::string::npos ? "/" : u.substr(slash);
  size_t colon = authority.find(':');
  host_ = authority.substr(0, colon);
  port_ = colon == std::string::npos ? 80 : (uint16_t)std::atoi(authority.c_str() + colon + 1);
  headers_.clear();
  return true;
}

void HTTPClient::addHeader(const String& name, const String& value) {
  headers_ += std::string(name.c_str()) + ": " + value.c_str() + "\r\n";
}

int HTTPClient::sendRequest(const char* type, uint8_t* payload, size_t size) {
  addrinfo hints = {};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(host_.c_str(), std::to_string(port_).c_str(), &hints, &found) != 0) return -1;
  int s = socket(found->ai_family, found->ai_socktype, found->ai_protocol);
  bool connected = s >= 0 && connect(s, found->ai_addr, found->ai_addrlen) == 0;
  freeaddrinfo(found);
  if (!connected) {
    if (s >= 0) close(s);
    return -1;
  }
  std::string head = std::string(type) + " " + path_ + " HTTP/1.1\r\nHost: " + host_ + "\r\nConnection: close\r\n" + headers_ +
                     "Content-Length: " + std::to_string(size) + "\r\n\r\n";
  std::string request = head + std::string(reinterpret_cast<const char*>(payload), size);
  for (size_t sent = 0; sent < request.size();) {
    ssize_t n = send(s, request.data() + sent, request.size() - sent, 0);
    if (n <= 0) break;
    sent += (size_t)n;
  }
  char reply[64] = {};
  ssize_t got = recv(s, reply, sizeof reply - 1, 0);
  close(s);
  int status = 0;
  return got > 12 && std::sscanf(reply, "HTTP/1.1 %d", &status) == 1 ? status : -1;
}

void HTTPClient::end(void) {}
