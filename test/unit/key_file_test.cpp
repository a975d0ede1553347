// The key file: created once with mode 0600 and never rewritten, agreed on by
// processes racing to create it, and refused with a useful message whenever it
// is unsafe or damaged, without ever echoing key material.

#include "secrets/key_file.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "errors.hpp"

namespace connector {
namespace {

static_assert(!std::is_copy_constructible_v<SecretKey>);
static_assert(!std::is_copy_assignable_v<SecretKey>);
static_assert(std::is_nothrow_move_constructible_v<SecretKey>);
static_assert(std::is_nothrow_move_assignable_v<SecretKey>);

const std::string kLowerHex = "00112233445566778899aabbccddeeff0123456789abcdef0f1e2d3c4b5a6978";

std::array<unsigned char, SecretKey::size> bytes_of(const SecretKey& key) {
  std::array<unsigned char, SecretKey::size> bytes;
  for (std::size_t i = 0; i < SecretKey::size; ++i) bytes[i] = key.data()[i];
  return bytes;
}

std::array<unsigned char, SecretKey::size> bytes_of_hex(const std::string& hex) {
  std::array<unsigned char, SecretKey::size> bytes;
  for (std::size_t i = 0; i < SecretKey::size; ++i)
    bytes[i] = static_cast<unsigned char>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
  return bytes;
}

std::string read_whole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void write_whole(const std::string& path, const std::string& text, mode_t mode = 0600) {
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
  }
  ASSERT_EQ(::chmod(path.c_str(), mode), 0);
}

mode_t mode_of(const std::string& path) {
  struct stat status;
  EXPECT_EQ(::stat(path.c_str(), &status), 0);
  return status.st_mode & 07777;
}

// The exception thrown, so tests can check its message and hint.
KeyFileError load_error(const std::string& path, bool create_if_missing) {
  try {
    load_or_create_key(path, create_if_missing);
  } catch (const KeyFileError& error) {
    return error;
  }
  ADD_FAILURE() << "no KeyFileError for " << path;
  return KeyFileError("");
}

class KeyFile : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/connector-key-test-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    directory_ = pattern;
    path_ = directory_ + "/secrets.key";
  }
  void TearDown() override { std::filesystem::remove_all(directory_); }

  std::vector<std::string> directory_entries() const {
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(directory_))
      names.push_back(entry.path().filename().string());
    return names;
  }

  std::string directory_;
  std::string path_;
};

TEST_F(KeyFile, CreatesMissingFileWithMode0600AndReadsTheSameKeyBack) {
  SecretKey created = load_or_create_key(path_, true);
  EXPECT_EQ(mode_of(path_), 0600u);

  std::string text = read_whole(path_);
  ASSERT_EQ(text.size(), 65u);
  EXPECT_EQ(text.back(), '\n');
  EXPECT_EQ(text.find_first_not_of("0123456789abcdef"), 64u);
  EXPECT_EQ(bytes_of_hex(text), bytes_of(created));

  SecretKey loaded = load_or_create_key(path_, false);
  EXPECT_EQ(bytes_of(loaded), bytes_of(created));
  EXPECT_EQ(directory_entries(), std::vector<std::string>{"secrets.key"});  // no temporary left
}

TEST_F(KeyFile, ModeIsExactly0600WhateverTheUmask) {
  for (mode_t mask : {mode_t{0}, mode_t{0022}, mode_t{0277}}) {
    std::string path = directory_ + "/umask-" + std::to_string(mask) + ".key";
    mode_t previous = ::umask(mask);
    load_or_create_key(path, true);
    ::umask(previous);
    EXPECT_EQ(mode_of(path), 0600u) << "umask " << std::oct << mask;
  }
}

TEST_F(KeyFile, NewKeysAreRandom) {
  SecretKey first = load_or_create_key(directory_ + "/first.key", true);
  SecretKey second = load_or_create_key(directory_ + "/second.key", true);
  EXPECT_NE(bytes_of(first), bytes_of(second));
  EXPECT_NE(bytes_of(first), (std::array<unsigned char, SecretKey::size>{}));
}

