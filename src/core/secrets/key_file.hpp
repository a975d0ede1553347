// The key that encrypts secrets at rest (access tokens, app secrets) lives in a
// file outside the database, so that a dump or a stolen backup of the database
// alone does not reveal them. Losing the file loses every stored secret, which
// is why it is created once, atomically and durably, and never rewritten.
#pragma once

#include <cstddef>
#include <string>

namespace connector {

// 32 bytes for AES-256. Wiped with OPENSSL_cleanse when destroyed or moved from;
// not copyable, so the key has one owner and no stray copies.
class SecretKey {
 public:
  static constexpr std::size_t size = 32;

  explicit SecretKey(const unsigned char (&bytes)[size]) noexcept;
  // A fresh key from OpenSSL's CSPRNG; throws KeyFileError when it fails.
  static SecretKey random();

  SecretKey(const SecretKey&) = delete;
  SecretKey& operator=(const SecretKey&) = delete;
  SecretKey(SecretKey&& other) noexcept;
  SecretKey& operator=(SecretKey&& other) noexcept;
  ~SecretKey();

  const unsigned char* data() const noexcept { return bytes_; }

 private:
  SecretKey() noexcept = default;

  unsigned char bytes_[size] = {};
};

// Reads the key file: exactly 64 hex characters (either case), optionally
// followed by one newline. When the file does not exist and create_if_missing
// is true, creates it with a new random key and mode 0600; if another process
// creates it at the same moment, both end up with that process's key.
// Throws MissingKeyFileError (a KeyFileError) when the file does not exist and
// is not to be created, and KeyFileError for a file that is accessible by group
// or others, not a regular file, unreadable or malformed.
SecretKey load_or_create_key(const std::string& path, bool create_if_missing);

}  // namespace connector
