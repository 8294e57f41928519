#include "net/http_client.hpp"

#include <algorithm>
#include <cerrno>
#include <memory>
#include <mutex>

#include <curl/curl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fs.hpp"
#include "core/strings.hpp"
#include "net/http_error.hpp"
#include "net/url.hpp"

namespace swarm::net {

namespace {

// What is kept of an error answer's body when the body itself goes to a file or a sink.
constexpr size_t k_error_body_limit = 64u << 10;

void global_init()
{
  // curl_global_init is not thread-safe before 7.84 and must run once before any handle.
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

bool iequals(std::string_view a, std::string_view b)
{
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

bool has_header(const HeaderList& headers, std::string_view name)
{
  return std::any_of(headers.begin(), headers.end(), [&](const auto& header) { return iequals(header.first, name); });
}

struct SlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};

} // namespace

std::string Response::header(std::string_view name) const
{
  for (const auto& [key, value] : headers) {
    if (iequals(key, name)) {
      return value;
    }
  }
  return {};
}

Result<nlohmann::json> Response::json() const
{
  if (strings::trim(body).empty()) {
    return nlohmann::json();
  }
  try {
    return nlohmann::json::parse(body);
  } catch (const nlohmann::json::exception& exception) {
    return fail(ErrorKind::invalid, "answer is not valid JSON: {}", exception.what());
  }
}

Error error_from_response(const Response& response, std::string_view method, std::string_view url)
{
  ErrorKind kind = kind_for_status(response.status);
  std::string message;
  try {
    const auto body = nlohmann::json::parse(response.body);
    if (body.is_object() && body.contains("error") && body["error"].is_string()) {
      message = body["error"].get<std::string>();
      if (body.contains("kind") && body["kind"].is_string()) {
        // The status cannot tell io from internal (both 500); the kind can.
        if (auto named = kind_from_name(body["kind"].get<std::string>())) {
          kind = *named;
        }
      }
    }
  } catch (const nlohmann::json::exception&) {
    // Not JSON: a proxy's or a foreign server's page; described below.
  }
  if (message.empty()) {
    std::string excerpt(strings::trim(std::string_view(response.body).substr(0, 200)));
    std::replace(excerpt.begin(), excerpt.end(), '\n', ' ');
    message = excerpt.empty()
                ? fmt::format("HTTP {} from {} {}", response.status, method, url::redact(url))
                : fmt::format("HTTP {} from {} {}: {}", response.status, method, url::redact(url), excerpt);
  }
  return Error{kind, std::move(message)};
}

// One request's settings and the state its curl callbacks share.
struct HttpClient::Transfer {
  std::string method;
  std::string url;
  HeaderList headers;
  CallOptions call;
  // Upload: an in-memory body, or a file.
  std::string_view body;
  bool has_body = false;
  int upload_fd = -1;
  uint64_t upload_size = 0;
  // Download: into Response::body, or 2xx bodies to `sink`.
  const std::function<Result<>(std::string_view)>* sink = nullptr;
  const ProgressCallback* progress = nullptr;
  // Whole-call timeout, or (false) a stall timeout for long transfers.
  bool total_timeout = true;

