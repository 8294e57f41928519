#include <doctest/doctest.h>

#include <fstream>

#include "core/fs.hpp"
#include "core/hash.hpp"

using namespace swarm::hash;

TEST_CASE("hash: known digests")
{
  CHECK(hex_digest(Algo::md5, "") == "d41d8cd98f00b204e9800998ecf8427e");
  CHECK(hex_digest(Algo::sha1, "abc") == "a9993e364706816aba3e25717850c26c9cd0d89d");
  CHECK(hex_digest(Algo::sha256, "abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  // The hashes of an empty gpkg-1 member in every real GPKG Manifest.
  CHECK(hex_digest(Algo::sha512, "") ==
        "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd4741"
        "7a81a538327af927da3e");
  CHECK(hex_digest(Algo::blake2b, "") ==
        "786a02f742015903c6c6fd852552d272912f4740e15847618a86e217f71f5419d25e1031afee585313896444934eb04b903a685b1448"
        "b755d56f701afe9be2ce");
  CHECK(hex_digest(Algo::xxh3_128, "") == "99aa06d3014798d86001c324468d497f");
  for (auto algo : {Algo::md5, Algo::sha1, Algo::sha256, Algo::sha512, Algo::blake2b, Algo::xxh3_128}) {
    CHECK(hex_digest(algo, "x").size() == hex_length(algo));
  }
}

TEST_CASE("hash: names")
{
  CHECK(algo_from_name("BLAKE2B") == Algo::blake2b);
  CHECK(algo_from_name("SHA512") == Algo::sha512);
  CHECK(algo_from_name("xxh3-128") == Algo::xxh3_128);
  CHECK(algo_from_name(algo_name(Algo::sha1)) == Algo::sha1);
  CHECK_FALSE(algo_from_name("whirlpool").has_value());
}

TEST_CASE("hash: streaming in chunks equals hashing at once, several algorithms together")
{
  std::string data;
  for (int i = 0; i < 100000; ++i) {
    data += static_cast<char>(i * 7 + i / 13);
  }
  const std::vector<Algo> algos{Algo::md5, Algo::sha1, Algo::sha256, Algo::sha512, Algo::blake2b, Algo::xxh3_128};
  MultiHasher hasher(algos);
  for (size_t pos = 0; pos < data.size(); pos += 777) {
    hasher.update(std::string_view(data).substr(pos, 777));
  }
  CHECK(hasher.bytes() == data.size());
  const auto streamed = hasher.finish();
  REQUIRE(streamed.size() == algos.size());
  for (auto algo : algos) {
    CHECK(streamed.at(algo) == hex_digest(algo, data));
  }
}

TEST_CASE("hash: hash_file reads in chunks and reports a missing file")
{
  swarm::fs::TempDir dir("hash-test");
  const auto path = dir / "data.bin";
  std::string data(3 * 1024 * 1024 + 17, 'q');
  {
    std::ofstream out(path, std::ios::binary);
    out << data;
  }
  auto digests = hash_file(path, {Algo::sha256, Algo::xxh3_128});
  REQUIRE(digests.has_value());
  CHECK(digests->at(Algo::sha256) == hex_digest(Algo::sha256, data));
  CHECK(digests->at(Algo::xxh3_128) == hex_digest(Algo::xxh3_128, data));
  auto missing = hash_file(dir / "nope", {Algo::sha256});
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().message.find("nope") != std::string::npos);
}
