// rbee's addition to node-llama-cpp's addon: one call that decodes the prepared batch and samples every requested
// output, the sampling spread over threads. The stock addon samples one output per call, each through the libuv pool
// and under one context-wide lock, so sampling 32 sequences of a 32k vocabulary costs more than decoding them.
// Compiled into llama-addon.node by scripts/build-addon.ts, which also hooks rbeeRegisterDecodeAndSample into its init.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cmath>
#include <exception>
#include <functional>
#include <stdexcept>
#include <thread>
#include <vector>
#include "llama.h"
#include "napi.h"
#include "AddonContext.h"
#include "AddonSampler.h"

namespace {

// The last call's split, for profiling (rbeeLastStepTimings): microseconds decoding and sampling.
std::atomic<int64_t> lastDecodeUs{0};
std::atomic<int64_t> lastSampleUs{0};

int64_t microsSince(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start).count();
}

// A thread is worth starting for about this many vocabulary entries to scan (eight 32k-vocab outputs, ~0.1 ms).
constexpr size_t kEntriesPerThread = 8 * 32000;
constexpr size_t kMaxThreads = 8;

size_t threadsFor(size_t outputs, size_t nVocab) {
    // RBEE_SAMPLING_THREADS fixes the count (tests use it to take the threaded path on a 2-core machine).
    static const long fixed = std::getenv("RBEE_SAMPLING_THREADS") ? std::atol(std::getenv("RBEE_SAMPLING_THREADS")) : 0;
    if (fixed > 0) return std::min(outputs, static_cast<size_t>(fixed));
    // Half the cores at most: the HTTP server, llama.cpp's own threads and the clients share the machine.
    const size_t hardware = std::max<size_t>(1, std::thread::hardware_concurrency() / 2);
    const size_t byWork = std::max<size_t>(1, outputs * nVocab / kEntriesPerThread);
    return std::min({outputs, hardware, byWork, kMaxThreads});
}

// The largest value of row[from, to), on eight independent lanes so that the compiler can overlap (or vectorise) them.
float blockMax(const float* row, size_t from, size_t to) {
    float lane[8];
    std::fill(lane, lane + 8, -INFINITY);
    size_t i = from;
    for (; i + 8 <= to; i += 8)
        for (size_t j = 0; j < 8; j++) lane[j] = row[i + j] > lane[j] ? row[i + j] : lane[j];
    for (; i < to; i++) lane[0] = row[i] > lane[0] ? row[i] : lane[0];
    return *std::max_element(lane, lane + 8);
}

// The k largest logits of a row, in no particular order, instead of copying the whole vocabulary into candidates for
// llama.cpp's top-k to sort (32 µs per 32k row on the 2-core machine). The k-th largest of the per-block maxima is a
// lower bound for the k-th largest logit, so only blocks reaching it are read again: about k of them. 7 µs per row.
// Ties at the k-th place may keep a different token than llama.cpp's own partial sort would, as either may.
size_t fillTopK(std::vector<llama_token_data>& candidates, const float* row, size_t nVocab, size_t k) {
    constexpr size_t kBlock = 64;
    const size_t blocks = (nVocab + kBlock - 1) / kBlock;
    thread_local std::vector<float> maxima, order;
    maxima.resize(blocks);
    for (size_t b = 0; b < blocks; b++) maxima[b] = blockMax(row, b * kBlock, std::min(nVocab, (b + 1) * kBlock));
    float threshold = -INFINITY;
    if (blocks >= k) {
        order.assign(maxima.begin(), maxima.end());
        std::nth_element(order.begin(), order.begin() + (k - 1), order.end(), std::greater<float>());
        threshold = order[k - 1];
    }
    size_t count = 0;
    for (size_t b = 0; b < blocks; b++) {
        if (maxima[b] < threshold) continue;
        const size_t to = std::min(nVocab, (b + 1) * kBlock);
        if (candidates.size() < count + kBlock) candidates.resize(count + kBlock);
        for (size_t id = b * kBlock; id < to; id++)
            if (row[id] >= threshold) candidates[count++] = llama_token_data{static_cast<llama_token>(id), row[id], 0.0f};
    }
    const auto greater = [](const llama_token_data& a, const llama_token_data& b) { return a.logit > b.logit; };
    if (count > k) std::nth_element(candidates.begin(), candidates.begin() + (k - 1), candidates.begin() + count, greater);
    return std::min(count, k);
}

