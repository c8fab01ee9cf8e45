#include "step-thread.h"
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

namespace {

class StepThread {
  public:
    StepThread() { std::thread([this] { run(); }).detach(); }

    void post(std::function<void()> job) {
        {
            std::lock_guard<std::mutex> lock(mutex);
            jobs.push_back(std::move(job));
        }
        ready.notify_one();
    }

  private:
    std::mutex mutex;
    std::condition_variable ready;
    std::deque<std::function<void()>> jobs;

    [[noreturn]] void run() {
        for (;;) {
            std::function<void()> job;
            {
                std::unique_lock<std::mutex> lock(mutex);
                ready.wait(lock, [this] { return !jobs.empty(); });
                job = std::move(jobs.front());
                jobs.pop_front();
            }
            job();
        }
    }
};

}  // namespace

void rbeeRunOnStepThread(std::function<void()> job) {
    // Never destroyed: its detached thread waits on its mutex and condition variable for as long as the process lives.
    static auto* thread = new StepThread();
    thread->post(std::move(job));
}
