#include "helper-pool.h"
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace {

constexpr size_t kMaxHelpers = 7;

class HelperPool {
  public:
    void run(size_t chunks, const std::function<void(size_t)>& chunk) {
        const size_t helpers = std::min(chunks, kMaxHelpers + 1) - 1;
        while (threads < helpers) {
            std::thread([this, index = threads + 1] { work(index); }).detach();
            threads++;
        }
        {
            std::lock_guard<std::mutex> lock(mutex);
            job = &chunk;
            jobChunks = chunks;
            workers = helpers + 1;
            pending.store(helpers);
            generation++;
        }
        wake.notify_all();
        for (size_t c = 0; c < chunks; c += helpers + 1) chunk(c);
        // The helpers' chunks take about as long as this one: wait for them without sleeping.
        while (pending.load() != 0) std::this_thread::yield();
    }

  private:
    std::mutex mutex;
    std::condition_variable wake;
    const std::function<void(size_t)>* job = nullptr;
    size_t jobChunks = 0;
    size_t workers = 1;
    size_t generation = 0;
    size_t threads = 0;
    std::atomic<size_t> pending{0};

    [[noreturn]] void work(size_t index) {
        size_t seen = 0;
        for (;;) {
            const std::function<void(size_t)>* current;
            size_t chunks, stride;
            {
                std::unique_lock<std::mutex> lock(mutex);
                wake.wait(lock, [&] { return generation != seen; });
                seen = generation;
                current = job;
                chunks = jobChunks;
                stride = workers;
            }
            if (index >= stride) continue;  // not needed this time
            for (size_t c = index; c < chunks; c += stride) (*current)(c);
            pending.fetch_sub(1);
        }
    }
};

}  // namespace

void rbeeRunChunks(size_t chunks, const std::function<void(size_t)>& chunk) {
    if (chunks <= 1) {
        if (chunks == 1) chunk(0);
        return;
    }
    // Never destroyed: its detached threads wait on its mutex and condition variable for as long as the process lives.
    static auto* pool = new HelperPool();
    pool->run(chunks, chunk);
}