// The chain starts with top-k when nothing that looks at every token (biases, penalties, greedy) comes first.
size_t topKPrefilter(const AddonSampler* sampler, size_t nVocab) {
    if (sampler->tokenBiasSampler != nullptr || sampler->repeatPenaltySampler != nullptr || sampler->dryRepeatPenaltySampler != nullptr ||
        sampler->greedySampler != nullptr || sampler->topKSampler == nullptr)
        return 0;
    const int k = sampler->topKSampler_topK;
    return k > 0 && static_cast<size_t>(k) < nVocab ? static_cast<size_t>(k) : 0;
}

class DecodeAndSampleWorker : public Napi::AsyncWorker {
  public:
    DecodeAndSampleWorker(Napi::Env env, AddonContext* context, std::vector<AddonSampler*> samplers, std::vector<int32_t> logitIndexes)
        : Napi::AsyncWorker(env, "RbeeDecodeAndSampleWorker"),
          context(context),
          samplers(std::move(samplers)),
          logitIndexes(std::move(logitIndexes)),
          deferred(Napi::Promise::Deferred::New(env)) {
        context->Ref();
        for (auto* sampler : this->samplers) sampler->Ref();
    }
    ~DecodeAndSampleWorker() {
        context->Unref();
        for (auto* sampler : samplers) sampler->Unref();
    }
    Napi::Promise promise() { return deferred.Promise(); }

  protected:
    void Execute() override {
        try {
            const auto started = std::chrono::steady_clock::now();
            decode();
            lastDecodeUs = microsSince(started);
            const auto sampling = std::chrono::steady_clock::now();
            sampleAll();
            lastSampleUs = microsSince(sampling);
        } catch (const std::exception& e) {
            SetError(e.what());
        } catch (...) {
            SetError("unknown error in decodeAndSample");
        }
    }
    void OnOK() override {
        auto result = Napi::Int32Array::New(Env(), tokens.size());
        for (size_t i = 0; i < tokens.size(); i++) result[i] = tokens[i];
        deferred.Resolve(result);
    }
    void OnError(const Napi::Error& err) override { deferred.Reject(err.Value()); }

  private:
    AddonContext* context;
    std::vector<AddonSampler*> samplers;
    std::vector<int32_t> logitIndexes;
    std::vector<const float*> logits;
    std::vector<int32_t> tokens;
    Napi::Promise::Deferred deferred;

    void decode() {
        // The stock sampleToken reads these after a decode; keep them consistent for callers that mix both.
        context->sharedSamplerData.gotLogit = false;
        context->sharedSamplerData.hasLogits = false;
        const int status = llama_decode(context->ctx, context->batch);
        if (status == 1) throw std::runtime_error("could not find a KV slot for the batch (try reducing the size of the batch or increase the context)");
        if (status != 0) throw std::runtime_error("Eval has failed");
        llama_synchronize(context->ctx);
    }

    void sampleAll() {
        const size_t outputs = logitIndexes.size();
        tokens.assign(outputs, -1);
        if (outputs == 0) return;
        // llama_get_logits_ith may reorder the outputs on first use, so it runs here, on one thread, before the fan-out.
        logits.resize(outputs);
        for (size_t i = 0; i < outputs; i++) {
            logits[i] = llama_get_logits_ith(context->ctx, logitIndexes[i]);
            samplers[i]->rebuildChainIfNeeded();
        }
        const size_t nVocab = llama_vocab_n_tokens(llama_model_get_vocab(llama_get_model(context->ctx)));
        const size_t threadCount = threadsFor(outputs, nVocab);
        if (threadCount <= 1) {
            sampleRange(0, outputs, nVocab);
            return;
        }
        // Chunk 0 runs on this thread, the others on helpers. An exception must not leave a helper (that would terminate
        // the process): each chunk keeps its own, and the first one is rethrown here.
        const size_t perThread = (outputs + threadCount - 1) / threadCount;
        const size_t chunks = (outputs + perThread - 1) / perThread;
        std::vector<std::exception_ptr> failures(chunks);
        const auto sampleChunk = [&](size_t c) {
            try {
                sampleRange(c * perThread, std::min((c + 1) * perThread, outputs), nVocab);
            } catch (...) {
                failures[c] = std::current_exception();
            }
        };
        std::vector<std::thread> threads;
        for (size_t c = 1; c < chunks; c++) threads.emplace_back(sampleChunk, c);
        sampleChunk(0);
        for (auto& thread : threads) thread.join();
        for (const auto& failure : failures)
            if (failure) std::rethrow_exception(failure);
    }

