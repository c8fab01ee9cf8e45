// rbee's addition to node-llama-cpp's addon: gives llama.cpp's graphs of different batch sizes different CUDA-graph keys.
//
// llama.cpp builds every graph in the same buffer, and its CUDA backend keys captured graphs by the address of the graph's
// first node, the token embedding's GET_ROWS. So a request's prompt (several tokens) and the one-token steps after it
// share one key: the prompt's graph replaces the decode graph's capture, and the next two decode steps run uncaptured
// while it is captured again. With rbeeGraphKeys(true), before libllama's call to ggml_get_rows on the token embedding,
// a few empty tensors are created in the graph's context (in no graph): their number depends on the batch's token count
// (1, 2-3, 4-7, ...), so the embedding's node, and every node after it, sits at another address for each size class.
//
// The addon is loaded before libllama and libggml-base, and libllama calls ggml_get_rows through its PLT, so this
// definition is the one libllama gets; the original is the next one (RTLD_NEXT).
#include <dlfcn.h>
#include <atomic>
#include <cstdint>
#include <cstring>
#include "ggml.h"
#include "napi.h"

namespace {
using GetRows = ggml_tensor* (*)(ggml_context*, ggml_tensor*, ggml_tensor*);

std::atomic<bool> enabled{false};
std::atomic<uint64_t> graphsRekeyed{0};

GetRows originalGetRows() {
    static const GetRows original = reinterpret_cast<GetRows>(dlsym(RTLD_NEXT, "ggml_get_rows"));
    return original;
}

/** 1 for one token, 2 for 2-3, 3 for 4-7, ... at most 10 (512 tokens and more): few keys, so few captured graphs. */
int sizeClass(int64_t tokens) {
    int size_class = 1;
    while (tokens > 1 && size_class < 10) {
        tokens >>= 1;
        size_class++;
    }
    return size_class;
}

/** rbeeGraphKeys(on?: boolean): number — turns the keys on or off if given; returns how many graphs got one so far. */
Napi::Value GraphKeys(const Napi::CallbackInfo& info) {
    if (info.Length() >= 1 && info[0].IsBoolean()) enabled = info[0].As<Napi::Boolean>().Value();
    return Napi::Number::New(info.Env(), static_cast<double>(graphsRekeyed.load()));
}
}  // namespace

extern "C" ggml_tensor* ggml_get_rows(ggml_context* ctx, ggml_tensor* a, ggml_tensor* b) {
    // Only in a graph being built (llama.cpp also calls it on the embedding to probe what a backend supports).
    const bool building_graph = std::strcmp(b->name, "inp_tokens") == 0 && std::strncmp(a->name, "token_embd", 10) == 0;
    if (enabled && building_graph && ggml_get_mem_size(ctx) - ggml_used_mem(ctx) > 64 * ggml_tensor_overhead()) {
        for (int i = sizeClass(b->ne[0]); i > 0; i--) ggml_new_tensor_1d(ctx, GGML_TYPE_I8, 0);
        graphsRekeyed.fetch_add(1);
    }
    return originalGetRows()(ctx, a, b);
}

void rbeeRegisterGraphKeys(Napi::Object exports) {
    exports.Set("rbeeGraphKeys", Napi::Function::New(exports.Env(), GraphKeys, "rbeeGraphKeys"));
}
