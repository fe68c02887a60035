// SPDX-License-Identifier: MIT
//
// mt_containers: four threads each build a std::map<uint64_t,
// std::vector<uint32_t>>, for a heap footprint of SIZE in all.
//
//   mt_containers [SIZE [THREADS]]   SIZE like 512M (default); THREADS 1-64,
//                                    default 4
//
// An ordinary C++ program: it knows nothing of upager and allocates through
// operator new (malloc underneath), so it can be run under upager-run with a
// RAM cap far below SIZE.
//
// A vector's content is a function of its key and length: element j of key
// k is elem(k, j), so growing it by push_back and shrinking it by resize keep
// it checkable.  Each thread inserts its keys, then does random appends,
// erases, shrinks (with shrink_to_fit) and checked lookups, keeping only the
// length and liveness of each key in a side table.  Then it computes its
// checksum twice: from the map's contents, and from the side table alone by
// regenerating the elements.  The two must agree, as must the key and
// element counts.
//
// Output: one line per thread, in thread order, then a summary line; all
// byte-identical from run to run.  Exit status 0 when everything checked out,
// 1 on a mismatch or allocation failure, 2 on a bad argument.
#include <cerrno>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <new>
#include <thread>
#include <vector>

#include "example.h"

namespace {

constexpr uint64_t kSeed = 0x6d74636f6e74ULL; // "mtcont"
constexpr uint64_t kGold = 0x9e3779b97f4a7c15ULL;

uint32_t elem(uint64_t key, uint64_t j)
{
	return static_cast<uint32_t>(mix(key + j * kGold));
}

// Order matters within a vector, not across keys: the checksum is a sum.
struct Hasher {
	uint64_t h;
	explicit Hasher(uint64_t key) : h(mix(key)) {}
	void add(uint32_t e) { h = (h ^ e) * 0x100000001b3ULL; }
	uint64_t done(uint64_t len) const { return mix(h + len); }
};

struct Result {
	uint64_t keys = 0, elements = 0, from_map = 0, from_model = 0, errors = 0;
	bool oom = false;
};

void worker(unsigned t, uint64_t bytes, Result *res)
{
	try {
		const uint64_t seed = mix(kSeed + t);
		// Per key: a map node (~80 bytes with malloc's header), a vector
		// of ~256 elements at ~1.33x capacity, 5 bytes of side table.
		const uint64_t n = bytes / 1450 > 16 ? bytes / 1450 : 16;
		std::map<uint64_t, std::vector<uint32_t>> map;
		std::vector<uint32_t> len(n);
		std::vector<uint8_t> live(n);
		auto key_of = [seed](uint64_t i) { return mix(seed ^ i); }; // a bijection: no collisions

		for (uint64_t i = 0; i < n; i++) {
			uint64_t key = key_of(i);
			uint32_t l = 1 + static_cast<uint32_t>(mix(key) % 511);
			std::vector<uint32_t> &v = map[key];
			for (uint32_t j = 0; j < l; j++)
				v.push_back(elem(key, j));
			len[i] = l;
			live[i] = 1;
		}

		uint64_t s = seed;
		for (uint64_t op = 0; op < 2 * n; op++) {
			s = mix(s + kGold);
			uint64_t i = s % n, key = key_of(i);
			unsigned kind = static_cast<unsigned>((s >> 32) % 100);
			auto it = map.find(key);
			if ((it != map.end()) != (live[i] != 0)) {
				res->errors++;
				continue;
			}
			if (kind < 40) {            // append, or create anew
				uint32_t add = 1 + static_cast<uint32_t>((s >> 48) % 64);
				if (!live[i]) {
					it = map.emplace(key, std::vector<uint32_t>()).first;
					len[i] = 0;
					live[i] = 1;
				}
				for (uint32_t j = 0; j < add; j++)
					it->second.push_back(elem(key, len[i] + j));
				len[i] += add;
			} else if (kind < 60) {     // erase
				if (live[i]) {
					map.erase(it);
					live[i] = 0;
				}
			} else if (kind < 75) {     // shrink to half
				if (live[i]) {
					len[i] /= 2;
					it->second.resize(len[i]);
					it->second.shrink_to_fit();
				}
			} else if (live[i]) {       // checked lookup
				const std::vector<uint32_t> &v = it->second;
				bool ok = v.size() == len[i];
				for (uint64_t j = 0; ok && j < v.size(); j++)
					ok = v[j] == elem(key, j);
				res->errors += !ok;
			}
		}

		for (const auto &kv : map) {
			Hasher h(kv.first);
			for (uint32_t e : kv.second)
				h.add(e);
			res->from_map += h.done(kv.second.size());
			res->keys++;
			res->elements += kv.second.size();
		}
		uint64_t keys = 0, elements = 0;
		for (uint64_t i = 0; i < n; i++) {
			if (!live[i])
				continue;
			uint64_t key = key_of(i);
			Hasher h(key);
			for (uint64_t j = 0; j < len[i]; j++)
				h.add(elem(key, j));
			res->from_model += h.done(len[i]);
			keys++;
			elements += len[i];
		}
		res->errors += keys != res->keys || elements != res->elements || res->from_map != res->from_model;
	} catch (const std::bad_alloc &) {
		res->oom = true;
	}
}

} // namespace

int main(int argc, char **argv)
{
	uint64_t size = 512ULL << 20;
	int threads = 4;
	if (argc > 3 || (argc >= 2 && parse_size(argv[1], &size)) ||
	    (argc == 3 && ((threads = atoi(argv[2])) < 1 || threads > 64))) {
		fprintf(stderr, "usage: mt_containers [SIZE [THREADS]]   (heap footprint such as 512M, "
			"default 512M; threads 1-64, default 4)\n");
		return 2;
	}
	std::vector<Result> res(threads);
	std::vector<std::thread> pool;
	for (int t = 0; t < threads; t++)
		pool.emplace_back(worker, static_cast<unsigned>(t), size / threads, &res[t]);
	for (auto &th : pool)
		th.join();

	uint64_t bad = 0, total = 0;
	for (int t = 0; t < threads; t++) {
		const Result &r = res[t];
		bool ok = !r.oom && !r.errors;
		printf("mt_containers: thread %d keys=%" PRIu64 " elements=%" PRIu64 " checksum=%016" PRIx64
		       " model=%016" PRIx64 " %s\n", t, r.keys, r.elements, r.from_map, r.from_model,
		       r.oom ? "OUT-OF-MEMORY" : ok ? "ok" : "MISMATCH");
		bad += !ok;
		total += r.from_map;
	}
	printf("mt_containers: threads=%d combined=%016" PRIx64 " verify=%s\n", threads, total,
	       bad ? "FAILED" : "OK");
	return bad ? 1 : 0;
}
