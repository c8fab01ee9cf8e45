// rbee's step for node-llama-cpp's addon: one call waits for the decode in flight, samples its outputs, appends every
// sequence that goes on (its new token at its next position) to the batch JavaScript prepared, and starts decoding
// that batch. The sampled tokens reach JavaScript as soon as they exist, while this thread starts the next decode; on a
// GPU the decode runs on while JavaScript turns tokens into text and prepares the next step, so the GPU waits only for
// the sampling and the launch, not for a round trip through the event loop.
// Compiled into llama-addon.node by scripts/build-addon.ts, which also hooks rbeeRegisterSampleThenDecode into its init.
#include <atomic>
#include <chrono>
#include <stdexcept>
#include <vector>
#include "common/common.h"
#include "llama.h"
#include "napi.h"
#include "AddonContext.h"
#include "AddonSampler.h"
#include "sampling.h"

namespace {

// The last call's split, for profiling (rbeeLastStepTimings): microseconds waiting for the decode, sampling, launching.
std::atomic<int64_t> lastWaitUs{0};
std::atomic<int64_t> lastSampleUs{0};
std::atomic<int64_t> lastLaunchUs{0};

int64_t microsSince(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start).count();
}

// What to do with output i of the decode in flight: sample it with samplers[i] (null: drop it), and if the token is
// not an end of generation that stops it, decode it next for sequence slots[i] at position positions[i] (-1: stop).
struct Outputs {
    std::vector<AddonSampler*> samplers;
    std::vector<int32_t> logitIndexes;
    std::vector<int32_t> slots;
    std::vector<int32_t> positions;
    std::vector<uint8_t> stopAtEog;
};

class SampleThenDecodeWorker : public Napi::AsyncProgressWorker<int32_t> {
  public:
    SampleThenDecodeWorker(Napi::Env env, AddonContext* context, Outputs outputs, Napi::Function onSampled)
        : Napi::AsyncProgressWorker<int32_t>(env, "RbeeSampleThenDecodeWorker"),
          context(context),
          outputs(std::move(outputs)),
          onSampled(Napi::Persistent(onSampled)),
          deferred(Napi::Promise::Deferred::New(env)) {
        context->Ref();
        for (auto* sampler : this->outputs.samplers)
            if (sampler != nullptr) sampler->Ref();
    }
    ~SampleThenDecodeWorker() {
        context->Unref();
        for (auto* sampler : outputs.samplers)
            if (sampler != nullptr) sampler->Unref();
    }
    Napi::Promise promise() { return deferred.Promise(); }

  protected:
    void Execute(const ExecutionProgress& progress) override {
        try {
            auto started = std::chrono::steady_clock::now();
            llama_synchronize(context->ctx);
            lastWaitUs = microsSince(started);
            started = std::chrono::steady_clock::now();
            std::vector<int32_t> tokens;
            rbeeSampleOutputs(context->ctx, outputs.samplers, outputs.logitIndexes, tokens);
            const size_t n = tokens.size();
            // Sent as tokens, then one flag per output: 1 where it was appended to the next batch.
            std::vector<int32_t> result(tokens);
            result.resize(2 * n, 0);
            const llama_vocab* vocab = llama_model_get_vocab(llama_get_model(context->ctx));
            for (size_t i = 0; i < n; i++) {
                const bool goesOn = tokens[i] >= 0 && outputs.positions[i] >= 0 && !(outputs.stopAtEog[i] && llama_vocab_is_eog(vocab, tokens[i]));
                if (!goesOn) continue;
                if (context->batch.n_tokens >= context->batch_n_tokens) throw std::runtime_error("the batch has no room for the sequences that go on");
                common_batch_add(context->batch, tokens[i], outputs.positions[i], {outputs.slots[i]}, true);
                result[n + i] = 1;
            }
            lastSampleUs = microsSince(started);
            // Before the launch: on the CPU the launch is the whole decode, which JavaScript's work then overlaps.
            // (After it made no difference on an H100: 750 against 751 tok/s, 1B, one stream.)
            if (n > 0) progress.Send(result.data(), result.size());
            started = std::chrono::steady_clock::now();
            launch();
            lastLaunchUs = microsSince(started);
        } catch (const std::exception& e) {
            SetError(e.what());
        } catch (...) {
            SetError("unknown error in sampleThenDecode");
        }
    }
    void OnProgress(const int32_t* data, size_t count) override {
        Napi::HandleScope scope(Env());
        auto result = Napi::Int32Array::New(Env(), count);
        for (size_t i = 0; i < count; i++) result[i] = data[i];
        // The callback only settles a promise; an exception from it must not escape into the event loop.
        try {
            onSampled.Call({result});
        } catch (const Napi::Error&) {
        }
    }
    void OnOK() override { deferred.Resolve(Env().Undefined()); }
    void OnError(const Napi::Error& err) override { deferred.Reject(err.Value()); }