TEST_F(KeyFile, ExistingFileIsReadNeverRewritten) {
  write_whole(path_, kLowerHex + "\n");
  SecretKey key = load_or_create_key(path_, true);
  EXPECT_EQ(bytes_of(key), bytes_of_hex(kLowerHex));
  EXPECT_EQ(read_whole(path_), kLowerHex + "\n");
}

TEST_F(KeyFile, AcceptsEitherCaseWithOrWithoutNewline) {
  std::string upper = kLowerHex;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (const std::string& text : {kLowerHex, kLowerHex + "\n", upper, upper + "\n"}) {
    write_whole(path_, text);
    EXPECT_EQ(bytes_of(load_or_create_key(path_, false)), bytes_of_hex(kLowerHex)) << text;
  }
}

TEST_F(KeyFile, MissingFileWithoutCreationIsRefusedAndNotCreated) {
  KeyFileError error = load_error(path_, false);
  EXPECT_NE(std::string(error.what()).find(path_), std::string::npos) << error.what();
  EXPECT_NE(std::string(error.what()).find("does not exist"), std::string::npos) << error.what();
  EXPECT_NE(error.hint().find("restore the key file from your backup"), std::string::npos);
  EXPECT_NE(error.hint().find("fb_alter_destination"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(path_));
}

// Callers word this one error differently (secrets stored or not, which key
// they need), so it has its own type; every other key file error does not.
TEST_F(KeyFile, OnlyAMissingFileThrowsMissingKeyFileError) {
  EXPECT_THROW(load_or_create_key(path_, false), MissingKeyFileError);
  EXPECT_FALSE(std::filesystem::exists(path_));
  EXPECT_THROW(load_or_create_key(directory_ + "/absent/secrets.key", false), MissingKeyFileError);

  for (const auto& [text, mode] : {std::pair<std::string, mode_t>{"not a key\n", 0600},
                                   std::pair<std::string, mode_t>{kLowerHex + "\n", 0644}}) {
    write_whole(path_, text, mode);
    try {
      load_or_create_key(path_, false);
      ADD_FAILURE() << "loaded a bad key file";
    } catch (const MissingKeyFileError& error) {
      ADD_FAILURE() << "an existing file reported missing: " << error.what();
    } catch (const KeyFileError&) {
      // the expected outcome
    }
  }
  try {
    load_or_create_key(directory_ + "/absent/secrets.key", true);
    ADD_FAILURE() << "created a key in a missing directory";
  } catch (const MissingKeyFileError& error) {
    ADD_FAILURE() << "a failed creation reported as a missing file: " << error.what();
  } catch (const KeyFileError&) {
    // the expected outcome
  }
}

TEST_F(KeyFile, MissingDirectoryIsRefusedWhenCreating) {
  std::string path = directory_ + "/absent/secrets.key";
  KeyFileError error = load_error(path, true);
  EXPECT_NE(std::string(error.what()).find(path), std::string::npos) << error.what();
  EXPECT_NE(std::string(error.what()).find("directory does not exist"), std::string::npos);
}

TEST_F(KeyFile, GroupOrWorldAccessibleFileIsRefusedWithChmodHint) {
  for (mode_t mode : {mode_t{0644}, mode_t{0640}, mode_t{0604}, mode_t{0660}, mode_t{0601},
                      mode_t{0610}, mode_t{0666}}) {
    write_whole(path_, kLowerHex + "\n", mode);
    KeyFileError error = load_error(path_, true);
    std::string message = error.what();
    EXPECT_NE(message.find(path_), std::string::npos) << message;
    EXPECT_NE(message.find("group or others"), std::string::npos) << message;
    EXPECT_EQ(error.hint().rfind("chmod 600 " + path_, 0), 0u) << error.hint();
    EXPECT_EQ(message.find(kLowerHex.substr(0, 8)), std::string::npos) << message;
    EXPECT_EQ(mode_of(path_), mode) << "a refused file is left alone";
  }
  KeyFileError error = load_error(path_, false);
  EXPECT_NE(std::string(error.what()).find("0666"), std::string::npos) << error.what();
}

TEST_F(KeyFile, OwnerOnlyModesAreAccepted) {
  for (mode_t mode : {mode_t{0400}, mode_t{0600}, mode_t{0700}}) {
    write_whole(path_, kLowerHex, mode);
    EXPECT_EQ(bytes_of(load_or_create_key(path_, false)), bytes_of_hex(kLowerHex));
  }
}

TEST_F(KeyFile, MalformedFilesAreRefusedWithoutEchoingTheirContent) {
  const std::vector<std::string> malformed = {
      "",
      "\n",
      kLowerHex.substr(0, 63),
      kLowerHex.substr(0, 63) + "\n",
      kLowerHex + "0",
      kLowerHex + kLowerHex,
      kLowerHex + "\n\n",
      kLowerHex + "\r\n",
      kLowerHex + " ",
      " " + kLowerHex,
      kLowerHex.substr(0, 63) + "g",
      "0x" + kLowerHex.substr(0, 62),
      kLowerHex.substr(0, 31) + "-" + kLowerHex.substr(32),
  };
  for (const std::string& text : malformed) {
    write_whole(path_, text);
    KeyFileError error = load_error(path_, true);
    std::string message = error.what();
    EXPECT_NE(message.find(path_), std::string::npos) << message;
    EXPECT_NE(message.find("malformed"), std::string::npos) << message;
    EXPECT_NE(error.hint().find("restore the key file from your backup"), std::string::npos);
    for (std::size_t start = 0; start + 8 <= kLowerHex.size(); start += 8)
      EXPECT_EQ(message.find(kLowerHex.substr(start, 8)), std::string::npos) << message;
    EXPECT_EQ(read_whole(path_), text) << "a refused file is never replaced";
  }
}

TEST_F(KeyFile, DirectoryAndFifoAreNotRegularFiles) {
  ASSERT_EQ(::mkdir(path_.c_str(), 0700), 0);
  EXPECT_NE(std::string(load_error(path_, true).what()).find("not a regular file"),
            std::string::npos);
  std::filesystem::remove(path_);

  // Must be refused at once, not wait for a writer to open the FIFO.
  ASSERT_EQ(::mkfifo(path_.c_str(), 0600), 0);
  KeyFileError error = load_error(path_, true);
  EXPECT_NE(std::string(error.what()).find("not a regular file"), std::string::npos)
      << error.what();
}

TEST_F(KeyFile, SymbolicLinkToAProperKeyFileIsFollowed) {
  // Secret mounts (Kubernetes, for one) publish files through symbolic links.
  std::string target = directory_ + "/target.key";
  write_whole(target, kLowerHex + "\n");
  ASSERT_EQ(::symlink(target.c_str(), path_.c_str()), 0);
  EXPECT_EQ(bytes_of(load_or_create_key(path_, false)), bytes_of_hex(kLowerHex));
  ASSERT_EQ(::chmod(target.c_str(), 0644), 0);
  EXPECT_NE(std::string(load_error(path_, false).what()).find("group or others"),
            std::string::npos);
}

TEST_F(KeyFile, UnreadableFileIsRefusedWithOwnershipHint) {
  write_whole(path_, kLowerHex + "\n", 0600);
  if (::geteuid() != 0) {
    ASSERT_EQ(::chmod(path_.c_str(), 0), 0);
    KeyFileError error = load_error(path_, false);
    EXPECT_NE(std::string(error.what()).find("cannot be read"), std::string::npos);
    EXPECT_NE(error.hint().find("chown"), std::string::npos);
    return;
  }
  // Root reads anything: become an unprivileged user in a child process.
  ASSERT_EQ(::chmod(directory_.c_str(), 0711), 0);
  int report[2];
  ASSERT_EQ(::pipe(report), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(report[0]);
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(2);
    std::string outcome = "no error";
    try {
      load_or_create_key(path_, true);
    } catch (const KeyFileError& error) {
      outcome = std::string(error.what()) + "\n" + error.hint();
    }
    ssize_t written = ::write(report[1], outcome.data(), outcome.size());
    ::_exit(written == static_cast<ssize_t>(outcome.size()) ? 0 : 3);
  }
  ::close(report[1]);
  std::string outcome;
  char buffer[512];
  for (ssize_t got; (got = ::read(report[0], buffer, sizeof buffer)) > 0;)
    outcome.append(buffer, static_cast<std::size_t>(got));
  ::close(report[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
  EXPECT_NE(outcome.find(path_ + "\" cannot be read"), std::string::npos) << outcome;
  EXPECT_NE(outcome.find("chown"), std::string::npos) << outcome;
  EXPECT_EQ(read_whole(path_), kLowerHex + "\n");
}

// Several processes start at once on an empty directory; every one must end up
// with the same key, the one in the file.
TEST_F(KeyFile, ConcurrentCreationByManyProcessesYieldsOneKey) {
  constexpr int kRounds = 20;
  constexpr int kProcesses = 4;
  for (int round = 0; round < kRounds; ++round) {
    std::string path = directory_ + "/race-" + std::to_string(round) + ".key";
    int start[2];
    ASSERT_EQ(::pipe(start), 0);
    std::vector<pid_t> children;
    std::vector<int> results;
    for (int process = 0; process < kProcesses; ++process) {
      int result[2];
      ASSERT_EQ(::pipe(result), 0);
      pid_t child = ::fork();
      ASSERT_GE(child, 0);
      if (child == 0) {
        ::close(start[1]);
        ::close(result[0]);
        char go;
        if (::read(start[0], &go, 1) != 0) ::_exit(2);  // released when the parent closes it
        try {
          SecretKey key = load_or_create_key(path, true);
          ssize_t written = ::write(result[1], key.data(), SecretKey::size);
          ::_exit(written == static_cast<ssize_t>(SecretKey::size) ? 0 : 3);
        } catch (...) {
          ::_exit(1);
        }
      }
      ::close(result[1]);
      children.push_back(child);
      results.push_back(result[0]);
    }
    ::close(start[0]);
    ::close(start[1]);

    std::vector<std::string> keys;
    for (int descriptor : results) {
      std::string key;
      char buffer[64];
      for (ssize_t got; (got = ::read(descriptor, buffer, sizeof buffer)) > 0;)
        key.append(buffer, static_cast<std::size_t>(got));
      ::close(descriptor);
      keys.push_back(key);
    }
    for (pid_t child : children) {
      int status = 0;
      ASSERT_EQ(::waitpid(child, &status, 0), child);
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
    }
    ASSERT_EQ(keys[0].size(), SecretKey::size);
    for (const std::string& key : keys) EXPECT_EQ(key, keys[0]) << "round " << round;
    std::array<unsigned char, SecretKey::size> from_file = bytes_of_hex(read_whole(path));
    EXPECT_EQ(std::string(from_file.begin(), from_file.end()), keys[0]);
    EXPECT_EQ(mode_of(path), 0600u);
  }
  EXPECT_EQ(directory_entries().size(), static_cast<std::size_t>(kRounds))
      << "temporary files left behind";
}

TEST(SecretKey, MoveTransfersTheBytesAndWipesTheSource) {
  unsigned char bytes[SecretKey::size];
  for (std::size_t i = 0; i < SecretKey::size; ++i) bytes[i] = static_cast<unsigned char>(i + 1);
  SecretKey original(bytes);
  SecretKey moved(std::move(original));
  for (std::size_t i = 0; i < SecretKey::size; ++i) {
    EXPECT_EQ(moved.data()[i], i + 1);
    EXPECT_EQ(original.data()[i], 0);  // NOLINT(bugprone-use-after-move): the point of the test
  }
  SecretKey assigned = SecretKey::random();
  assigned = std::move(moved);
  EXPECT_EQ(assigned.data()[SecretKey::size - 1], SecretKey::size);
  EXPECT_EQ(moved.data()[SecretKey::size - 1], 0);  // NOLINT(bugprone-use-after-move)
}

}  // namespace
}  // namespace connector
