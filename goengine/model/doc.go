// Package model is the transformer of spec/model.md as the engine runs it: its
// config, its weights read from a GGUF file in the profile of spec/format.md,
// and the fast forward pass. To read the math, open package llama
// (goengine/llama) instead: the same forward pass, a token at a time, one
// function per step of the spec. The goldens bind both, and this package's
// tests check it against llama on random models of every stored type.
//
// The fast path computes the same values in another order, and each trick
// says why where it is done:
//   - a Session is one sequence with its KV cache; its keys are stored
//     transposed (KVCache) so both attention products read the cache in place;
//   - a prompt runs as a Batch of up to 256 tokens at once (Session.Prefill),
//     so each weight is read once per chunk instead of once per token;
//   - the decode steps of several sessions run as one Batch (Batch.DecodeStep),
//     each row bit for bit what its session computes alone;
//   - every product runs on the model's tensor.Pool of goroutines;
//   - a Trace sees every activation between the named steps of Block, for the
//     goldens, without a branch in the math.
//
// The fast path stays in this package, beside the weights, rather than moving
// to package engine: the sessions, batches and the pool belong to one loaded
// model, and engine is what runs on top of any session (the generation loop:
// sampling, stop rules, streamed text, a chat's history), never looking inside
// a forward pass, as nanochat's engine.py drives gpt.py's model.
package model