  CURL* handle = nullptr;
  Response response;
  std::optional<Error> callback_error;
  bool upload_read_error = false;
};

namespace {

size_t on_header(char* data, size_t size, size_t count, void* user)
{
  auto& response = *static_cast<Response*>(user);
  const size_t bytes = size * count;
  std::string_view line(data, bytes);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) {
    line.remove_suffix(1);
  }
  if (line.starts_with("HTTP/")) {
    response.headers.clear(); // a new response begins (after "100 Continue" for instance)
    return bytes;
  }
  const size_t colon = line.find(':');
  if (colon != std::string_view::npos) {
    response.headers.emplace_back(std::string(strings::trim(line.substr(0, colon))),
                                  std::string(strings::trim(line.substr(colon + 1))));
  }
  return bytes;
}

// One curl handle per thread, reused from call to call: curl_easy_reset clears the options but
// keeps the handle's connection cache, so a thread's consecutive calls to a server reuse one
// kept-alive connection instead of opening one each (a fleet of drones would otherwise fill the
// server's accept queue). A call made while the thread's handle is busy (from a callback) gets
// a handle of its own.
struct ThreadHandle {
  CURL* handle = nullptr;
  bool busy = false;
  ThreadHandle() = default;
  ThreadHandle(const ThreadHandle&) = delete;
  ThreadHandle& operator=(const ThreadHandle&) = delete;
  ~ThreadHandle()
  {
    if (handle != nullptr) {
      curl_easy_cleanup(handle);
    }
  }
};

thread_local ThreadHandle t_curl;

class HandleLease {
public:
  HandleLease()
  {
    if (!t_curl.busy) {
      if (t_curl.handle == nullptr) {
        t_curl.handle = curl_easy_init();
      }
      if (t_curl.handle != nullptr) {
        t_curl.busy = true;
        m_shared = true;
        m_handle = t_curl.handle;
        return;
      }
    }
    m_handle = curl_easy_init();
  }
  HandleLease(const HandleLease&) = delete;
  HandleLease& operator=(const HandleLease&) = delete;
  ~HandleLease()
  {
    if (m_handle == nullptr) {
      return;
    }
    if (m_shared) {
      curl_easy_reset(m_handle); // drops every pointer into this call's buffers
      t_curl.busy = false;
    } else {
      curl_easy_cleanup(m_handle);
    }
  }
  CURL* get() const { return m_handle; }

private:
  CURL* m_handle = nullptr;
  bool m_shared = false;
};

} // namespace

Result<Response> HttpClient::perform(Transfer& transfer) const
{
  global_init();
  HandleLease handle;
  if (handle.get() == nullptr) {
    return fail(ErrorKind::internal, "cannot create a curl handle");
  }
  CURL* curl = handle.get();
  transfer.handle = curl;
  char error_buffer[CURL_ERROR_SIZE] = {};

  curl_easy_setopt(curl, CURLOPT_URL, transfer.url.c_str());
  // No signals: libcurl's SIGALRM-based DNS timeouts are unsafe with threads.
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_buffer);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(m_options.connect_timeout.count()));
  const auto timeout = transfer.call.timeout.value_or(m_options.timeout);
  if (transfer.total_timeout || transfer.call.timeout) {
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  } else {
    // A 2 GiB upload takes as long as it takes; what must not happen is a silent stall.
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME,
                     static_cast<long>(std::max<int64_t>(1, std::chrono::ceil<std::chrono::seconds>(timeout).count())));
  }
  if (!m_options.ca_file.empty()) {
    curl_easy_setopt(curl, CURLOPT_CAINFO, m_options.ca_file.c_str());
  }

  curl_slist* raw_list = nullptr;
  const auto add_header = [&](const std::string& line) {
    if (curl_slist* appended = curl_slist_append(raw_list, line.c_str()); appended != nullptr) {
      raw_list = appended;
    }
  };
  for (const auto& [name, value] : transfer.headers) {
    add_header(fmt::format("{}: {}", name, value));
  }
  // The token goes only to our own server, never to a URL elsewhere that a caller passed.
  std::string_view base = m_options.base_url;
  while (base.ends_with('/')) {
    base.remove_suffix(1);
  }
  const bool own_server =
    !base.empty() && transfer.url.starts_with(base) &&
    (transfer.url.size() == base.size() || transfer.url[base.size()] == '/' || transfer.url[base.size()] == '?');
  if (!m_options.token.empty() && own_server && !has_header(transfer.headers, "Authorization")) {
    add_header("Authorization: Bearer " + m_options.token);
  }
  if (transfer.has_body && !has_header(transfer.headers, "Content-Type")) {
    add_header("Content-Type: application/octet-stream");
  }
  std::unique_ptr<curl_slist, SlistDeleter> header_list(raw_list);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, header_list.get());

  if (transfer.upload_fd >= 0) {
    curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(transfer.upload_size));
    curl_easy_setopt(curl, CURLOPT_READDATA, &transfer);
    // (Callbacks are named first: curl_easy_setopt is a type-checking macro.)
    const auto on_read = +[](char* buffer, size_t size, size_t count, void* user) -> size_t {
      auto& self = *static_cast<Transfer*>(user);
      while (true) {
        const ssize_t got = ::read(self.upload_fd, buffer, size * count);
        if (got >= 0) {
          return static_cast<size_t>(got);
        }
        if (errno != EINTR) {
          self.upload_read_error = true;
          return CURL_READFUNC_ABORT;
        }
      }
    };
    curl_easy_setopt(curl, CURLOPT_READFUNCTION, on_read);
    if (transfer.method != "PUT") {
      curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, transfer.method.c_str());
    }
  } else if (transfer.method == "GET") {
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  } else if (transfer.method == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else if (transfer.has_body || transfer.method == "POST" || transfer.method == "PUT") {
    // POSTFIELDS does not copy: `body` outlives perform().
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(transfer.body.size()));
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, transfer.body.data());
    if (transfer.method != "POST") {
      curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, transfer.method.c_str());
    }
  } else {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, transfer.method.c_str());
  }

  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &transfer.response);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &transfer);
  const auto on_write = +[](char* data, size_t size, size_t count, void* user) -> size_t {
    auto& self = *static_cast<Transfer*>(user);
    const size_t bytes = size * count;
    long status = 0;
    curl_easy_getinfo(self.handle, CURLINFO_RESPONSE_CODE, &status);
    const bool success = status >= 200 && status < 300;
    if (self.sink != nullptr && success) {
      if (auto written = (*self.sink)(std::string_view(data, bytes)); !written) {
        self.callback_error = written.error();
        return 0; // aborts the transfer
      }
      return bytes;
    }
    const uint64_t limit = self.sink != nullptr ? k_error_body_limit : self.call.max_response_bytes;
    if (self.response.body.size() + bytes > limit) {
      if (self.sink != nullptr) {
        return bytes; // an error page's tail: not needed for the message
      }
      self.callback_error = Error{ErrorKind::too_large, fmt::format("answer of {} {} is larger than {} bytes",
                                                                    self.method, url::redact(self.url), limit)};
      return 0;
    }
    self.response.body.append(data, bytes);
    return bytes;
  };
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_write);
  if (transfer.progress != nullptr && *transfer.progress) {
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &transfer);
    const auto on_progress = +[](void* user, curl_off_t download_total, curl_off_t download_now,
                                 curl_off_t upload_total, curl_off_t upload_now) -> int {
      auto& self = *static_cast<Transfer*>(user);
      if (self.upload_fd >= 0) {
        (*self.progress)(static_cast<uint64_t>(upload_now), static_cast<uint64_t>(upload_total));
      } else {
        (*self.progress)(static_cast<uint64_t>(download_now), static_cast<uint64_t>(download_total));
      }
      return 0;
    };
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
  }

  const CURLcode code = curl_easy_perform(curl);
  if (transfer.callback_error) {
    return fail(*transfer.callback_error);
  }
  if (transfer.upload_read_error) {
    return fail(ErrorKind::io, "cannot read the file to upload to {}", url::redact(transfer.url));
  }
  if (code != CURLE_OK) {
    const std::string detail = error_buffer[0] != '\0' ? std::string(error_buffer) : curl_easy_strerror(code);
    return fail(ErrorKind::unavailable, "{} {}: {}", transfer.method, url::redact(transfer.url), detail);
  }
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  transfer.response.status = static_cast<int>(status);
  if (!transfer.response.ok() && transfer.call.on_http_error == OnHttpError::fail) {
    return fail(error_from_response(transfer.response, transfer.method, transfer.url));
  }
  return std::move(transfer.response);
}

