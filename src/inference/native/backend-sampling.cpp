// Tokens picked on the backend: see backend-sampling.h. Compiled into llama-addon.node by scripts/build-addon.ts.
#include "backend-sampling.h"
#include <mutex>
#include <unordered_map>
#include "AddonContext.h"
#include "AddonSampler.h"
#include "logprobs.h"

namespace {

// How an output's sampler can run on the backend.
enum class Plan { Host, Greedy, Chain };

// A chain attached to a sequence: greedy (no state, for any greedy request), or one request's own (its seed's draws).
struct Attached {
    llama_sampler* chain;
    bool drawn;
    // A drawn chain's request, by its sampler; null once that request has ended (and for greedy).
    const AddonSampler* owner;
};

struct State {
    bool on = false;
    // Per sequence. A chain can be attached only once (llama.cpp initialises its backend part then), so each
    // attachment gets a new one.
    std::unordered_map<llama_seq_id, Attached> attached;
    // Per index of the batch last launched: 1 where that output is sampled on the backend.
    std::vector<uint8_t> sampledAt;
    // Tokens picked on the backend, and chains attached, since it was turned on.
    double picks = 0;
    double attachments = 0;
};

std::mutex lock;
std::unordered_map<const llama_context*, State> states;

// Most tokens a top-k on the backend keeps; above it (or with no top-k), top-p would sort the whole vocabulary there.
constexpr int32_t kMaxBackendTopK = 256;

// Greedy, or top-k then top-p, min-p, temperature and a seeded draw (the OpenAI routes' default chain), with nothing
// that needs the row of logits on the host: a grammar, biases, penalties, XTC, logprobs.
Plan planFor(const AddonSampler* sampler) {
    if (sampler == nullptr || sampler->grammarEvaluationState != nullptr || sampler->tokenBiasSampler != nullptr ||
        sampler->repeatPenaltySampler != nullptr || sampler->dryRepeatPenaltySampler != nullptr || sampler->xtcSampler != nullptr ||
        rbeeWantsLogprobs(sampler))
        return Plan::Host;
    if (sampler->greedySampler != nullptr) return Plan::Greedy;
    const bool chain = sampler->topKSampler != nullptr && sampler->topKSampler_topK >= 1 && sampler->topKSampler_topK <= kMaxBackendTopK &&
                       sampler->temperatureSampler != nullptr && sampler->seedSampler != nullptr;
    return chain ? Plan::Chain : Plan::Host;
}

// The same samplers as node-llama-cpp's chain for `sampler` (AddonSampler::rebuildChainIfNeeded), null: greedy's.
llama_sampler* newChain(const AddonSampler* sampler) {
    llama_sampler* chain = llama_sampler_chain_init(llama_sampler_chain_default_params());
    if (sampler == nullptr) {
        llama_sampler_chain_add(chain, llama_sampler_init_greedy());
        return chain;
    }
    llama_sampler_chain_add(chain, llama_sampler_init_top_k(sampler->topKSampler_topK));
    if (sampler->topPSampler != nullptr) llama_sampler_chain_add(chain, llama_sampler_init_top_p(sampler->topPSampler_topP, 1));
    if (sampler->minPSampler != nullptr) llama_sampler_chain_add(chain, llama_sampler_init_min_p(sampler->minPSampler_minP, 1));
    llama_sampler_chain_add(chain, llama_sampler_init_temp(sampler->temperatureSampler_temperature));
    llama_sampler_chain_add(chain, llama_sampler_init_dist(sampler->seedSampler_seed));
    return chain;
}

// Attaches `chain` to `seq` in place of what it had; false (chain freed) where the backend cannot (a model split by
// tensors): that sequence's picks stay on the host.
bool attach(llama_context* ctx, State& state, llama_seq_id seq, llama_sampler* chain, const AddonSampler* owner = nullptr) {
    auto found = state.attached.find(seq);
    const bool ok = llama_set_sampler(ctx, seq, chain);
    // The last decode has finished (the step synchronised before launching), so nothing uses the old chain any more.
    if (found != state.attached.end()) {
        llama_sampler_free(found->second.chain);
        state.attached.erase(found);
    }
    if (!ok) {
        llama_sampler_free(chain);
        return false;
    }
    state.attached[seq] = Attached{chain, owner != nullptr, owner};
    state.attachments++;
    return true;
}

void detach(llama_context* ctx, State& state, llama_seq_id seq) {
    auto found = state.attached.find(seq);
    if (found == state.attached.end()) return;
    llama_set_sampler(ctx, seq, nullptr);
    llama_sampler_free(found->second.chain);
    state.attached.erase(found);
}

// The sequence whose drawn chain `owner` owns, or -1.
llama_seq_id seqOwnedBy(const State& state, const AddonSampler* owner) {
    for (const auto& [seq, attached] : state.attached)
        if (attached.drawn && attached.owner == owner) return seq;
    return -1;
}

// Output of `sampler` for sequence `seq`; `first`: the request's first output (its prompt's), which starts its draws.
void prepare(llama_context* ctx, State& state, llama_seq_id seq, const AddonSampler* sampler, bool first) {
    const Plan plan = planFor(sampler);
    auto found = state.attached.find(seq);
    if (plan == Plan::Host) {
        detach(ctx, state, seq);
        return;
    }
    if (plan == Plan::Greedy) {
        if (found == state.attached.end() || found->second.drawn) attach(ctx, state, seq, newChain(nullptr));
        return;
    }
    if (!first && found != state.attached.end() && found->second.drawn && found->second.owner == sampler) return;
    // A request's sequence moved to a lower slot (the engine closes gaps): its chain goes with it, draws and all.
    const llama_seq_id from = first ? -1 : seqOwnedBy(state, sampler);
    if (from >= 0) {
        llama_sampler* moved = llama_sampler_clone(state.attached[from].chain);
        detach(ctx, state, from);
        attach(ctx, state, seq, moved, sampler);
        return;
    }
    // A chain left by an ended request whose sampler had the same address is not this one's.
    for (auto& [other, attached] : state.attached)
        if (attached.owner == sampler) attached.owner = nullptr;
    attach(ctx, state, seq, newChain(sampler), sampler);
}

Napi::Value BackendSampling(const Napi::CallbackInfo& info) {
    if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsBoolean())
        throw Napi::TypeError::New(info.Env(), "rbeeBackendSampling(context, on: boolean)");
    AddonContext* context = Napi::ObjectWrap<AddonContext>::Unwrap(info[0].As<Napi::Object>());
    if (context == nullptr || context->disposed || context->ctx == nullptr) throw Napi::Error::New(info.Env(), "the context is disposed");
    std::lock_guard<std::mutex> guard(lock);
    State& state = states[context->ctx];
    // Detached first (where this state was left by a context freed at this address, llama.cpp has nothing to detach).
    for (auto& [seq, attached] : state.attached) {
        llama_set_sampler(context->ctx, seq, nullptr);
        llama_sampler_free(attached.chain);
    }
    state = State{};
    state.on = info[1].As<Napi::Boolean>().Value();
    return info.Env().Undefined();
}

