// rbee's sampling of many outputs at once (sampling.cpp), used by the sample-then-decode step.
#pragma once
#include <cstdint>
#include <vector>
#include "llama.h"

class AddonSampler;

// Samples output logitIndexes[i] of the context's last decode with samplers[i], spread over threads; tokens[i] is -1
// where samplers[i] is null or nothing was sampled. Call after the decode has finished (llama_synchronize).
void rbeeSampleOutputs(llama_context* ctx, const std::vector<AddonSampler*>& samplers, const std::vector<int32_t>& logitIndexes,
                       std::vector<int32_t>& tokens);
