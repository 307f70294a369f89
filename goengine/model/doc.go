// Package model is the transformer of spec/model.md as data: its config, the
// tensors the config implies, and its weights read and checked from a GGUF file
// in the profile of spec/format.md (Load), or made at random (Random). Nothing
// here runs a forward pass: the readable one is package llama, the fast one
// (sessions, batches, the KV cache) package engine. Both read a *Model, shared
// read-only.
package model
