// rbee's addition to node-llama-cpp's addon: contexts created after rbeeSetKvUnified(true) share one KV buffer across
// their sequences (llama.cpp's kv_unified), so a step is one pass over the weights whichever slots are busy and even
// with a prompt chunk beside single tokens. The worker uses it only with RBEE_KV_LAYOUT=unified: with it, this
// llama.cpp checks all 256 possible sequence pairs on the CPU before every decode (see src/inference/load.ts).
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
