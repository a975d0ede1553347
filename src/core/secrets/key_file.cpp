// The key file is the one thing whose loss cannot be repaired, so creation
// publishes a complete, fsynced file with link(), which fails with EEXIST
// instead of replacing: two backends creating the key at once agree on one, and
// nobody ever reads a half-written file. Opening O_CREAT|O_EXCL on the final
// path would leave a window in which the loser reads an empty file, and a crash
// in that window would leave an empty key file behind. Reading checks the
// opened descriptor (fstat), not the path, so the file checked is the file read.

#include "secrets/key_file.hpp"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <optional>
#include <system_error>
#include <utility>

#include "errors.hpp"

namespace connector {
namespace {

constexpr std::size_t kHexLength = 2 * SecretKey::size;
constexpr char kHexDigits[] = "0123456789abcdef";

const char* const kRestoreHint =
    "restore the key file from your backup; without it the stored access tokens cannot be "
    "decrypted and must be set again with fb_alter_destination";

class FileDescriptor {
 public:
  explicit FileDescriptor(int descriptor) noexcept : descriptor_(descriptor) {}
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor() { close(); }

  int get() const noexcept { return descriptor_; }
  bool valid() const noexcept { return descriptor_ >= 0; }

  // Returns close()'s result: on some file systems a failed write shows only here.
  int close() noexcept {
    if (descriptor_ < 0) return 0;
    int result = ::close(descriptor_);
    descriptor_ = -1;
    return result;
  }

 private:
  int descriptor_;
};

// Removes the temporary file on every path; after a successful link() it is
// just a second name for the key file.
class TemporaryPath {
 public:
  explicit TemporaryPath(std::string path) : path_(std::move(path)) {}
  TemporaryPath(const TemporaryPath&) = delete;
  TemporaryPath& operator=(const TemporaryPath&) = delete;
  ~TemporaryPath() {
    if (created_) ::unlink(path_.c_str());
  }
  const std::string& path() const noexcept { return path_; }
  void mark_created() noexcept { created_ = true; }

