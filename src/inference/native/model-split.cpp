// rbee's addition to node-llama-cpp's addon: how a model spread over several GPUs is split. AddonModel's constructor
// (edited by scripts/build-addon.ts) hands its options here: `splitMode` is llama.cpp's split_mode (1 layer, 2 row,
// 3 tensor) and `tensorSplit` each GPU's share, kept in `storage` because llama_model_params only borrows the pointer.
// Without a tensorSplit, llama.cpp splits by each GPU's free memory.
#include <vector>
#include "llama.h"
#include "napi.h"

void rbeeApplyModelSplit(llama_model_params& params, const Napi::Object& options, std::vector<float>& storage) {
    if (options.Has("splitMode")) params.split_mode = (llama_split_mode)options.Get("splitMode").As<Napi::Number>().Int32Value();
    if (!options.Has("tensorSplit")) return;
    Napi::Array shares = options.Get("tensorSplit").As<Napi::Array>();
    storage.assign(llama_max_devices(), 0.0f);
    for (uint32_t i = 0; i < shares.Length() && i < storage.size(); i++) storage[i] = shares.Get(i).As<Napi::Number>().FloatValue();
    params.tensor_split = storage.data();
}

namespace {
Napi::Value ModelSplit(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), true);
}
}  // namespace

/** rbeeModelSplit() exists (and says true) where loadModel's splitMode and tensorSplit reach llama.cpp. */
void rbeeRegisterModelSplit(Napi::Object exports) {
    exports.Set("rbeeModelSplit", Napi::Function::New(exports.Env(), ModelSplit, "rbeeModelSplit"));
}
