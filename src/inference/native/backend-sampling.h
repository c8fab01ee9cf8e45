// Tokens picked on the GPU, in the decode's own graph (llama.cpp's backend samplers): the output's token comes back
// instead of its row of logits, and nothing is left to sample on the CPU while the GPU waits. For greedy and for the
// OpenAI routes' default chain (top-k, top-p, min-p, temperature, a seeded draw); not where a grammar, biases,
// penalties or logprobs need the logits on the host. A seeded request's draws on the backend are its own and repeat
// with its seed, but are not the host's draws for that seed.
#pragma once
#include <cstdint>
#include <utility>
#include <vector>
#include "llama.h"
#include "napi.h"

class AddonSampler;

// Before a launch, on the step thread: each sequence with an output in `batch` gets a sampler chain on the backend
// exactly where that output's sampler (from `outputSamplers`: batch index, sampler; the first `firstAppended` are
// requests' first outputs, which start a chain of their own) can run there, and loses it otherwise. A sequence with no
// output keeps what it has (an idle chain is skipped by the decode): attaching or detaching makes llama.cpp reserve its
// graphs again, so a slot that serves greedy requests keeps one chain for all of them. Nothing where it is off for ctx.
void rbeeBackendSamplersForBatch(llama_context* ctx, const llama_batch& batch, const std::vector<std::pair<int32_t, AddonSampler*>>& outputSamplers,
                                 size_t firstAppended);

// After that decode: the token picked on the backend for each output at `batchIndexes[i]`, or -1 where it was not
// picked there; empty where it is off for ctx.
std::vector<llama_token> rbeeBackendSampledTokens(llama_context* ctx, const std::vector<int32_t>& batchIndexes);

// rbeeBackendSampling(context, on: boolean): turns greedy picks on the backend on or off for that context, detaching
// every chain first. Call before the context's first step and after its last, not while a step runs.
// rbeeBackendSamplingCounts(context) -> [picks, attachments]: tokens picked there and chains attached since.
void rbeeRegisterBackendSampling(Napi::Object exports);