 private:
  std::string path_;
  bool created_ = false;
};

std::string quoted(const std::string& path) { return "key file \"" + path + "\""; }

std::string describe_errno(int error) { return std::system_category().message(error); }

std::string creation_hint(const std::string& path) {
  return "make its directory writable by the operating system user that runs PostgreSQL, or "
         "create the key yourself: (umask 077; openssl rand -hex 32 > " +
         path + ")";
}

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string directory_of(const std::string& path) {
  std::size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

[[noreturn]] void throw_open_error(const std::string& path, int error) {
  if (error == ENOENT) throw MissingKeyFileError(quoted(path) + " does not exist", kRestoreHint);
  if (error == EACCES)
    throw KeyFileError(quoted(path) + " cannot be read: " + describe_errno(error),
                       "make it readable by the operating system user that runs PostgreSQL "
                       "(chown that user " +
                           path + "; chmod 600 " + path + ")");
  throw KeyFileError(quoted(path) + " cannot be opened: " + describe_errno(error),
                     "check the key file path and the directories leading to it");
}

SecretKey read_key(const FileDescriptor& file, const std::string& path) {
  struct stat status;
  if (::fstat(file.get(), &status) != 0)
    throw KeyFileError(quoted(path) + " cannot be examined: " + describe_errno(errno),
                       "check the key file path");
  if (!S_ISREG(status.st_mode))
    throw KeyFileError(
        quoted(path) + " is not a regular file",
        "point the key file setting at the key file itself; " + std::string(kRestoreHint));
  if ((status.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(status.st_mode & 07777));
    throw KeyFileError(
        quoted(path) + " is accessible by group or others (mode " + mode + ")",
        "chmod 600 " + path + "; if others may have read it, treat the stored secrets as leaked");
  }

  // One byte more than the longest valid file tells "too long" from "valid".
  char text[kHexLength + 2];
  std::size_t length = 0;
  while (length < sizeof text) {
    ssize_t got = ::read(file.get(), text + length, sizeof text - length);
    if (got == 0) break;
    if (got < 0) {
      if (errno == EINTR) continue;
      int error = errno;
      OPENSSL_cleanse(text, sizeof text);
      throw KeyFileError(quoted(path) + " cannot be read: " + describe_errno(error), kRestoreHint);
    }
    length += static_cast<std::size_t>(got);
  }

  bool shape_ok = length == kHexLength || (length == kHexLength + 1 && text[kHexLength] == '\n');
  unsigned char bytes[SecretKey::size];
  bool digits_ok = shape_ok;
  for (std::size_t i = 0; digits_ok && i < SecretKey::size; ++i) {
    int high = hex_value(text[2 * i]);
    int low = hex_value(text[2 * i + 1]);
    if (high < 0 || low < 0) digits_ok = false;
    bytes[i] = static_cast<unsigned char>((high << 4) | (low & 0x0F));
  }
  OPENSSL_cleanse(text, sizeof text);
  if (!digits_ok) {
    OPENSSL_cleanse(bytes, sizeof bytes);
    std::string problem =
        !shape_ok
            ? (length >= sizeof text ? "is too long" : "has " + std::to_string(length) + " bytes")
            : "contains a character that is not a hex digit";
    throw KeyFileError(
        quoted(path) + " is malformed: it " + problem +
            "; a key file holds exactly 64 hex characters, optionally followed by one newline",
        kRestoreHint);
  }
  SecretKey key(bytes);
  OPENSSL_cleanse(bytes, sizeof bytes);
  return key;
}

void write_all(const FileDescriptor& file, const char* data, std::size_t size,
               const std::string& path) {
  while (size > 0) {
    ssize_t written = ::write(file.get(), data, size);
    if (written < 0) {
      if (errno == EINTR) continue;
      throw KeyFileError("cannot write new " + quoted(path) + ": " + describe_errno(errno),
                         creation_hint(path));
    }
    data += written;
    size -= static_cast<std::size_t>(written);
  }
}

// Without this, a crash soon after creation can lose the directory entry while
// secrets sealed with the key are already committed in the database.
void sync_directory(const std::string& path) {
  FileDescriptor directory(::open(directory_of(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  int error = 0;
  if (!directory.valid())
    error = errno;
  else if (::fsync(directory.get()) != 0 && errno != EINVAL)  // EINVAL: no directory fsync here
    error = errno;
  if (error != 0)
    throw KeyFileError("cannot make new " + quoted(path) +
                           " durable: syncing its directory failed: " + describe_errno(error),
                       "check the file system holding the key file; the key file exists and the "
                       "next attempt will use it");
}

// Returns the new key, or nothing when another process published its key first.
std::optional<SecretKey> create_key(const std::string& path) {
  unsigned char suffix_bytes[8];
  if (RAND_bytes(suffix_bytes, sizeof suffix_bytes) != 1)
    throw KeyFileError("cannot create " + quoted(path) + ": OpenSSL's random generator failed",
                       "check that the operating system's entropy source is available");
  std::string suffix;
  for (unsigned char byte : suffix_bytes) {
    suffix += kHexDigits[byte >> 4];
    suffix += kHexDigits[byte & 0x0F];
  }
  TemporaryPath temporary(path + ".new-" + suffix);

  FileDescriptor file(
      ::open(temporary.path().c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!file.valid()) {
    int error = errno;
    if (error == ENOENT)
      throw KeyFileError(
          "cannot create " + quoted(path) + ": its directory does not exist",
          "create the directory " + directory_of(path) + " or correct the key file path");
    throw KeyFileError("cannot create " + quoted(path) + ": " + describe_errno(error),
                       creation_hint(path));
  }
  temporary.mark_created();
  // The umask may have removed bits; exactly 0600 is what reading demands.
  if (::fchmod(file.get(), 0600) != 0)
    throw KeyFileError("cannot set the mode of new " + quoted(path) + ": " + describe_errno(errno),
                       creation_hint(path));

  SecretKey key = SecretKey::random();
  char text[kHexLength + 1];
  for (std::size_t i = 0; i < SecretKey::size; ++i) {
    text[2 * i] = kHexDigits[key.data()[i] >> 4];
    text[2 * i + 1] = kHexDigits[key.data()[i] & 0x0F];
  }
  text[kHexLength] = '\n';
  try {
    write_all(file, text, sizeof text, path);
  } catch (...) {
    OPENSSL_cleanse(text, sizeof text);
    throw;
  }
  OPENSSL_cleanse(text, sizeof text);
  if (::fsync(file.get()) != 0 || file.close() != 0)
    throw KeyFileError("cannot write new " + quoted(path) + ": " + describe_errno(errno),
                       creation_hint(path));

  if (::link(temporary.path().c_str(), path.c_str()) != 0) {
    int error = errno;
    if (error == EEXIST) return std::nullopt;
    throw KeyFileError("cannot create " + quoted(path) + ": " + describe_errno(error),
                       creation_hint(path));
  }
  ::unlink(temporary.path().c_str());
  sync_directory(path);
  return key;
}

FileDescriptor open_for_reading(const std::string& path) {
  // O_NONBLOCK: a FIFO at the path must be refused, not wait for a writer.
  return FileDescriptor(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
}

}  // namespace

SecretKey::SecretKey(const unsigned char (&bytes)[size]) noexcept {
  for (std::size_t i = 0; i < size; ++i) bytes_[i] = bytes[i];
}

SecretKey SecretKey::random() {
  SecretKey key;
  if (RAND_bytes(key.bytes_, static_cast<int>(size)) != 1)
    throw KeyFileError("cannot generate a key: OpenSSL's random generator failed",
                       "check that the operating system's entropy source is available");
  return key;
}

SecretKey::SecretKey(SecretKey&& other) noexcept {
  for (std::size_t i = 0; i < size; ++i) bytes_[i] = other.bytes_[i];
  OPENSSL_cleanse(other.bytes_, size);
}

SecretKey& SecretKey::operator=(SecretKey&& other) noexcept {
  if (this != &other) {
    for (std::size_t i = 0; i < size; ++i) bytes_[i] = other.bytes_[i];
    OPENSSL_cleanse(other.bytes_, size);
  }
  return *this;
}

SecretKey::~SecretKey() { OPENSSL_cleanse(bytes_, size); }

SecretKey load_or_create_key(const std::string& path, bool create_if_missing) {
  if (path.empty())
    throw KeyFileError("the key file path is empty", "set the key file path to an absolute path");
  {
    FileDescriptor file = open_for_reading(path);
    if (file.valid()) return read_key(file, path);
    int error = errno;
    if (error != ENOENT || !create_if_missing) throw_open_error(path, error);
  }
  if (std::optional<SecretKey> created = create_key(path)) return std::move(*created);
  // Another process published its key between our open() and link(): use that one.
  FileDescriptor file = open_for_reading(path);
  if (!file.valid()) throw_open_error(path, errno);
  return read_key(file, path);
}

}  // namespace connector
