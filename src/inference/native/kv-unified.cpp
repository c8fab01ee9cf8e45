// rbee's addition to node-llama-cpp's addon: contexts created after rbeeSetKvUnified(true) share one KV buffer across
// their sequences (llama.cpp's kv_unified). The stock addon always keeps one buffer per sequence, and llama.cpp then
// only batches runs of consecutive sequence ids together: slots 3 and 5 busy, or a prompt chunk beside single tokens,
// split one step into several full passes over the weights. With one buffer, every step is one pass.
// Compiled into llama-addon.node by scripts/build-addon.ts, which also makes AddonContext read rbeeKvUnified().
#include <atomic>
#include "napi.h"

namespace {
std::atomic<bool> kvUnified{false};

Napi::Value SetKvUnified(const Napi::CallbackInfo& info) {
    if (info.Length() < 1 || !info[0].IsBoolean()) throw Napi::TypeError::New(info.Env(), "rbeeSetKvUnified(on: boolean)");
    kvUnified = info[0].As<Napi::Boolean>().Value();
    return info.Env().Undefined();
}
}  // namespace

bool rbeeKvUnified() {
    return kvUnified;
}

void rbeeRegisterKvUnified(Napi::Object exports) {
    exports.Set("rbeeSetKvUnified", Napi::Function::New(exports.Env(), SetKvUnified, "rbeeSetKvUnified"));
}
