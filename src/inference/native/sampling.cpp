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
#include "helper-pool.h"
#include "logprobs.h"

namespace {

// A helper is worth waking for about this many vocabulary entries to scan (two 32k-vocab outputs, 40-100 µs). When
// each step started its own threads it took eight (H100 host, 1B: 8 streams sampled in 150-210 µs, 32 in 380-530).
constexpr size_t kEntriesPerThread = 2 * 32000;
constexpr size_t kMaxThreads = 8;

size_t threadsFor(size_t outputs, size_t nVocab) {
    // RBEE_SAMPLING_THREADS fixes the count (tests use it to take the threaded path on a 2-core machine).
    static const long fixed = std::getenv("RBEE_SAMPLING_THREADS") ? std::atol(std::getenv("RBEE_SAMPLING_THREADS")) : 0;
    if (fixed > 0) return std::min(outputs, static_cast<size_t>(fixed));
    // Half the cores at most: the HTTP server, llama.cpp's own threads and the clients share the machine. Asked once:
    // hardware_concurrency() reads /sys/devices/system/cpu/online on every call (50-100 µs per step here).
    static const size_t hardware = std::max<size_t>(1, std::thread::hardware_concurrency() / 2);
    const size_t byWork = std::max<size_t>(1, outputs * nVocab / kEntriesPerThread);
    return std::min({outputs, hardware, byWork, kMaxThreads});
}

// The largest value of row[from, to), on eight independent lanes so that the compiler can overlap (or vectorise) them.
float blockMax(const float* row, size_t from, size_t to) {
    float lane[8];
    std::fill(lane, lane + 8, -INFINITY);
    size_t i = from;
    for (; i + 8 <= to; i += 8)
        for (size_t j = 0; j < 8; j++) lane[j] = row[i + j] > lane[j] ? row[i + j] : lane[j];
    for (; i < to; i++) lane[0] = row[i] > lane[0] ? row[i] : lane[0];
    return *std::max_element(lane, lane + 8);
}

// The k largest logits of a row, in no particular order, instead of copying the whole vocabulary into candidates for
// llama.cpp's top-k to sort (32 µs per 32k row on the 2-core machine). The k-th largest of the per-block maxima is a
// lower bound for the k-th largest logit, so only blocks reaching it are read again: about k of them. 7 µs per row.
// Ties at the k-th place may keep a different token than llama.cpp's own partial sort would, as either may.
size_t fillTopK(std::vector<llama_token_data>& candidates, const float* row, size_t nVocab, size_t k) {
    constexpr size_t kBlock = 64;
    const size_t blocks = (nVocab + kBlock - 1) / kBlock;
    thread_local std::vector<float> maxima, order;
    maxima.resize(blocks);
    for (size_t b = 0; b < blocks; b++) maxima[b] = blockMax(row, b * kBlock, std::min(nVocab, (b + 1) * kBlock));
    float threshold = -INFINITY;
    if (blocks >= k) {
        order.assign(maxima.begin(), maxima.end());
        std::nth_element(order.begin(), order.begin() + (k - 1), order.end(), std::greater<float>());
        threshold = order[k - 1];
    }
    size_t count = 0;
    for (size_t b = 0; b < blocks; b++) {
        if (maxima[b] < threshold) continue;
        const size_t to = std::min(nVocab, (b + 1) * kBlock);
        if (candidates.size() < count + kBlock) candidates.resize(count + kBlock);
        for (size_t id = b * kBlock; id < to; id++)
            if (row[id] >= threshold) candidates[count++] = llama_token_data{static_cast<llama_token>(id), row[id], 0.0f};
    }
    const auto greater = [](const llama_token_data& a, const llama_token_data& b) { return a.logit > b.logit; };
    if (count > k) std::nth_element(candidates.begin(), candidates.begin() + (k - 1), candidates.begin() + count, greater);
    return std::min(count, k);
}

// The sampler's grammar (JSON, a JSON schema), if it has one: it masks the tokens the grammar does not allow next.
llama_sampler* grammarOf(const AddonSampler* sampler) {
    return sampler->grammarEvaluationState != nullptr ? sampler->grammarEvaluationState->sampler : nullptr;
}

// The chain starts with top-k when nothing that looks at every token (biases, penalties, greedy, a grammar) comes first.
size_t topKPrefilter(const AddonSampler* sampler, size_t nVocab) {
    if (sampler->tokenBiasSampler != nullptr || sampler->repeatPenaltySampler != nullptr || sampler->dryRepeatPenaltySampler != nullptr ||
        sampler->greedySampler != nullptr || sampler->topKSampler == nullptr || grammarOf(sampler) != nullptr)
        return 0;
    const int k = sampler->topKSampler_topK;
    return k > 0 && static_cast<size_t>(k) < nVocab ? static_cast<size_t>(k) : 0;
}


// Every token of the vocabulary as a candidate.
size_t fillAll(std::vector<llama_token_data>& candidates, const float* row, size_t nVocab) {
    if (candidates.size() < nVocab) candidates.resize(nVocab);
    for (size_t id = 0; id < nVocab; id++) candidates[id] = llama_token_data{static_cast<llama_token>(id), row[id], 0.0f};
    return nVocab;
}

// Whether the grammar allows `token` next.
bool grammarAllows(llama_sampler* grammar, llama_token token) {
    llama_token_data single{token, 1.0f, 0.0f};
    llama_token_data_array one{&single, 1, -1, false};
    llama_sampler_apply(grammar, &one);
    return single.logit != -INFINITY;
}

// Masking the whole vocabulary with a grammar costs milliseconds for a 150k vocabulary. Where the chain only keeps the
// k most likely tokens (top-k, or greedy's one) and nothing before it changes logits (biases, penalties), the k most
// likely allowed tokens are among the most likely few hundred whenever at least k of those are allowed: the grammar
// masks only those, and the chain picks exactly what it would have picked from the masked vocabulary. False (nothing
// sampled) where that does not hold; the caller masks everything then.
bool sampleAmongTopAllowed(AddonSampler* sampler, llama_sampler* grammar, const float* row, size_t nVocab, llama_token_data_array& current) {
    if (sampler->tokenBiasSampler != nullptr || sampler->repeatPenaltySampler != nullptr || sampler->dryRepeatPenaltySampler != nullptr)
        return false;
    const size_t needed = sampler->greedySampler != nullptr ? 1 : (sampler->topKSampler != nullptr && sampler->topKSampler_topK > 0 ? sampler->topKSampler_topK : 0);
    if (needed == 0) return false;
    const size_t wanted = std::min(nVocab, std::max<size_t>(256, 4 * needed));
    if (wanted >= nVocab) return false;
    auto& candidates = sampler->tokenCandidates;
    const size_t size = fillTopK(candidates, row, nVocab, wanted);
    current = llama_token_data_array{candidates.data(), size, -1, false};
    llama_sampler_apply(grammar, &current);
    size_t allowed = 0;
    for (size_t i = 0; i < current.size; i++) allowed += current.data[i].logit != -INFINITY;
    if (allowed < needed) return false;
    llama_sampler_apply(sampler->chain, &current);
    return true;
}

// Vocabulary entries one thread masks with a grammar (a 150k vocabulary took 9 ms on one core of the 2-core machine).
constexpr size_t kMaskEntriesPerThread = 16 * 1024;

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
    const size_t all = fillAll(candidates, row, nVocab);
    llama_sampler* grammar = grammarOf(sampler);
    static const long fixed = std::getenv("RBEE_SAMPLING_THREADS") ? std::atol(std::getenv("RBEE_SAMPLING_THREADS")) : 0;
    static const size_t hardware = std::max<size_t>(1, std::thread::hardware_concurrency() / 2);
    const size_t chunks = std::min({fixed > 0 ? static_cast<size_t>(fixed) : hardware, kMaxThreads, std::max<size_t>(1, all / kMaskEntriesPerThread)});
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
    llama_sampler_apply(sampler->chain, &current);
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
        auto& candidates = sampler->tokenCandidates;
        const size_t k = topKPrefilter(sampler, nVocab);
        // Filled first: filling may grow the buffer.
        const size_t size = k > 0 ? fillTopK(candidates, row, nVocab, k) : fillAll(candidates, row, nVocab);
        llama_token_data_array current{candidates.data(), size, -1, false};
        llama_sampler_apply(sampler->chain, &current);
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
