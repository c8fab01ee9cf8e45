// One sequence's KV cells as bytes in host memory and back (llama.cpp's llama_state_seq_get_data / set_data), for the
// worker's host prompt cache: a prompt a slot held is kept in RAM when the slot is wanted for another, and restored into
// any free slot when a request starts the same way. Both wait for the decode in flight (llama.cpp synchronizes).
// Compiled into llama-addon.node by scripts/build-addon.ts, which hooks rbeeRegisterSeqState into its init.
#include <cstring>
#include "llama.h"
#include "napi.h"
#include "AddonContext.h"

namespace {

AddonContext* contextOf(const Napi::CallbackInfo& info) {
    auto* context = Napi::ObjectWrap<AddonContext>::Unwrap(info[0].As<Napi::Object>());
    if (context == nullptr || context->disposed || context->ctx == nullptr) throw Napi::Error::New(info.Env(), "the context is disposed");
    return context;
}

// rbeeSeqStateGet(context, sequenceId): the sequence's state as a Uint8Array (empty where it holds nothing).
Napi::Value SeqStateGet(const Napi::CallbackInfo& info) {
    const Napi::Env env = info.Env();
    AddonContext* context = contextOf(info);
    const int32_t sequence = info[1].As<Napi::Number>().Int32Value();
    const size_t size = llama_state_seq_get_size(context->ctx, sequence);
    auto out = Napi::Uint8Array::New(env, size);
    if (size == 0) return out;
    const size_t written = llama_state_seq_get_data(context->ctx, out.Data(), size, sequence);
    if (written != size) throw Napi::Error::New(env, "could not read the state of sequence " + std::to_string(sequence));
    return out;
}

// rbeeSeqStateSet(context, sequenceId, bytes): puts a saved state into the (empty) sequence; false where llama.cpp
// refused it (no room, another model's state).
Napi::Value SeqStateSet(const Napi::CallbackInfo& info) {
    const Napi::Env env = info.Env();
    AddonContext* context = contextOf(info);
    const int32_t sequence = info[1].As<Napi::Number>().Int32Value();
    const auto bytes = info[2].As<Napi::Uint8Array>();
    const size_t read = llama_state_seq_set_data(context->ctx, bytes.Data(), bytes.ByteLength(), sequence);
    return Napi::Boolean::New(env, read > 0);
}

}  // namespace

void rbeeRegisterSeqState(Napi::Object exports) {
    exports.Set("rbeeSeqStateGet", Napi::Function::New(exports.Env(), SeqStateGet, "rbeeSeqStateGet"));
    exports.Set("rbeeSeqStateSet", Napi::Function::New(exports.Env(), SeqStateSet, "rbeeSeqStateSet"));
}