// rbeeBackendSamplingCounts(context) -> [picks, attachments]: tokens picked on the backend and chains attached so far.
Napi::Value BackendSamplingCounts(const Napi::CallbackInfo& info) {
    if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(info.Env(), "rbeeBackendSamplingCounts(context)");
    AddonContext* context = Napi::ObjectWrap<AddonContext>::Unwrap(info[0].As<Napi::Object>());
    auto result = Napi::Array::New(info.Env(), 2);
    std::lock_guard<std::mutex> guard(lock);
    auto found = context != nullptr ? states.find(context->ctx) : states.end();
    result.Set(0u, Napi::Number::New(info.Env(), found != states.end() ? found->second.picks : 0));
    result.Set(1u, Napi::Number::New(info.Env(), found != states.end() ? found->second.attachments : 0));
    return result;
}

}  // namespace

void rbeeBackendSamplersForBatch(llama_context* ctx, const llama_batch& batch, const std::vector<std::pair<int32_t, AddonSampler*>>& outputSamplers,
                                 size_t firstAppended) {
    std::lock_guard<std::mutex> guard(lock);
    auto found = states.find(ctx);
    if (found == states.end() || !found->second.on) return;
    State& state = found->second;
    std::vector<const AddonSampler*> samplerAt(batch.n_tokens, nullptr);
    std::vector<uint8_t> firstAt(batch.n_tokens, 0);
    for (size_t k = 0; k < outputSamplers.size(); k++) {
        const auto& [index, sampler] = outputSamplers[k];
        if (index < 0 || index >= batch.n_tokens) continue;
        samplerAt[index] = sampler;
        firstAt[index] = k < firstAppended;
    }
    for (int32_t i = 0; i < batch.n_tokens; i++)
        if (batch.logits[i]) prepare(ctx, state, batch.seq_id[i][0], samplerAt[i], firstAt[i]);
    state.sampledAt.assign(batch.n_tokens, 0);
    for (int32_t i = 0; i < batch.n_tokens; i++)
        if (batch.logits[i] && state.attached.count(batch.seq_id[i][0]) > 0) state.sampledAt[i] = 1;
}

std::vector<llama_token> rbeeBackendSampledTokens(llama_context* ctx, const std::vector<int32_t>& batchIndexes) {
    std::lock_guard<std::mutex> guard(lock);
    auto found = states.find(ctx);
    if (found == states.end() || !found->second.on) return {};
    State& state = found->second;
    std::vector<llama_token> tokens(batchIndexes.size(), -1);
    for (size_t i = 0; i < batchIndexes.size(); i++) {
        const int32_t index = batchIndexes[i];
        if (index < 0 || static_cast<size_t>(index) >= state.sampledAt.size() || !state.sampledAt[index]) continue;
        const llama_token token = llama_get_sampled_token_ith(ctx, index);
        if (token == LLAMA_TOKEN_NULL) continue;
        tokens[i] = token;
        state.picks++;
    }
    return tokens;
}

void rbeeRegisterBackendSampling(Napi::Object exports) {
    exports.Set("rbeeBackendSampling", Napi::Function::New(exports.Env(), BackendSampling, "rbeeBackendSampling"));
    exports.Set("rbeeBackendSamplingCounts", Napi::Function::New(exports.Env(), BackendSamplingCounts, "rbeeBackendSamplingCounts"));
}
