// The candidates a sampler's chain is given (candidates.cpp): the few most likely tokens where that picks what the whole
// vocabulary would, and the logit biases and penalties applied to the tokens they name rather than looked up for all.
#pragma once
#include <cstddef>
#include <vector>
#include "llama.h"

class AddonSampler;

// Runs the sampler's chain over a row of logits and returns the candidates as it left them (`selected`: its pick). It
// gets the most likely tokens only where it keeps no more than a few of them (top-k, greedy), else every token of the
// vocabulary; either way it picks what it would have picked from the whole vocabulary.
llama_token_data_array rbeeApplyChain(AddonSampler* sampler, const float* row, size_t nVocab);

// Into the sampler's candidates: first the most likely tokens among those the sampler's biases and penalties leave as
// they are, at least `count` of them where the vocabulary has them (`unchanged` gets how many), then every token the
// biases and penalties may change, wherever it sits in the vocabulary. The `count` most likely tokens after biases and
// penalties are among them; so are the most likely unchanged ones of any subset (a grammar's) when `count` of those are
// among the first `unchanged`. Returns their number, 0 where the sampler has a penalty whose tokens are not known (DRY).
size_t rbeeFillMostLikely(AddonSampler* sampler, const float* row, size_t nVocab, size_t count, size_t& unchanged);

// Every token of the vocabulary, in id order, into the sampler's candidates; returns the vocabulary's size.
size_t rbeeFillAll(AddonSampler* sampler, const float* row, size_t nVocab);

// Applies the first samplers of the chain, its logit biases and penalties, to these candidates (any order).
void rbeeApplyBiasesAndPenalties(AddonSampler* sampler, llama_token_data_array* candidates);

// Applies the sampler's chain to the whole vocabulary in id order (rbeeFillAll, maybe masked): its logit biases and
// penalties only on the tokens they name (llama.cpp's look every token up: milliseconds for a 150k vocabulary), then
// the rest of the chain.
void rbeeApplyChainToAll(AddonSampler* sampler, llama_token_data_array* all);

// The most tokens the chain keeps after its biases and penalties (greedy: 1, top-k: k), 0 where it looks at more.
size_t rbeeKeptByChain(const AddonSampler* sampler, size_t nVocab);
