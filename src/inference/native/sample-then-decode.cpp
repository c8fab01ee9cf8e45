// rbee's step for node-llama-cpp's addon: one call waits for the decode in flight, samples its outputs, appends every
// sequence that goes on (its new token at its next position) to the batch JavaScript prepared, and starts decoding
// that batch. The sampled tokens reach JavaScript as soon as they exist, while this thread starts the next decode; on a
// GPU the decode runs on while JavaScript turns tokens into text and prepares the next step, so the GPU waits only for
// the sampling and the launch, not for a round trip through the event loop.
// Compiled into llama-addon.node by scripts/build-addon.ts, which also hooks rbeeRegisterSampleThenDecode into its init.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <stdexcept>
#include <vector>
#include "common/common.h"
#include "llama.h"
#include "napi.h"
#include "AddonContext.h"
#include "AddonSampler.h"
#include "backend-sampling.h"
#include "sampling.h"
#include "step-thread.h"

namespace {

// The last call's split, for profiling (rbeeLastStepTimings), in microseconds: waiting for the decode, sampling, handing
// the tokens over, launching, and the CPU time this thread spent launching (only with RBEE_PROFILE_STEPS=1: reading a
// thread's CPU clock can be a system call). A launch that takes longer than its CPU time waited for something.
enum Timing { kWait, kSample, kSend, kLaunch, kLaunchCpu, kTimings };
std::atomic<int64_t> lastTimings[kTimings];

int64_t microsSince(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start).count();
}

bool profiling() {
    static const bool on = std::getenv("RBEE_PROFILE_STEPS") != nullptr && std::strcmp(std::getenv("RBEE_PROFILE_STEPS"), "1") == 0;
    return on;
}

