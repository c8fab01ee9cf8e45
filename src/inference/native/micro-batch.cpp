// rbee's addition to node-llama-cpp's addon: contexts created after rbeeSetMicroBatch(n) split each decode call into
// micro-batches of at most n tokens (llama.cpp's n_ubatch), inside one llama_decode; node-llama-cpp makes them as
// large as the call (n_ubatch = n_batch). 0 (the default) keeps that. A call of 2,048 prompt tokens in micro-batches
// of 512 is llama-server's default: the compute buffers are a 512-token batch's, and the micro-batches run back to back
// without a return to the caller between them.
// Compiled into llama-addon.node by scripts/build-addon.ts, which also makes AddonContext read rbeeMicroBatch().
#include <algorithm>
#include <atomic>
#include <cstdint>
#include "napi.h"

namespace {
std::atomic<uint32_t> microBatch{0};

Napi::Value SetMicroBatch(const Napi::CallbackInfo& info) {
    if (info.Length() < 1 || !info[0].IsNumber() || info[0].As<Napi::Number>().Int64Value() < 0)
        throw Napi::TypeError::New(info.Env(), "rbeeSetMicroBatch(tokens: number >= 0)");
    microBatch = info[0].As<Napi::Number>().Uint32Value();
    return info.Env().Undefined();
}
}  // namespace

uint32_t rbeeMicroBatch(uint32_t batch) {
    const uint32_t micro = microBatch;
    return micro == 0 ? batch : std::min(micro, batch);
}

void rbeeRegisterMicroBatch(Napi::Object exports) {
    exports.Set("rbeeSetMicroBatch", Napi::Function::New(exports.Env(), SetMicroBatch, "rbeeSetMicroBatch"));
}
