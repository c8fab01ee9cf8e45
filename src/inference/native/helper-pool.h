// Threads that stay up between steps to share one step's work. Starting a std::thread per chunk per step cost more than
// the chunk (sampling one 32k-vocabulary output takes 20-50 µs), so the sampling only split work eight outputs at a time.
#pragma once
#include <cstddef>
#include <functional>

// Runs chunk(0) .. chunk(chunks - 1) on the calling thread and up to 7 helper threads (started on first use), each
// taking every eighth chunk or so, and returns when all are done. `chunk` must not throw. One caller at a time.
void rbeeRunChunks(size_t chunks, const std::function<void(size_t)>& chunk);