int64_t threadCpuMicros() {
    timespec now{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
    return static_cast<int64_t>(now.tv_sec) * 1000000 + now.tv_nsec / 1000;
}

// What to do with output i of the decode in flight: sample it with samplers[i] (null: drop it), and if the token is
// not an end of generation that stops it, decode it next for sequence slots[i] at position positions[i] (-1: stop).
struct Outputs {
    std::vector<AddonSampler*> samplers;
    std::vector<int32_t> logitIndexes;
    std::vector<int32_t> slots;
    std::vector<int32_t> positions;
    std::vector<uint8_t> stopAtEog;
    // The outputs of the prompt chunks JavaScript put into the next batch: batch index and sampler.
    std::vector<std::pair<int32_t, AddonSampler*>> prepared;
};

// One call: made and freed on JavaScript's thread, run on the step thread in between.
struct StepCall {
    AddonContext* context;
    Outputs outputs;
    Napi::FunctionReference onSampled;
    Napi::Promise::Deferred deferred;
    // Hand the tokens over before starting the next decode (else after). Before: on the CPU, where the launch is the
    // whole decode, and for a request's first token. After: on a GPU, where JavaScript turning tokens into events while
    // the launch runs made both slower (1B on an H100, one stream, one slot: 805 against 828 tok/s with it after).
    bool tokensBeforeLaunch;
    std::string error;
};

// From the step thread to JavaScript's: a call's tokens (then one flag per output), or that the call is over.
struct Message {
    StepCall* call;
    bool done;
    std::vector<int32_t> tokensThenFlags;
};

void deliver(Napi::Env env, Napi::Function, void*, Message* message);
using Deliverer = Napi::TypedThreadSafeFunction<void, Message, deliver>;
// One per process, created by the first call. Referenced only while calls are running, so an idle worker can exit.
Deliverer deliverer;
int callsRunning = 0;

void post(StepCall* call, bool done, std::vector<int32_t> tokensThenFlags = {}) {
    auto* message = new Message{call, done, std::move(tokensThenFlags)};
    if (deliverer.NonBlockingCall(message) != napi_ok) delete message;  // only while the process shuts down
}

void sendTokens(StepCall* call, std::vector<int32_t> tokensThenFlags) {
    const auto started = std::chrono::steady_clock::now();
    if (!tokensThenFlags.empty()) post(call, false, std::move(tokensThenFlags));
    lastTimings[kSend] = microsSince(started);
}

// Starts the decode and returns without waiting for it: the next call's llama_synchronize does. `outputSamplers`: the
// sampler of each output in the batch (batch index, sampler; the first `firstAppended` are the prompts'), which says
// where it can be sampled on the backend.
void launch(AddonContext* context, const std::vector<std::pair<int32_t, AddonSampler*>>& outputSamplers, size_t firstAppended) {
    if (context->batch.n_tokens == 0) return;
    rbeeBackendSamplersForBatch(context->ctx, context->batch, outputSamplers, firstAppended);
    // The stock sampleToken reads these after a decode; keep them consistent for callers that mix both.
    context->sharedSamplerData.gotLogit = false;
    context->sharedSamplerData.hasLogits = false;
    const int status = llama_decode(context->ctx, context->batch);
    context->batch.n_tokens = 0;
    if (status == 1) throw std::runtime_error("could not find a KV slot for the batch (try reducing the size of the batch or increase the context)");
    if (status != 0) throw std::runtime_error("Eval has failed");
}

// Samples each output: read back where the backend picked it, else on the host (rbeeSampleOutputs).
void sampleOutputs(llama_context* ctx, const Outputs& outputs, std::vector<int32_t>& tokens) {
    const std::vector<llama_token> picked = rbeeBackendSampledTokens(ctx, outputs.logitIndexes);
    if (picked.empty()) return rbeeSampleOutputs(ctx, outputs.samplers, outputs.logitIndexes, tokens);
    std::vector<AddonSampler*> onHost = outputs.samplers;
    for (size_t i = 0; i < onHost.size(); i++) {
        if (onHost[i] == nullptr || picked[i] < 0) continue;
        onHost[i]->acceptToken(picked[i]);
        onHost[i] = nullptr;
    }
    rbeeSampleOutputs(ctx, onHost, outputs.logitIndexes, tokens);
    for (size_t i = 0; i < picked.size(); i++)
        if (picked[i] >= 0 && outputs.samplers[i] != nullptr) tokens[i] = picked[i];
}

// On the step thread.
void run(StepCall* call) {
    AddonContext* context = call->context;
    const Outputs& outputs = call->outputs;
    try {
        auto started = std::chrono::steady_clock::now();
        llama_synchronize(context->ctx);
        lastTimings[kWait] = microsSince(started);
        started = std::chrono::steady_clock::now();
        // Sent as the tokens, then one flag per output: 1 where it was appended to the next batch.
        std::vector<int32_t> result;
        sampleOutputs(context->ctx, outputs, result);
        const size_t n = result.size();
        result.resize(2 * n, 0);
        std::vector<std::pair<int32_t, AddonSampler*>> outputSamplers = outputs.prepared;
        const llama_vocab* vocab = llama_model_get_vocab(llama_get_model(context->ctx));
        for (size_t i = 0; i < n; i++) {
            const llama_token token = result[i];
            const bool goesOn = token >= 0 && outputs.positions[i] >= 0 && !(outputs.stopAtEog[i] && llama_vocab_is_eog(vocab, token));
            if (!goesOn) continue;
            if (context->batch.n_tokens >= context->batch_n_tokens) throw std::runtime_error("the batch has no room for the sequences that go on");
            outputSamplers.emplace_back(context->batch.n_tokens, outputs.samplers[i]);
            common_batch_add(context->batch, token, outputs.positions[i], {outputs.slots[i]}, true);
            result[n + i] = 1;
        }
        lastTimings[kSample] = microsSince(started);
        if (call->tokensBeforeLaunch) sendTokens(call, std::move(result));
        started = std::chrono::steady_clock::now();
        const int64_t cpuBefore = profiling() ? threadCpuMicros() : 0;
        launch(context, outputSamplers, outputs.prepared.size());
        lastTimings[kLaunch] = microsSince(started);
        lastTimings[kLaunchCpu] = profiling() ? threadCpuMicros() - cpuBefore : 0;
        if (!call->tokensBeforeLaunch) sendTokens(call, std::move(result));
    } catch (const std::exception& e) {
        call->error = e.what();
    } catch (...) {
        call->error = "unknown error in sampleThenDecode";
    }
    post(call, true);
}

// On JavaScript's thread, in the order the step thread posted.
void deliver(Napi::Env env, Napi::Function, void*, Message* message) {
    std::unique_ptr<Message> owned(message);
    StepCall* call = message->call;
    if (env == nullptr) return;  // the process is shutting down
    Napi::HandleScope scope(env);
    if (!message->done) {
        auto tokens = Napi::Int32Array::New(env, message->tokensThenFlags.size());
        std::copy(message->tokensThenFlags.begin(), message->tokensThenFlags.end(), tokens.Data());
        // The callback only settles a promise; an exception from it must not escape into the event loop.
        try {
            call->onSampled.Call({tokens});
        } catch (const Napi::Error&) {
        }
        return;
    }
    if (call->error.empty()) call->deferred.Resolve(env.Undefined());
    else call->deferred.Reject(Napi::Error::New(env, call->error).Value());
    call->context->Unref();
    for (auto* sampler : call->outputs.samplers)
        if (sampler != nullptr) sampler->Unref();
    for (auto& [index, sampler] : call->outputs.prepared) sampler->Unref();
    delete call;
    if (--callsRunning == 0) deliverer.Unref(env);
}

template <typename T>
std::vector<T> vectorOf(const Napi::TypedArrayOf<T>& array) {
    return std::vector<T>(array.Data(), array.Data() + array.ElementLength());
}

// sampleThenDecode(context, samplers: (AddonSampler|null)[], logitIndexes, slots, positions: Int32Array,
//                  stopAtEog: Uint8Array, onSampled: (tokensThenFlags: Int32Array) => void, tokensBeforeLaunch = true,
//                  preparedSamplers: AddonSampler[] = [], preparedIndexes: Int32Array = [])
//   -> Promise<void>
// preparedSamplers[i] samples the output at batch index preparedIndexes[i] of the prompt chunks already in the batch.
// The promise settles once the next decode has started (or failed to); until then the context must not be touched.
Napi::Value SampleThenDecode(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const char* usage = "sampleThenDecode(context, samplers, logitIndexes, slots, positions: Int32Array, stopAtEog: Uint8Array, onSampled, tokensBeforeLaunch?: boolean, preparedSamplers?: AddonSampler[], preparedIndexes?: Int32Array)";
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
        outputs.samplers.push_back(sampler);
    }
    const bool tokensBeforeLaunch = info.Length() < 8 || !info[7].IsBoolean() || info[7].As<Napi::Boolean>().Value();
    if (info.Length() >= 10 && info[8].IsArray() && info[9].IsTypedArray()) {
        const auto preparedArray = info[8].As<Napi::Array>();
        const auto indexes = vectorOf(info[9].As<Napi::Int32Array>());
        if (indexes.size() != preparedArray.Length()) throw Napi::RangeError::New(env, "one prepared index per prepared sampler");
        for (uint32_t i = 0; i < indexes.size(); i++) {
            const Napi::Value value = preparedArray.Get(i);
            AddonSampler* sampler = value.IsObject() ? Napi::ObjectWrap<AddonSampler>::Unwrap(value.As<Napi::Object>()) : nullptr;
            if (sampler == nullptr || sampler->disposed) throw Napi::Error::New(env, "a prepared sampler is missing or disposed");
            outputs.prepared.emplace_back(indexes[i], sampler);
        }
    }
    if (!deliverer) deliverer = Deliverer::New(env, "rbeeSampleThenDecode", 0, 1);
    if (callsRunning++ == 0) deliverer.Ref(env);
    auto* call = new StepCall{context, std::move(outputs), Napi::Persistent(info[6].As<Napi::Function>()), Napi::Promise::Deferred::New(env),
                              tokensBeforeLaunch, {}};
    context->Ref();
    for (auto* sampler : call->outputs.samplers)
        if (sampler != nullptr) sampler->Ref();
    for (auto& [index, sampler] : call->outputs.prepared) sampler->Ref();
    const Napi::Promise promise = call->deferred.Promise();
    rbeeRunOnStepThread([call] { run(call); });
    return promise;
}

Napi::Value LastStepTimings(const Napi::CallbackInfo& info) {
    auto result = Napi::Array::New(info.Env(), kTimings);
    for (uint32_t i = 0; i < kTimings; i++) result.Set(i, Napi::Number::New(info.Env(), static_cast<double>(lastTimings[i].load())));
    return result;
}

}  // namespace

void rbeeRegisterSampleThenDecode(Napi::Object exports) {
    exports.Set("rbeeSampleThenDecode", Napi::Function::New(exports.Env(), SampleThenDecode, "rbeeSampleThenDecode"));
    exports.Set("rbeeLastStepTimings", Napi::Function::New(exports.Env(), LastStepTimings, "rbeeLastStepTimings"));
    rbeeRegisterBackendSampling(exports);
}
