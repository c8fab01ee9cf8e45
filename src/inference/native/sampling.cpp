// rbee's sampling of every output of a decode in one go, spread over threads. The stock addon samples one output per
// call, each through the libuv pool and under one context-wide lock, so sampling 32 sequences of a 32k vocabulary cost
// more than decoding them. Compiled into llama-addon.node by scripts/build-addon.ts.
#include "sampling.h"
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <exception>
#include <functional>
#include <thread>
#include "AddonGrammarEvaluationState.h"
#include "AddonSampler.h"
#include "candidates.h"
#include "helper-pool.h"
#include "logprobs.h"

namespace {

// A helper is worth waking for about this many vocabulary entries to scan (two 32k-vocab outputs, 40-100 µs). When
// each step started its own threads it took eight (H100 host, 1B: 8 streams sampled in 150-210 µs, 32 in 380-530).
constexpr size_t kEntriesPerThread = 2 * 32000;
constexpr size_t kMaxThreads = 8;

// RBEE_SAMPLING_THREADS, where set, fixes the thread count (tests use it to take the threaded paths on a 2-core
// machine); 0 where not.
size_t fixedThreads() {
    static const long fixed = std::getenv("RBEE_SAMPLING_THREADS") ? std::atol(std::getenv("RBEE_SAMPLING_THREADS")) : 0;
    return fixed > 0 ? static_cast<size_t>(fixed) : 0;
}

// Half the cores at most: the HTTP server, llama.cpp's own threads and the clients share the machine. Asked once:
// hardware_concurrency() reads /sys/devices/system/cpu/online on every call (50-100 µs per step here).
size_t halfTheCores() {
    static const size_t hardware = std::max<size_t>(1, std::thread::hardware_concurrency() / 2);
    return hardware;
}

size_t threadsFor(size_t outputs, size_t nVocab) {
    if (fixedThreads() > 0) return std::min(outputs, fixedThreads());
    const size_t byWork = std::max<size_t>(1, outputs * nVocab / kEntriesPerThread);
    return std::min({outputs, halfTheCores(), byWork, kMaxThreads});
}

// The sampler's grammar (JSON, a JSON schema), if it has one: it masks the tokens the grammar does not allow next.
llama_sampler* grammarOf(const AddonSampler* sampler) {
    return sampler->grammarEvaluationState != nullptr ? sampler->grammarEvaluationState->sampler : nullptr;
}

// Whether the grammar allows `token` next.
bool grammarAllows(llama_sampler* grammar, llama_token token) {
    llama_token_data single{token, 1.0f, 0.0f};
    llama_token_data_array one{&single, 1, -1, false};
    llama_sampler_apply(grammar, &one);
    return single.logit != -INFINITY;
}

// Masking the whole vocabulary with a grammar costs milliseconds for a 150k vocabulary, and even a few hundred tokens
// cost a grammar inside a JSON string 0.3-0.6 ms. Where the chain only keeps the k most likely tokens (top-k, or
// greedy's one), the k most likely allowed tokens are found by asking the grammar about the most likely tokens one by
// one, most likely first (after biases and penalties: rbeeFillMostLikely), as long as no token left out of those could
// be more likely; the chain then gets those k and picks exactly what it would have picked from the masked vocabulary.
// False (nothing sampled) where that does not hold; the caller masks everything then.
bool sampleAmongTopAllowed(AddonSampler* sampler, llama_sampler* grammar, const float* row, size_t nVocab, llama_token_data_array& current) {
    const size_t needed = rbeeKeptByChain(sampler, nVocab);
    if (needed == 0) return false;
    const size_t wanted = std::max<size_t>(256, 4 * needed);
    if (wanted >= nVocab) return false;
    size_t unchanged = 0;
    const size_t size = rbeeFillMostLikely(sampler, row, nVocab, wanted, unchanged);
    if (size == 0 || unchanged == 0) return false;
    auto& candidates = sampler->tokenCandidates;
    // No token left out is more likely than the least likely of those the biases and penalties leave alone.
    float floor = INFINITY;
    for (size_t i = 0; i < unchanged; i++) floor = std::min(floor, candidates[i].logit);
    thread_local std::vector<llama_token_data> ranked;
    ranked.assign(candidates.begin(), candidates.begin() + size);
    llama_token_data_array adjusted{ranked.data(), size, -1, false};
    rbeeApplyBiasesAndPenalties(sampler, &adjusted);
    std::sort(ranked.begin(), ranked.end(), [](const llama_token_data& a, const llama_token_data& b) { return a.logit > b.logit || (a.logit == b.logit && a.id < b.id); });
    // Asked a block at a time, in order: one grammar call per token costs its allocations each time.
    constexpr size_t kBlock = 32;
    thread_local std::vector<llama_token_data> block;
    size_t found = 0;
    for (size_t from = 0; from < ranked.size() && found < needed && ranked[from].logit >= floor; from += kBlock) {
        block.clear();
        for (size_t i = from; i < std::min(ranked.size(), from + kBlock) && ranked[i].logit >= floor; i++) block.push_back({ranked[i].id, 1.0f, 0.0f});
        llama_token_data_array asked{block.data(), block.size(), -1, false};
        llama_sampler_apply(grammar, &asked);
        for (size_t i = 0; i < block.size() && found < needed; i++)
            // The raw logit: the chain applies the biases and penalties itself.
            if (block[i].logit != -INFINITY) candidates[found++] = llama_token_data{block[i].id, row[block[i].id], 0.0f};
    }
    if (found < needed) return false;
    current = llama_token_data_array{candidates.data(), found, -1, false};
    llama_sampler_apply(sampler->chain, &current);
    return true;
}

// Vocabulary entries one thread masks with a grammar (a 150k vocabulary took 9 ms on one core of the 2-core machine, so
// 4k entries are about 0.25 ms, far more than waking a helper). At 16k a 32k vocabulary was masked on one thread.
constexpr size_t kMaskEntriesPerThread = 4 * 1024;

// The picked token of output i: accepted by its sampler (penalties, grammar state), its logprobs recorded.
void take(AddonSampler* sampler, const float* row, size_t nVocab, const llama_token_data_array& current, std::vector<int32_t>& tokens, size_t i) {
    if (current.selected < 0 || static_cast<size_t>(current.selected) >= current.size) return;
    const llama_token token = current.data[current.selected].id;
    sampler->acceptToken(token);
    rbeeRecordLogprobs(sampler, row, nVocab, token);
    tokens[i] = token;
}

// Masks the whole vocabulary with the sampler's grammar, in chunks on the helper threads (the grammar only reads its
// state while it masks), then samples with the chain.
void sampleMasked(AddonSampler* sampler, const float* row, size_t nVocab, std::vector<int32_t>& tokens, size_t i) {
    auto& candidates = sampler->tokenCandidates;
    const size_t all = rbeeFillAll(sampler, row, nVocab);
    llama_sampler* grammar = grammarOf(sampler);
    const size_t chunks = std::min({fixedThreads() > 0 ? fixedThreads() : halfTheCores(), kMaxThreads, std::max<size_t>(1, all / kMaskEntriesPerThread)});
    std::vector<std::exception_ptr> failures(chunks);
    rbeeRunChunks(chunks, [&](size_t c) {
        try {
            llama_token_data_array part{candidates.data() + c * all / chunks, (c + 1) * all / chunks - c * all / chunks, -1, false};
            llama_sampler_apply(grammar, &part);
        } catch (...) {
            failures[c] = std::current_exception();
        }
    });
    for (const auto& failure : failures)
        if (failure) std::rethrow_exception(failure);
    llama_token_data_array current{candidates.data(), all, -1, false};
    rbeeApplyChainToAll(sampler, &current);
    take(sampler, row, nVocab, current, tokens, i);
}

// Each sampler owns its chain and candidate buffer, so different outputs never share mutable state. An output whose
// grammar must mask the whole vocabulary is left for after the fan-out (masked[i] = 1), which spreads that mask itself.
void sampleRange(const std::vector<const float*>& logits, const std::vector<AddonSampler*>& samplers, std::vector<int32_t>& tokens,
                 size_t from, size_t to, size_t nVocab, std::vector<uint8_t>& masked) {
    for (size_t i = from; i < to; i++) {
        const float* row = logits[i];
        AddonSampler* sampler = samplers[i];
        if (row == nullptr || sampler == nullptr) continue;
        llama_token_data_array current = rbeeApplyChain(sampler, row, nVocab);
        // With a grammar (JSON, a JSON schema), as node-llama-cpp samples: the chain's pick if the grammar allows it (one
        // check instead of masking the whole vocabulary), else the chain again over what the grammar allows.
        llama_sampler* grammar = grammarOf(sampler);
        const bool picked = current.selected >= 0 && static_cast<size_t>(current.selected) < current.size;
        if (grammar != nullptr && (!picked || !grammarAllows(grammar, current.data[current.selected].id)) &&
            !sampleAmongTopAllowed(sampler, grammar, row, nVocab, current)) {
            masked[i] = 1;
            continue;
        }
        take(sampler, row, nVocab, current, tokens, i);
    }
}

void sampleSpread(const std::vector<const float*>& rows, const std::vector<AddonSampler*>& samplers, std::vector<int32_t>& tokens, size_t nVocab,
                  std::vector<uint8_t>& masked, size_t threadCount) {
    const size_t outputs = rows.size();
    // One chunk per thread, on this thread and the helpers. An exception must not leave a helper (that would terminate
    // the process): each chunk keeps its own, and the first one is rethrown here.
    const size_t perThread = (outputs + threadCount - 1) / threadCount;
    const size_t chunks = (outputs + perThread - 1) / perThread;
    std::vector<std::exception_ptr> failures(chunks);
    rbeeRunChunks(chunks, [&](size_t c) {
        try {
            sampleRange(rows, samplers, tokens, c * perThread, std::min((c + 1) * perThread, outputs), nVocab, masked);
        } catch (...) {
            failures[c] = std::current_exception();
        }
    });
    for (const auto& failure : failures)
        if (failure) std::rethrow_exception(failure);
}

// Samples rows[i] with samplers[i] (rows[i] null: skip), spread over threads; tokens[i] is -1 where nothing was sampled.
void sampleRows(const std::vector<const float*>& rows, const std::vector<AddonSampler*>& samplers, size_t nVocab, std::vector<int32_t>& tokens) {
    const size_t outputs = rows.size();
    tokens.assign(outputs, -1);
    size_t sampled = 0;
    for (size_t i = 0; i < outputs; i++)
        if (samplers[i] != nullptr && rows[i] != nullptr) {
            samplers[i]->rebuildChainIfNeeded();
            sampled++;
        }
    std::vector<uint8_t> masked(outputs, 0);
    const size_t threadCount = threadsFor(sampled, nVocab);
    if (threadCount <= 1) sampleRange(rows, samplers, tokens, 0, outputs, nVocab, masked);
    else sampleSpread(rows, samplers, tokens, nVocab, masked, threadCount);
    for (size_t i = 0; i < outputs; i++)
        if (masked[i]) sampleMasked(samplers[i], rows[i], nVocab, tokens, i);
}

}  // namespace

void rbeeSampleOutputs(llama_context* ctx, const std::vector<AddonSampler*>& samplers, const std::vector<int32_t>& logitIndexes,
                       std::vector<int32_t>& tokens) {
    const size_t outputs = logitIndexes.size();
    tokens.assign(outputs, -1);
    if (outputs == 0) return;
    // llama_get_logits_ith may reorder the outputs on first use, so it runs here, on one thread, before the fan-out.
    std::vector<const float*> logits(outputs, nullptr);
    for (size_t i = 0; i < outputs; i++)
        if (samplers[i] != nullptr) logits[i] = llama_get_logits_ith(ctx, logitIndexes[i]);
    sampleRows(logits, samplers, llama_vocab_n_tokens(llama_model_get_vocab(llama_get_model(ctx))), tokens);
}