HttpClient::HttpClient(ClientOptions options) : m_options(std::move(options))
{
  global_init();
}

std::string HttpClient::url_for(std::string_view path) const
{
  if (url::is_absolute(path)) {
    return std::string(path);
  }
  return url::join(m_options.base_url, path);
}

Result<Response> HttpClient::request(std::string_view method, std::string_view path, std::string_view body,
                                     const HeaderList& headers, const CallOptions& call) const
{
  Transfer transfer;
  transfer.method = std::string(method);
  transfer.url = url_for(path);
  transfer.headers = headers;
  transfer.call = call;
  transfer.body = body;
  transfer.has_body = !body.empty();
  return perform(transfer);
}

Result<nlohmann::json> HttpClient::get_json(std::string_view path, const CallOptions& call) const
{
  auto response = request("GET", path, {}, {{"Accept", "application/json"}}, call);
  if (!response) {
    return fail(response.error());
  }
  return response->json();
}

Result<nlohmann::json> HttpClient::post_json(std::string_view path, const nlohmann::json& body,
                                             const CallOptions& call) const
{
  const std::string text = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  auto response =
    request("POST", path, text, {{"Content-Type", "application/json"}, {"Accept", "application/json"}}, call);
  if (!response) {
    return fail(response.error());
  }
  return response->json();
}

Result<Response> HttpClient::put_file(std::string_view path, const std::filesystem::path& file,
                                      const HeaderList& headers, const ProgressCallback& progress,
                                      const CallOptions& call) const
{
  auto fd = fs::open_read(file);
  if (!fd) {
    return fail(fd.error());
  }
  struct stat info {};
  if (::fstat(fd->get(), &info) != 0) {
    return fail(ErrorKind::io, "cannot stat {}: {}", file.string(), fs::errno_text(errno));
  }
  Transfer transfer;
  transfer.method = "PUT";
  transfer.url = url_for(path);
  transfer.headers = headers;
  transfer.call = call;
  transfer.has_body = true;
  transfer.upload_fd = fd->get();
  transfer.upload_size = static_cast<uint64_t>(info.st_size);
  transfer.progress = &progress;
  transfer.total_timeout = false;
  return perform(transfer);
}

Result<Response> HttpClient::get_to_sink(std::string_view url, const std::function<Result<>(std::string_view)>& sink,
                                         const CallOptions& call, const HeaderList& headers) const
{
  Transfer transfer;
  transfer.method = "GET";
  transfer.url = url_for(url);
  transfer.headers = headers;
  transfer.call = call;
  transfer.sink = &sink;
  transfer.total_timeout = false;
  return perform(transfer);
}

Result<Response> HttpClient::get_to_file(std::string_view url, const std::filesystem::path& destination,
                                         const ProgressCallback& progress, const CallOptions& call) const
{
  auto writer = fs::AtomicFileWriter::create(destination);
  if (!writer) {
    return fail(writer.error());
  }
  const std::function<Result<>(std::string_view)> sink = [&](std::string_view chunk) { return writer->write(chunk); };
  Transfer transfer;
  transfer.method = "GET";
  transfer.url = url_for(url);
  transfer.call = call;
  transfer.sink = &sink;
  transfer.progress = &progress;
  transfer.total_timeout = false;
  auto response = perform(transfer);
  if (!response) {
    return response; // the writer's destructor removes the temporary
  }
  if (response->ok()) {
    if (auto committed = writer->commit(); !committed) {
      return fail(committed.error());
    }
  }
  return response;
}

} // namespace swarm::net
