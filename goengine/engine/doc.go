// Package engine runs a loaded model fast, and generates text with it. To read
// the math, open package llama (goengine/llama) instead: the same forward pass,
// a token at a time, one function per step of spec/model.md. The model itself,
// config and weights as read from a GGUF file, is package model; the goldens
// bind both forward passes, and this package's tests check it against llama on
// random models of every stored type.
//
// The fast path computes the same values as llama in another order, and each
// trick says why where it is done:
//   - a Session is one sequence with its KV cache; its keys are stored
//     transposed (KVCache) so both attention products read the cache in place;
//   - a prompt runs as a Batch of up to 256 tokens at once (Session.Prefill),
//     so each weight is read once per chunk instead of once per token;
//   - the decode steps of several sessions run as one Batch (Batch.DecodeStep),
//     each row bit for bit what its session computes alone;
//   - every product runs on the model's tensor.Pool of goroutines (model.Pool);
//   - a Trace sees every activation between the named steps of Block, for the
//     goldens, without a branch in the math.
//
// On top of any session, as nanochat's engine.py drives gpt.py's model:
// Generate is the one generation loop (sample, stop, decode, emit) that the
// generate and chat commands and the HTTP server share, and Conversation keeps
// a chat's history in one session's KV cache across turns.
package engine