  private:
    AddonContext* context;
    Outputs outputs;
    Napi::FunctionReference onSampled;
    Napi::Promise::Deferred deferred;

    // Starts the decode and returns without waiting for it: the next call's llama_synchronize does.
    void launch() {
        if (context->batch.n_tokens == 0) return;
        // The stock sampleToken reads these after a decode; keep them consistent for callers that mix both.
        context->sharedSamplerData.gotLogit = false;
        context->sharedSamplerData.hasLogits = false;
        const int status = llama_decode(context->ctx, context->batch);
        context->batch.n_tokens = 0;
        if (status == 1) throw std::runtime_error("could not find a KV slot for the batch (try reducing the size of the batch or increase the context)");
        if (status != 0) throw std::runtime_error("Eval has failed");
    }
};

template <typename T>
std::vector<T> vectorOf(const Napi::TypedArrayOf<T>& array) {
    return std::vector<T>(array.Data(), array.Data() + array.ElementLength());
}

// sampleThenDecode(context, samplers: (AddonSampler|null)[], logitIndexes, slots, positions: Int32Array,
//                  stopAtEog: Uint8Array, onSampled: (tokensThenFlags: Int32Array) => void) -> Promise<void>
// The promise settles once the next decode has started (or failed to); until then the context must not be touched.
Napi::Value SampleThenDecode(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const char* usage = "sampleThenDecode(context, samplers, logitIndexes, slots, positions: Int32Array, stopAtEog: Uint8Array, onSampled)";
    if (info.Length() < 7 || !info[0].IsObject() || !info[1].IsArray() || !info[2].IsTypedArray() || !info[3].IsTypedArray() ||
        !info[4].IsTypedArray() || !info[5].IsTypedArray() || !info[6].IsFunction())
        throw Napi::TypeError::New(env, usage);
    AddonContext* context = Napi::ObjectWrap<AddonContext>::Unwrap(info[0].As<Napi::Object>());
    if (context == nullptr || context->disposed || context->ctx == nullptr || !context->has_batch)
        throw Napi::Error::New(env, "the context is disposed or has no batch");
    const auto samplerArray = info[1].As<Napi::Array>();
    Outputs outputs{{}, vectorOf(info[2].As<Napi::Int32Array>()), vectorOf(info[3].As<Napi::Int32Array>()),
                    vectorOf(info[4].As<Napi::Int32Array>()), vectorOf(info[5].As<Napi::Uint8Array>())};
    const size_t n = samplerArray.Length();
    if (outputs.logitIndexes.size() != n || outputs.slots.size() != n || outputs.positions.size() != n || outputs.stopAtEog.size() != n)
        throw Napi::RangeError::New(env, "one logit index, slot, position and stopAtEog per sampler");
    for (uint32_t i = 0; i < n; i++) {
        const Napi::Value value = samplerArray.Get(i);
        AddonSampler* sampler = value.IsObject() ? Napi::ObjectWrap<AddonSampler>::Unwrap(value.As<Napi::Object>()) : nullptr;
        if (sampler != nullptr && sampler->disposed) throw Napi::Error::New(env, "a sampler is disposed");
        if (sampler != nullptr && sampler->grammarEvaluationState != nullptr)
            throw Napi::Error::New(env, "grammar samplers are not supported by sampleThenDecode");
        outputs.samplers.push_back(sampler);
    }
    auto* worker = new SampleThenDecodeWorker(env, context, std::move(outputs), info[6].As<Napi::Function>());
    worker->Queue();
    return worker->promise();
}

Napi::Value LastStepTimings(const Napi::CallbackInfo& info) {
    auto result = Napi::Array::New(info.Env(), 3);
    result.Set(0u, Napi::Number::New(info.Env(), static_cast<double>(lastWaitUs.load())));
    result.Set(1u, Napi::Number::New(info.Env(), static_cast<double>(lastSampleUs.load())));
    result.Set(2u, Napi::Number::New(info.Env(), static_cast<double>(lastLaunchUs.load())));
    return result;
}

}  // namespace

void rbeeRegisterSampleThenDecode(Napi::Object exports) {
    exports.Set("rbeeSampleThenDecode", Napi::Function::New(exports.Env(), SampleThenDecode, "rbeeSampleThenDecode"));
    exports.Set("rbeeLastStepTimings", Napi::Function::New(exports.Env(), LastStepTimings, "rbeeLastStepTimings"));
}
