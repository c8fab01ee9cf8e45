// The candidates a sampler's chain is given. Copying a 32k-150k vocabulary into candidates and running llama.cpp's
// samplers over it costs more than a small model's decode: its top-k sorts the lot, its penalties look every token up in
// a hash map (0.3-0.6 ms for 32k tokens, 1.5 ms and more for 150k), its logit bias scans it. Where the chain keeps only
// the k most likely tokens (top-k, greedy), those k are among the k most likely raw logits plus the tokens the biases
// and penalties may change (a bias names its tokens; penalties change only the tokens of their window), so the chain
// gets only those and picks what it would have picked from the whole vocabulary. Compiled into llama-addon.node by
// scripts/build-addon.ts.
#include "candidates.h"
#include <algorithm>
#include <cmath>
#include <functional>
#include "AddonSampler.h"

namespace {

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

// The tokens the sampler's logit biases and penalties may change, sorted, without repeats; false where they are not
// known (DRY's penalty follows sequences, not a token list).
bool changedTokens(const AddonSampler* sampler, size_t nVocab, std::vector<llama_token>& tokens) {
    tokens.clear();
    if (sampler->dryRepeatPenaltySampler != nullptr) return false;
    if (sampler->tokenBiasSampler != nullptr)
        for (const auto& bias : sampler->tokenBiasSampler_biases) tokens.push_back(bias.token);
    if (sampler->repeatPenaltySampler != nullptr) {
        // The sampler's ring holds what its llama.cpp penalty counts: the same accepted tokens, the same window.
        if (sampler->repeatPenalty_maxTokens <= 0) return false;
        for (size_t i = 0; i < sampler->repeatPenalty_lastTokens.size(); i++) tokens.push_back(sampler->repeatPenalty_lastTokens.rat(i));
    }
    std::sort(tokens.begin(), tokens.end());
    tokens.erase(std::unique(tokens.begin(), tokens.end()), tokens.end());
    tokens.erase(std::remove_if(tokens.begin(), tokens.end(), [&](llama_token t) { return t < 0 || static_cast<size_t>(t) >= nVocab; }), tokens.end());
    return true;
}

// How many samplers the chain starts with that change logits of named tokens: the logit bias, then the penalties
// (AddonSampler::rebuildChainIfNeeded's order).
int32_t leadingSamplers(const AddonSampler* sampler) {
    return (sampler->tokenBiasSampler != nullptr) + (sampler->repeatPenaltySampler != nullptr);
}

}  // namespace

size_t rbeeKeptByChain(const AddonSampler* sampler, size_t nVocab) {
    // XTC drops the most likely tokens at random: it must see them all where it comes before greedy's pick.
    if (sampler->greedySampler != nullptr) return sampler->xtcSampler == nullptr ? 1 : 0;
    const int k = sampler->topKSampler != nullptr ? sampler->topKSampler_topK : 0;
    return k > 0 && static_cast<size_t>(k) < nVocab ? static_cast<size_t>(k) : 0;
}

size_t rbeeFillMostLikely(AddonSampler* sampler, const float* row, size_t nVocab, size_t count, size_t& unchanged) {
    thread_local std::vector<llama_token> changed;
    unchanged = 0;
    if (!changedTokens(sampler, nVocab, changed)) return 0;
    auto& candidates = sampler->tokenCandidates;
    const size_t most = fillTopK(candidates, row, nVocab, std::min(nVocab, count + changed.size()));
    // A plain sampler (every output of a plain step) has nothing to move.
    if (changed.empty()) {
        unchanged = most;
        return most;
    }
    // Those the biases and penalties leave alone first, then all they may change.
    const auto isChanged = [&](const llama_token_data& c) { return std::binary_search(changed.begin(), changed.end(), c.id); };
    unchanged = std::stable_partition(candidates.begin(), candidates.begin() + most, [&](const llama_token_data& c) { return !isChanged(c); }) - candidates.begin();
    if (candidates.size() < unchanged + changed.size()) candidates.resize(unchanged + changed.size());
    size_t size = unchanged;
    for (const llama_token token : changed) candidates[size++] = llama_token_data{token, row[token], 0.0f};
    return size;
}

size_t rbeeFillAll(AddonSampler* sampler, const float* row, size_t nVocab) {
    auto& candidates = sampler->tokenCandidates;
    if (candidates.size() < nVocab) candidates.resize(nVocab);
    for (size_t id = 0; id < nVocab; id++) candidates[id] = llama_token_data{static_cast<llama_token>(id), row[id], 0.0f};
    return nVocab;
}

void rbeeApplyBiasesAndPenalties(AddonSampler* sampler, llama_token_data_array* candidates) {
    for (int32_t i = 0; i < leadingSamplers(sampler); i++) llama_sampler_apply(llama_sampler_chain_get(sampler->chain, i), candidates);
}

void rbeeApplyChainToAll(AddonSampler* sampler, llama_token_data_array* all) {
    thread_local std::vector<llama_token> changed;
    thread_local std::vector<llama_token_data> named;
    const int32_t leading = leadingSamplers(sampler);
    if (leading == 0 || !changedTokens(sampler, all->size, changed)) return llama_sampler_apply(sampler->chain, all);
    // Run on the tokens they name, their results written back, then the chain's other samplers in order.
    named.clear();
    for (const llama_token token : changed) named.push_back(all->data[token]);
    llama_token_data_array few{named.data(), named.size(), -1, false};
    rbeeApplyBiasesAndPenalties(sampler, &few);
    for (const auto& entry : named) all->data[entry.id].logit = entry.logit;
    all->sorted = false;
    const int32_t samplers = llama_sampler_chain_n(sampler->chain);
    for (int32_t i = leading; i < samplers; i++) llama_sampler_apply(llama_sampler_chain_get(sampler->chain, i), all);
}

llama_token_data_array rbeeApplyChain(AddonSampler* sampler, const float* row, size_t nVocab) {
    const size_t kept = rbeeKeptByChain(sampler, nVocab);
    size_t unchanged = 0;
    const size_t most = kept > 0 ? rbeeFillMostLikely(sampler, row, nVocab, kept, unchanged) : 0;
    if (most > 0) {
        llama_token_data_array current{sampler->tokenCandidates.data(), most, -1, false};
        llama_sampler_apply(sampler->chain, &current);
        return current;
    }
    // Filled first: filling may grow the buffer.
    const size_t all = rbeeFillAll(sampler, row, nVocab);
    llama_token_data_array current{sampler->tokenCandidates.data(), all, -1, false};
    rbeeApplyChainToAll(sampler, &current);
    return current;
}
