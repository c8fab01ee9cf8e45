// Log probabilities of sampled tokens, for requests that ask for them (OpenAI's logprobs / top_logprobs).
#pragma once
#include <cstddef>
#include <cstdint>

class AddonSampler;

// Where `sampler` asked for them: records the log-softmax of the raw logits `row` at `token`, and the `top` most
// likely tokens with theirs. Called by rbee's sampling, on whichever thread samples that output.
void rbeeRecordLogprobs(AddonSampler* sampler, const float* row, size_t nVocab, int32_t token);
// Whether `sampler` asked for them (its picks then need the row of logits on the host).
bool rbeeWantsLogprobs(const AddonSampler* sampler);
