// Log probabilities for the requests that ask for them, recorded while rbee's batched sampling picks their tokens: the
// log-softmax of the model's raw logits (before penalties, biases, temperature or truncation), at the sampled token and
// at the `top` most likely ones. JavaScript takes them after each step; a sampler not registered costs one lookup.
// Compiled into llama-addon.node by scripts/build-addon.ts, which hooks rbeeRegisterLogprobs into its init.
#include "logprobs.h"
#include <algorithm>
#include <cmath>
#include <mutex>
#include <numeric>
#include <unordered_map>
#include <vector>
#include "napi.h"
#include "AddonSampler.h"

namespace {

struct Wanted {
    int32_t top;
    // Per sampled token: token, its logprob, then `top` (id, logprob) pairs.
    std::vector<double> records;
};

std::mutex lock;
std::unordered_map<const AddonSampler*, Wanted> wanted;

// rbeeWantLogprobs(sampler, top): record from now on (top: 0-20); top -1: stop and forget.
Napi::Value WantLogprobs(const Napi::CallbackInfo& info) {
    auto* sampler = Napi::ObjectWrap<AddonSampler>::Unwrap(info[0].As<Napi::Object>());
    const int32_t top = info[1].As<Napi::Number>().Int32Value();
    std::lock_guard<std::mutex> guard(lock);
    if (top < 0) wanted.erase(sampler);
    else wanted[sampler] = Wanted{std::min(top, 20), {}};
    return info.Env().Undefined();
}

// rbeeTakeLogprobs(sampler): what was recorded since the last call, as a Float64Array of records.
Napi::Value TakeLogprobs(const Napi::CallbackInfo& info) {
    auto* sampler = Napi::ObjectWrap<AddonSampler>::Unwrap(info[0].As<Napi::Object>());
    std::vector<double> records;
    {
        std::lock_guard<std::mutex> guard(lock);
        auto found = wanted.find(sampler);
        if (found != wanted.end()) records.swap(found->second.records);
    }
    auto out = Napi::Float64Array::New(info.Env(), records.size());
    std::copy(records.begin(), records.end(), out.Data());
    return out;
}

}  // namespace

bool rbeeWantsLogprobs(const AddonSampler* sampler) {
    std::lock_guard<std::mutex> guard(lock);
    return wanted.count(sampler) > 0;
}

void rbeeRecordLogprobs(AddonSampler* sampler, const float* row, size_t nVocab, int32_t token) {
    int32_t top;
    {
        std::lock_guard<std::mutex> guard(lock);
        auto found = wanted.find(sampler);
        if (found == wanted.end()) return;
        top = found->second.top;
    }
    const float max = *std::max_element(row, row + nVocab);
    double sum = 0;
    for (size_t i = 0; i < nVocab; i++) sum += std::exp(static_cast<double>(row[i]) - max);
    const double logZ = max + std::log(sum);
    std::vector<double> record{static_cast<double>(token), row[token] - logZ};
    if (top > 0) {
        thread_local std::vector<int32_t> ids;
        ids.resize(nVocab);
        std::iota(ids.begin(), ids.end(), 0);
        const size_t k = std::min<size_t>(top, nVocab);
        std::partial_sort(ids.begin(), ids.begin() + k, ids.end(), [row](int32_t a, int32_t b) { return row[a] > row[b]; });
        for (size_t i = 0; i < k; i++) record.insert(record.end(), {static_cast<double>(ids[i]), row[ids[i]] - logZ});
    }
    std::lock_guard<std::mutex> guard(lock);
    auto found = wanted.find(sampler);
    if (found != wanted.end()) found->second.records.insert(found->second.records.end(), record.begin(), record.end());
}

void rbeeRegisterLogprobs(Napi::Object exports) {
    exports.Set("rbeeWantLogprobs", Napi::Function::New(exports.Env(), WantLogprobs, "rbeeWantLogprobs"));
    exports.Set("rbeeTakeLogprobs", Napi::Function::New(exports.Env(), TakeLogprobs, "rbeeTakeLogprobs"));
}
