// One long-lived thread for rbee's native steps. A step touches llama.cpp's batch, KV cache and graph; run on the same
// thread every time, those stay in that core's caches. Run on whichever pool thread was free, llama_decode's own CPU
// work before the GPU starts took 3-4 times as long as in llama-bench's loop (H100 host: the batch checks 10-18 µs
// against 2.8, the KV slot search 15-31 against 4.6). One thread for the process: a worker has one context.
#pragma once
#include <functional>

// Runs `job` on the step thread, after the jobs posted before it. The job must not throw.
void rbeeRunOnStepThread(std::function<void()> job);
