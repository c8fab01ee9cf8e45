// The embedding of one sequence of a decoded batch, so that several inputs are embedded in one decode: node-llama-cpp's
// own call reads sequence 0 only. Pooled (mean, CLS, last…) where the context pools, else the hidden state of the
// sequence's last token. Compiled into llama-addon.node by scripts/build-addon.ts, which hooks rbeeRegisterEmbeddings.
#include <algorithm>
#include "llama.h"
#include "napi.h"
#include "AddonContext.h"

namespace {

// rbeeSequenceEmbedding(context, sequenceId, lastTokenBatchIndex): a Float32Array of the model's embedding size.
Napi::Value SequenceEmbedding(const Napi::CallbackInfo& info) {
    const Napi::Env env = info.Env();
    auto* context = Napi::ObjectWrap<AddonContext>::Unwrap(info[0].As<Napi::Object>());
    if (context == nullptr || context->disposed || context->ctx == nullptr) throw Napi::Error::New(env, "the context is disposed");
    const int32_t sequence = info[1].As<Napi::Number>().Int32Value();
    const int32_t lastToken = info[2].As<Napi::Number>().Int32Value();
    const int32_t size = llama_model_n_embd_out(llama_get_model(context->ctx));
    const float* embedding = llama_pooling_type(context->ctx) == LLAMA_POOLING_TYPE_NONE ? nullptr : llama_get_embeddings_seq(context->ctx, sequence);
    if (embedding == nullptr) embedding = llama_get_embeddings_ith(context->ctx, lastToken);
    if (embedding == nullptr) throw Napi::Error::New(env, "no embedding for sequence " + std::to_string(sequence));
    auto out = Napi::Float32Array::New(env, size);
    std::copy(embedding, embedding + size, out.Data());
    return out;
}

}  // namespace

void rbeeRegisterEmbeddings(Napi::Object exports) {
    exports.Set("rbeeSequenceEmbedding", Napi::Function::New(exports.Env(), SequenceEmbedding, "rbeeSequenceEmbedding"));
}