    // Each sampler owns its chain and candidate buffer, so different outputs never share mutable state.
    void sampleRange(size_t from, size_t to, size_t nVocab) {
        for (size_t i = from; i < to; i++) {
            const float* row = logits[i];
            AddonSampler* sampler = samplers[i];
            if (row == nullptr) continue;
            auto& candidates = sampler->tokenCandidates;
            size_t size = topKPrefilter(sampler, nVocab);
            if (size > 0) {
                size = fillTopK(candidates, row, nVocab, size);
            } else {
                if (candidates.size() < nVocab) candidates.resize(nVocab);
                for (size_t id = 0; id < nVocab; id++) candidates[id] = llama_token_data{static_cast<llama_token>(id), row[id], 0.0f};
                size = nVocab;
            }
            llama_token_data_array current{candidates.data(), size, -1, false};
            llama_sampler_apply(sampler->chain, &current);
            if (current.selected < 0 || static_cast<size_t>(current.selected) >= current.size) continue;
            const llama_token token = current.data[current.selected].id;
            sampler->acceptToken(token);
            tokens[i] = token;
        }
    }
};

// decodeAndSample(context, samplers[], logitIndexes: Int32Array) -> Promise<Int32Array> (-1 where nothing was sampled)
Napi::Value DecodeAndSample(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 3 || !info[0].IsObject() || !info[1].IsArray() || !info[2].IsTypedArray())
        throw Napi::TypeError::New(env, "decodeAndSample(context, samplers, logitIndexes: Int32Array)");
    AddonContext* context = Napi::ObjectWrap<AddonContext>::Unwrap(info[0].As<Napi::Object>());
    if (context == nullptr || context->disposed || context->ctx == nullptr || !context->has_batch)
        throw Napi::Error::New(env, "the context is disposed or has no batch");
    const auto samplerArray = info[1].As<Napi::Array>();
    const auto indexArray = info[2].As<Napi::Int32Array>();
    if (samplerArray.Length() != indexArray.ElementLength())
        throw Napi::RangeError::New(env, "one sampler per logit index");
    std::vector<AddonSampler*> samplers;
    std::vector<int32_t> indexes;
    for (uint32_t i = 0; i < samplerArray.Length(); i++) {
        AddonSampler* sampler = Napi::ObjectWrap<AddonSampler>::Unwrap(samplerArray.Get(i).As<Napi::Object>());
        if (sampler == nullptr || sampler->disposed) throw Napi::Error::New(env, "a sampler is disposed");
        if (sampler->grammarEvaluationState != nullptr) throw Napi::Error::New(env, "grammar samplers are not supported by decodeAndSample");
        samplers.push_back(sampler);
        indexes.push_back(indexArray[i]);
    }
    auto* worker = new DecodeAndSampleWorker(env, context, std::move(samplers), std::move(indexes));
    worker->Queue();
    return worker->promise();
}

Napi::Value LastStepTimings(const Napi::CallbackInfo& info) {
    auto result = Napi::Array::New(info.Env(), 2);
    result.Set(0u, Napi::Number::New(info.Env(), static_cast<double>(lastDecodeUs.load())));
    result.Set(1u, Napi::Number::New(info.Env(), static_cast<double>(lastSampleUs.load())));
    return result;
}

}  // namespace

void rbeeRegisterDecodeAndSample(Napi::Object exports) {
    exports.Set("rbeeDecodeAndSample", Napi::Function::New(exports.Env(), DecodeAndSample, "rbeeDecodeAndSample"));
    exports.Set("rbeeLastStepTimings", Napi::Function::New(exports.Env(), LastStepTimings, "rbeeLastStepTimings"));
}
